package trust

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

func newKey(t *testing.T) net.ServerKey {
	t.Helper()
	id, err := net.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Current()
}

func tempStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "skein", "known_servers"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRememberThenCompare(t *testing.T) {
	s := tempStore(t)
	a, b := newKey(t), newKey(t)

	chk, err := s.Check("Arena.Example:7777")
	if err != nil {
		t.Fatal(err)
	}
	if err := chk.Verify(a); err != nil {
		t.Fatalf("first use refused: %v", err)
	}
	if st, k := chk.Status(); st != New || k != a {
		t.Fatalf("status %v %v, want new %v", st, k, a)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("store mode %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(filepath.Dir(s.Path())); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("store directory: %v %v, want 0700", di.Mode().Perm(), err)
	}

	// A new Check (a later run) for the same name, in another case.
	chk, err = s.Check("arena.example:7777")
	if err != nil {
		t.Fatal(err)
	}
	if err := chk.Verify(a); err != nil {
		t.Fatalf("known key refused: %v", err)
	}
	if st, _ := chk.Status(); st != Known {
		t.Fatalf("status %v, want known", st)
	}

	chk, _ = s.Check("arena.example:7777")
	err = chk.Verify(b)
	var ce *ChangedError
	if !errors.As(err, &ce) || !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("changed key: %v, want a *ChangedError", err)
	}
	if ce.Remembered != a.Fingerprint() || ce.Seen != b || ce.Server != "arena.example:7777" {
		t.Fatalf("changed error %+v", ce)
	}
	if msg := err.Error(); !strings.Contains(msg, a.Fingerprint()) || !strings.Contains(msg, b.Fingerprint()) {
		t.Fatalf("message does not name both fingerprints: %s", msg)
	}
	if st, _ := chk.Status(); st != Unchecked {
		t.Fatalf("status %v after a refusal", st)
	}
	// Never replaced: the store still holds a.
	if fp, ok, err := s.Lookup("arena.example:7777"); err != nil || !ok || fp != a.Fingerprint() {
		t.Fatalf("lookup %q %v %v", fp, ok, err)
	}
	// The same port written with a leading zero is the same server.
	if fp, ok, err := s.Lookup("arena.example:07777"); err != nil || !ok || fp != a.Fingerprint() {
		t.Fatalf("lookup with a leading zero: %q %v %v", fp, ok, err)
	}
	// Another port is another server.
	chk, _ = s.Check("arena.example:7778")
	if err := chk.Verify(b); err != nil {
		t.Fatal(err)
	}
	if fp, _, _ := s.Lookup("arena.example:7777"); fp != a.Fingerprint() {
		t.Fatalf("remembering another server changed the first: %s", fp)
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(filepath.Dir(s.Path()))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d files, want the store only", len(ents))
	}
}

// A key remembered by another process after the Check was made is not
// overwritten by this Check's first use.
func TestRememberRaceWithOtherWriter(t *testing.T) {
	s := tempStore(t)
	a, b := newKey(t), newKey(t)
	chk, err := s.Check("10.0.0.5:7777")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Open(s.Path())
	if err := other.Remember("10.0.0.5:7777", a); err != nil {
		t.Fatal(err)
	}
	if err := chk.Verify(b); !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("got %v, want ErrKeyChanged", err)
	}
}

func TestFingerprintLine(t *testing.T) {
	s := tempStore(t)
	a, b := newKey(t), newKey(t)
	if err := os.MkdirAll(filepath.Dir(s.Path()), 0o700); err != nil {
		t.Fatal(err)
	}
	text := "# written by hand from the server's -print-key\n\n  [::1]:7777   " + a.Fingerprint() + "  \n"
	if err := os.WriteFile(s.Path(), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	chk, err := s.Check("[::1]:7777")
	if err != nil {
		t.Fatal(err)
	}
	if err := chk.Verify(a); err != nil {
		t.Fatal(err)
	}
	if err := chk.Verify(b); !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("got %v", err)
	}
	// Remembering another server keeps the fingerprint line.
	if err := s.Remember("10.0.0.1:1", b); err != nil {
		t.Fatal(err)
	}
	if fp, ok, _ := s.Lookup("[::1]:7777"); !ok || fp != a.Fingerprint() {
		t.Fatalf("fingerprint line lost: %q", fp)
	}
}

func TestCorruptFile(t *testing.T) {
	k := newKey(t)
	big := strings.Repeat("# padding padding padding padding padding padding padding\n", MaxFileSize/50)
	cases := map[string]string{
		"one field":     "10.0.0.5:7777\n",
		"three fields":  "10.0.0.5:7777 " + k.String() + " extra\n",
		"no port":       "10.0.0.5 " + k.String() + "\n",
		"bad key":       "10.0.0.5:7777 notakey\n",
		"short fp":      "10.0.0.5:7777 SHA256:abc\n",
		"zero key":      "10.0.0.5:7777 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"twice":         "10.0.0.5:7777 " + k.String() + "\n10.0.0.5:7777 " + k.String() + "\n",
		"twice by case": "A.b:1 " + k.String() + "\na.B:1 " + k.String() + "\n",
		"too large":     big,
		"long line":     "x:1 " + strings.Repeat("A", MaxFileSize+10) + "\n",
		"port word":     "host:http " + k.String() + "\n",
		"binary":        "\x00\xff:1 " + k.String() + "\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			s := tempStore(t)
			_ = os.MkdirAll(filepath.Dir(s.Path()), 0o700)
			if err := os.WriteFile(s.Path(), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Check("10.0.0.5:7777"); !errors.Is(err, ErrBadFile) {
				t.Fatalf("Check: %v, want ErrBadFile", err)
			}
			if err := s.Remember("10.0.0.9:7777", k); !errors.Is(err, ErrBadFile) {
				t.Fatalf("Remember: %v, want ErrBadFile", err)
			}
			if b, _ := os.ReadFile(s.Path()); string(b) != text {
				t.Fatal("a corrupt store was rewritten")
			}
		})
	}
}

func TestBadNames(t *testing.T) {
	s := tempStore(t)
	for _, n := range []string{"", "host", ":7777", "host:", "a b:1", "a#b:1", "h:1:2", strings.Repeat("a", 300) + ":1", "host:-1", "host:65536", "host:99999999"} {
		if _, err := s.Check(n); !errors.Is(err, ErrBadName) {
			t.Errorf("Check(%q): %v, want ErrBadName", n, err)
		}
	}
}

func TestStoreFull(t *testing.T) {
	s := tempStore(t)
	k := newKey(t)
	_ = os.MkdirAll(filepath.Dir(s.Path()), 0o700)
	line := "h0000000:1 " + k.String() + "\n"
	var b strings.Builder
	for i := 0; b.Len()+len(line) < MaxFileSize-20; i++ {
		b.WriteString(strings.Replace(line, "h0000000", fmt.Sprintf("h%07d", i), 1))
	}
	if err := os.WriteFile(s.Path(), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Remember("new.example:1", k); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("got %v, want ErrStoreFull", err)
	}
}

// An unwritable store refuses the server rather than trust it again on
// the next run without saying so.
func TestUnwritableStoreRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "skein")
	s, _ := Open(filepath.Join(dir, "known_servers"))
	chk, err := s.Check("10.0.0.5:7777")
	if err != nil {
		t.Fatal(err)
	}
	// Then the store's directory becomes a file: no directory can be made
	// there (file modes would not stop root).
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chk.Verify(newKey(t)); err == nil {
		t.Fatal("accepted a key it could not remember")
	}
}

// TestDialRemembersThenRefuses runs the store as Config.VerifyServerKey
// against real servers on loopback: the first Dial remembers the key, a
// second to the same server is known, and a server at that address with
// another key (reinstalled, or a man in the middle) is a
// *net.ServerKeyError naming both fingerprints.
func TestDialRemembersThenRefuses(t *testing.T) {
	s := tempStore(t)
	first, err := net.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.Listen("127.0.0.1:0", net.Config{Accept: true, Identity: first})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.LocalAddr()
	dial := func() (*Check, error) {
		t.Helper()
		chk, err := s.Check(addr.String())
		if err != nil {
			t.Fatal(err)
		}
		cli, err := net.Listen("127.0.0.1:0", net.Config{VerifyServerKey: chk.Verify, HandshakeTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		return chk, cli.Dial(context.Background(), addr)
	}
	chk, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	if st, k := chk.Status(); st != New || k != first.Current() {
		t.Fatalf("first dial: %v %v", st, k)
	}
	if chk, err = dial(); err != nil {
		t.Fatal(err)
	}
	if st, _ := chk.Status(); st != Known {
		t.Fatalf("second dial: %v", st)
	}

	// Another server at the same address with another key.
	srv.Close()
	second, _ := net.NewIdentity()
	srv2, err := net.Listen(addr.String(), net.Config{Accept: true, Identity: second})
	if err != nil {
		t.Skipf("cannot listen on %v again: %v", addr, err)
	}
	defer srv2.Close()
	_, err = dial()
	var ske *net.ServerKeyError
	if !errors.As(err, &ske) || !errors.Is(err, net.ErrServerKeyMismatch) || !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("changed server: %v, want a ServerKeyError wrapping ErrKeyChanged", err)
	}
	if ske.Seen != second.Current() || !ske.Proven {
		t.Fatalf("ServerKeyError %+v", ske)
	}
	msg := err.Error()
	if !strings.Contains(msg, first.Current().Fingerprint()) || !strings.Contains(msg, second.Current().Fingerprint()) {
		t.Fatalf("error does not name both fingerprints: %s", msg)
	}
	if fp, _, _ := s.Lookup(addr.String()); fp != first.Current().Fingerprint() {
		t.Fatal("the refused key replaced the remembered one")
	}
}

// TestPrecheckWritesNothing: Precheck (Config.CheckServerKey, for a key
// not proven yet) passes an unknown server's key without remembering it,
// and refuses a known server's changed key; only Verify remembers.
func TestPrecheckWritesNothing(t *testing.T) {
	s := tempStore(t)
	id, err := net.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	chk, err := s.Check("198.51.100.7:7777")
	if err != nil {
		t.Fatal(err)
	}
	if err := chk.Precheck(id.Current()); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Lookup("198.51.100.7:7777"); err != nil || ok {
		t.Fatalf("after Precheck: remembered %v, %v", ok, err)
	}
	if err := chk.Verify(id.Current()); err != nil {
		t.Fatal(err)
	}
	known, err := s.Check("198.51.100.7:7777")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := net.NewIdentity()
	var ce *ChangedError
	if err := known.Precheck(other.Current()); !errors.As(err, &ce) {
		t.Fatalf("Precheck of a changed key = %v", err)
	}
	if err := known.Precheck(id.Current()); err != nil {
		t.Fatal(err)
	}
	var cfg net.Config
	known.Configure(&cfg)
	if cfg.CheckServerKey == nil || cfg.VerifyServerKey == nil {
		t.Fatal("Configure set nothing")
	}
}
