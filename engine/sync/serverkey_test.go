package sync_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	skein "github.com/skein-dev/skein/engine/sync"
)

// ClientConfig.Net pins the server's key through DialClient: the right key
// connects (and the client reports it), a wrong one is a
// *net.ServerKeyError naming the key the server proved, with no fallback
// to TCP (which would be refused the same way: it is no downgrade path).
func TestDialClientPinnedServerKey(t *testing.T) {
	id, err := net.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := skein.ListenServer("127.0.0.1:0", skein.ServerConfig{Net: net.Config{Identity: id, SourceHandshakeRate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Host().LocalAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := skein.DialClient(ctx, "127.0.0.1:0", addr, skein.ClientConfig{Net: net.Config{ServerKeys: []net.ServerKey{id.Current()}}})
	if err != nil {
		t.Fatalf("pinned to the server's key: %v", err)
	}
	if k, ok := c.Host().ServerKey(); !ok || k != id.Current() {
		t.Fatalf("client reports server key %v %v", k, ok)
	}
	c.Close()

	other, _ := net.NewIdentity()
	_, err = skein.DialClient(ctx, "127.0.0.1:0", addr, skein.ClientConfig{Net: net.Config{ServerKeys: []net.ServerKey{other.Current()}}})
	var ke *net.ServerKeyError
	if !errors.Is(err, net.ErrServerKeyMismatch) || !errors.As(err, &ke) || ke.Seen != id.Current() || !ke.Proven {
		t.Fatalf("pinned to another key: %v", err)
	}
	if errors.Is(err, net.ErrHandshakeTimeout) {
		t.Fatalf("a refused key reads as a timeout (TCP fallback would follow): %v", err)
	}
}
