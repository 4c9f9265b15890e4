package sync_test

import (
	"context"
	"errors"
	"fmt"
	stdnet "net"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// On loopback, a client that gets no UDP answer falls back to the server's
// TCP listener (hardened TCPMux: hello first, deadlines, per-source cap),
// its peer is relayed, reliable traffic flows both ways, the server counts
// the connection, and a client that leaves frees it.
func TestTCPFallbackOnLoopback(t *testing.T) {
	udp, err := net.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sync.NewServer(udp, sync.ServerConfig{TCP: net.TCPConfig{MaxConnsPerIP: 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// The TCP listener's port has no UDP socket: the client's hellos over
	// UDP go unanswered, as where UDP is blocked.
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeTCP(ln); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := sync.DialClient(ctx, "127.0.0.1:0", ln.Addr().(*stdnet.TCPAddr).AddrPort(), sync.ClientConfig{UDPTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	next(t, a, sync.EventConnected)
	next(t, srv, sync.EventConnected)
	b, err := sync.DialClient(ctx, "127.0.0.1:0", udp.LocalAddr(), sync.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	next(t, b, sync.EventConnected)
	next(t, srv, sync.EventConnected)
	if a.Transport() != "tcp" || b.Transport() != "udp" {
		t.Fatalf("transports %s, %s; want tcp, udp", a.Transport(), b.Transport())
	}
	if st := srv.TCPStats(); st.Open != 1 || st.Accepted != 1 {
		t.Fatalf("TCP stats with one client: %+v", st)
	}
	if _, err := srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
		t.Fatal(err)
	}
	e := skipTo(t, a, sync.EventRelayStateChange)
	if !e.Relayed || !errors.Is(e.Err, net.ErrUDPBlocked) || e.Peer != b.ID() {
		t.Fatalf("a's relay state %+v, want relayed because UDP is blocked", e)
	}
	// b learns of a on its own goroutine: wait for a's join there too.
	for e := skipTo(t, b, sync.EventMemberJoin); e.Member != a.ID(); e = skipTo(t, b, sync.EventMemberJoin) {
	}
	const count = 50
	for i := range count {
		for _, p := range [][2]*sync.Client{{a, b}, {b, a}} {
			if err := p[0].Send(p[1].ID(), net.Reliable, []byte(fmt.Sprint(i))); err != nil {
				// Say enough to act on: who sent, and the links each end has.
				t.Fatalf("message %d from %v (%s) to %v: %v; links: %v has %v, %v has %v",
					i, p[0].ID(), p[0].Transport(), p[1].ID(), err, a.ID(), a.Host().Peers(), b.ID(), b.Host().Peers())
			}
		}
	}
	for _, c := range []*sync.Client{a, b} {
		for i := range count {
			if e := skipTo(t, c, sync.EventMessage); string(e.Data) != fmt.Sprint(i) {
				t.Fatalf("got %q, want %d", e.Data, i)
			}
		}
	}
	a.Close()
	for deadline := time.Now().Add(10 * time.Second); srv.TCPStats().Open != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the TCP connection of a client that left is still open: %+v", srv.TCPStats())
		}
	}
}

// skipTo returns s's next event of kind, passing over any other.
func skipTo(t *testing.T, s eventSource, kind sync.EventKind) sync.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		e, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v", kind, err)
		}
		if e.Kind == kind {
			return e
		}
	}
}
