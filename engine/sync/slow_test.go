package sync_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// A client whose application stops taking events stops acknowledging the
// server's reliable stream once its queues fill; the server's bounded send
// queue to it fills in turn and the server drops it, while a healthy client
// keeps receiving everything.
func TestStuckClientIsDroppedOthersUnaffected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 0, net.Config{SendQueue: 256})
		healthy := w.addClient("10.0.1.1:5000", net.Config{})
		conn, _ := w.nw.Listen(netipAddrPort("10.0.1.2:5000"))
		stuck, err := sync.NewClient(conn, sync.ClientConfig{EventQueue: 16, Net: net.Config{EventQueue: 16}})
		if err != nil {
			t.Fatal(err)
		}
		defer stuck.Close()
		if err := stuck.Connect(t.Context(), srvAddr); err != nil {
			t.Fatal(err)
		}
		next(t, w.srv, sync.EventConnected)
		g, _ := w.srv.CreateGroup([]net.HostID{healthy.ID(), stuck.ID()}, nil)
		settle(healthy)

		got := 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			for got < 3000 {
				e := next(t, healthy, sync.EventMessage)
				if e.Group == g {
					got++
				}
			}
		}()
		msg := make([]byte, 200)
		for i := 0; i < 3000; i++ {
			if err := w.srv.Send(g, net.Reliable, msg); err != nil && !errors.Is(err, net.ErrSendQueueFull) && !errors.Is(err, net.ErrUnknownPeer) && !errors.Is(err, net.ErrLinkClosing) {
				t.Fatalf("send %d: %v", i, err)
			}
			if i%50 == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		<-done
		if w.srv.SlowKicks() != 1 {
			t.Fatalf("slow kicks %d, want 1", w.srv.SlowKicks())
		}
		for {
			e := next(t, w.srv, sync.EventDisconnected)
			if e.Peer == stuck.ID() {
				if !errors.Is(e.Err, net.ErrClosedLocally) && !errors.Is(e.Err, net.ErrTimeout) && !errors.Is(e.Err, net.ErrKicked) {
					t.Fatalf("stuck client left with %v", e.Err)
				}
				break
			}
		}
		if m := w.srv.Members(g); len(m) != 1 || m[0] != healthy.ID() {
			t.Fatalf("members after the drop: %v", m)
		}
	})
}
