package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/internal/lobbytest"
	"github.com/skein-dev/skein/server/lobby"
)

// TestMain lets the test binary act as the server binary: the tests below
// start it again with SKEIN_RUN_MAIN=1, so the real main runs in its own
// process, signals and all.
func TestMain(m *testing.M) {
	if os.Getenv("SKEIN_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestServerBinary(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "server.key")
	cmd := exec.Command(os.Args[0], "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-log-json", "-shutdown-timeout", "3s", "-key-file", keyFile)
	cmd.Env = append(os.Environ(), "SKEIN_RUN_MAIN=1", "SKEIN_LOG_LEVEL=debug")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan map[string]any, 256)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				select {
				case lines <- l:
				default:
				}
			} else {
				t.Logf("non-JSON log line: %s", sc.Text())
			}
		}
		exited <- cmd.Wait()
	}()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()

	// The first line names the addresses (after the notice that the key
	// file was created: this is the server's first start).
	var udp, admin string
	select {
	case l := <-lines:
		if l["@message"] == "created a new server key" && l["file"] == keyFile {
			l = <-lines
		}
		udp, _ = l["udp"].(string)
		admin, _ = l["admin"].(string)
		if l["@message"] != "listening" || udp == "" || admin == "" {
			t.Fatalf("first log line: %v", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}

	// Then the server's public key (never its secret), which clients pin.
	var key net.ServerKey
	for key.IsZero() {
		select {
		case l := <-lines:
			if l["@message"] != "server key" {
				continue
			}
			k, err := net.ParseServerKey(fmt.Sprint(l["key"]))
			if err != nil || l["fingerprint"] != k.Fingerprint() {
				t.Fatalf("server key line: %v (%v)", l, err)
			}
			key = k
		case <-time.After(20 * time.Second):
			t.Fatal("no server key log line")
		}
	}
	id, _, err := net.LoadIdentity(keyFile)
	if err != nil || id.Current() != key {
		t.Fatalf("the logged key is not the key file's: %v", err)
	}

	res, err := http.Get("http://" + admin + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := lobbytest.Dial(ctx, netip.MustParseAddrPort(udp), sync.ClientConfig{Net: net.Config{ServerKeys: []net.ServerKey{key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r, _, err := c.Create(ctx, "binary test", 4, nil); err != nil || r != lobby.ResultOK {
		t.Fatalf("create: %v %v", r, err)
	}

	// One log line per connect, with the client's ID.
	sawConnect := false
	for !sawConnect {
		select {
		case l := <-lines:
			sawConnect = l["@message"] == "client connected" && l["client"] == float64(c.ID())
		case <-ctx.Done():
			t.Fatal("no connect log line")
		}
	}

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	// The client is told why.
	told := time.After(10 * time.Second)
wait:
	for {
		select {
		case e := <-c.Events:
			if e.Kind == sync.EventDisconnected {
				if !errors.Is(e.Err, net.ErrShutdown) {
					t.Fatalf("client disconnected with %v, want shutdown", e.Err)
				}
				break wait
			}
		case <-told:
			t.Fatal("the client was not told the server shut down")
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("server exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit")
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("shutdown took %v (timeout 3s)", took)
	}
}

// The key flags: -print-key creates the key file (mode 0600) and keeps
// it, -key-next adds a next key, -key-rotate promotes it and fails without
// one.
func TestKeyFlags(t *testing.T) {
	f := filepath.Join(t.TempDir(), "data", "server.key")
	if err := run([]string{"-key-file", f, "-print-key"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	first, _, err := net.LoadIdentity(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-key-file", f, "-print-key"}); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := net.LoadIdentity(f); again.Current() != first.Current() {
		t.Fatal("-print-key changed the key")
	}
	if err := run([]string{"-key-file", f, "-key-rotate"}); err == nil {
		t.Fatal("-key-rotate without a next key succeeded")
	}
	if err := run([]string{"-key-file", f, "-key-next"}); err != nil {
		t.Fatal(err)
	}
	both, _, _ := net.LoadIdentity(f)
	next, ok := both.Next()
	if !ok || both.Current() != first.Current() {
		t.Fatal("-key-next did not add a next key beside the current one")
	}
	if err := run([]string{"-key-file", f, "-key-rotate"}); err != nil {
		t.Fatal(err)
	}
	if rotated, _, _ := net.LoadIdentity(f); rotated.Current() != next {
		t.Fatal("-key-rotate did not promote the next key")
	}
	// An operator signs the keys: a client trusting the operator connects.
	op := filepath.Join(t.TempDir(), "operator.key")
	if err := run([]string{"-key-file", f, "-sign", "1h"}); err == nil {
		t.Fatal("-sign without -operator-key succeeded")
	}
	if err := run([]string{"-key-file", f, "-operator-key", op, "-sign", "1h"}); err != nil {
		t.Fatal(err)
	}
	signed, _, err := net.LoadIdentity(f)
	if err != nil {
		t.Fatal(err)
	}
	opKey, _, err := net.LoadOperatorKey(op)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := signed.Cert(); !ok || c.Key != next || c.Verify([]ed25519.PublicKey{opKey.Public().(ed25519.PublicKey)}, time.Now()) != nil {
		t.Fatal("-sign stored no valid certificate for the current key")
	}
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-key-file", f, "-print-key"}); err == nil {
		t.Fatal("a key file others can read was accepted")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-log-level", "loud"}, {"-max-clients", "0"}, {"-tcp-per-ip", "0"}, {"extra"}, {"-lobby-call-rate", "0"}, {"-lobby-call-burst", "-1"}, {"-lobby-chat-room", "0"}, {"-lobby-call-rate", "NaN"},
		{"-handshake-rate", "0"}, {"-source-handshake-rate", "0"}, {"-source-links", "-3"}, {"-source-pending", "-2"},
		{"-max-pending", "-5"}, {"-pending-timeout", "0s"}, {"-resume-grace", "-1s"}, {"-link-timeout", "-1s"}, {"-link-receive-budget", "-1"}, {"-host-receive-budget", "-1"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
	t.Setenv("SKEIN_MAX_CLIENTS", "many")
	if err := run(nil); err == nil {
		t.Error("bad $SKEIN_MAX_CLIENTS accepted")
	}
	t.Setenv("SKEIN_MAX_CLIENTS", "10")
	t.Setenv("SKEIN_SOURCE_LINKS", "lots")
	if err := run(nil); err == nil {
		t.Error("bad $SKEIN_SOURCE_LINKS accepted")
	}
}
