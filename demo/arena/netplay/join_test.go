package netplay

import (
	"errors"
	"strings"
	"testing"

	"github.com/skein-dev/skein/engine/net"
)

// A session pinned to the embedded server's key connects and reports it;
// pinned to another key (a join link for another server, or a relay in
// the middle) it fails with the key it saw.
func TestDialPinnedKey(t *testing.T) {
	local, ctx := startLocal(t, nil)
	server, key, pinned, err := ParseJoin(JoinLink(local.Addr().String(), local.Key()))
	if err != nil || !pinned || key != local.Key() || server != local.Addr().String() {
		t.Fatalf("join link: %q %v %v", server, pinned, err)
	}
	cfg := Config{Name: "pinned"}
	cfg.Net.ServerKeys = []net.ServerKey{key}
	s, err := Dial(ctx, local.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.ServerKey() != local.Key() {
		t.Fatalf("session reports key %v", s.ServerKey())
	}
	s.Close()

	other, _ := net.NewIdentity()
	cfg.Net.ServerKeys = []net.ServerKey{other.Current()}
	_, err = Dial(ctx, local.Addr(), cfg)
	if !errors.Is(err, net.ErrServerKeyMismatch) || !strings.Contains(err.Error(), local.Key().Fingerprint()) {
		t.Fatalf("pinned to another key: %v", err)
	}
}
