package game

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/engine/trust"
)

// joinByAddress runs the menu's "join server" path (connectTo with
// host:port and no key) and waits for the dial; it returns the
// connection's note or the menu's message.
func joinByAddress(t *testing.T, g *Game, server string) (note string, err error) {
	t.Helper()
	g.scene = g.menu
	g.menu.message = ""
	g.connectTo(server, "quick", 0)
	c, ok := g.scene.(*connectScene)
	if !ok {
		return "", errors.New(g.menu.message)
	}
	r := <-c.dialed
	if r.err != nil {
		return "", r.err
	}
	defer r.s.Close()
	g.conn.sess = r.s
	return keyNote(g.conn), nil
}

// The arena's "join server" by host:port remembers the server's key on
// first use and says so, recognises it the next time, refuses a server at
// that address with another key naming both fingerprints, and refuses to
// connect with a corrupt store rather than trust silently.
func TestJoinServerTrustOnFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "skein", "known_servers")
	g := &Game{opt: Options{Name: "tofu", KnownServers: path, Logger: hclog.NewNullLogger()}, menu: &menuScene{}}

	first, err := netplay.StartLocal("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Addr()
	note, err := joinByAddress(t, g, addr.String())
	if err != nil {
		first.Close()
		t.Fatal(err)
	}
	if !strings.Contains(note, "new server") || !strings.Contains(note, first.Key().Fingerprint()) || !strings.Contains(note, "remembered") {
		t.Fatalf("first join: %q", note)
	}
	note, err = joinByAddress(t, g, addr.String())
	if err != nil {
		first.Close()
		t.Fatal(err)
	}
	if !strings.Contains(note, first.Key().Fingerprint()) || strings.Contains(note, "new server") {
		t.Fatalf("second join: %q", note)
	}
	// A join link pins its key and leaves the store alone.
	g.connectTo(netplay.JoinLink(addr.String(), first.Key()), "quick", 0)
	if r := <-g.scene.(*connectScene).dialed; r.err != nil {
		t.Fatal(r.err)
	} else {
		r.s.Close()
	}
	if g.conn.check != nil || !g.conn.pinned {
		t.Fatal("a join link's key was not pinned")
	}
	firstKey := first.Key()
	first.Close()

	// Another server (another key) at the same address.
	second, err := netplay.StartLocal(addr.String(), nil)
	if err != nil {
		t.Skipf("cannot listen on %v again: %v", addr, err)
	}
	defer second.Close()
	_, err = joinByAddress(t, g, addr.String())
	if !errors.Is(err, trust.ErrKeyChanged) {
		t.Fatalf("changed key: %v, want ErrKeyChanged", err)
	}
	msg := connectError(err)
	for _, want := range []string{"REFUSED", firstKey.Fingerprint(), second.Key().Fingerprint(), path} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not say %q", msg, want)
		}
	}

	// A corrupt store: no connection at all.
	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = joinByAddress(t, g, addr.String()); err == nil || !strings.Contains(err.Error(), "known-servers") {
		t.Fatalf("corrupt store: %v", err)
	}
}

func TestServerName(t *testing.T) {
	for _, c := range []struct{ typed, port, want string }{
		{"10.0.0.5:7777", "10.0.0.5:7777", "10.0.0.5:7777"},
		{"10.0.0.5", "10.0.0.5:7777", "10.0.0.5:7777"},
		{"arena.example", "1.2.3.4:7777", "arena.example:7777"},
		{"arena.example:9000", "1.2.3.4:9000", "arena.example:9000"},
		{"::1", "[::1]:7777", "[::1]:7777"},
	} {
		if got := serverName(c.typed, netip.MustParseAddrPort(c.port)); got != c.want {
			t.Errorf("serverName(%q) = %q, want %q", c.typed, got, c.want)
		}
	}
}
