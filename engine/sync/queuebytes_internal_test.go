package sync

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// TestAppQueueBytesBounded: the group layer's own application queue is
// bounded by Net.EventQueueBytes too, not only by its count: a client
// sending messages of nearly net.MaxReliable bytes to a server whose
// application takes no events fills it to the budget and no further (the
// rest waits in the net host, itself bounded, and in the stream), and
// every message arrives, in order, once the application catches up.
func TestAppQueueBytesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(3)
		defer nw.Close()
		srvAddr := netip.MustParseAddrPort("10.0.0.1:7000")
		sconn, err := nw.Listen(srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		const budget = 4 * net.MaxReliable
		srv, err := NewServer(sconn, ServerConfig{Net: net.Config{EventQueueBytes: budget}})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cconn, err := nw.Listen(netip.MustParseAddrPort("10.0.1.1:5000"))
		if err != nil {
			t.Fatal(err)
		}
		cli, err := NewClient(cconn, ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		if err := cli.Connect(t.Context(), srvAddr); err != nil {
			t.Fatal(err)
		}
		const count, size = 24, net.MaxReliable - 1 // the tag takes a byte
		sent := 0
		for deadline := time.Now().Add(time.Minute); sent < count; {
			err := cli.Send(net.ServerID, net.Reliable, bytes.Repeat([]byte{byte(sent)}, size))
			switch {
			case err == nil:
				sent++
			case errors.Is(err, net.ErrSendQueueFull) && time.Now().Before(deadline):
				time.Sleep(10 * time.Millisecond)
			default:
				t.Fatalf("message %d: %v", sent, err)
			}
		}
		time.Sleep(5 * time.Second) // the application is busy elsewhere
		synctest.Wait()
		// Its messages, counted apart from the byte accounting.
		if msgs := net.DefaultEventQueue - srv.q.Room(); msgs == 0 || msgs*size > budget || srv.q.Bytes() != msgs*size {
			t.Fatalf("the application queue holds %d messages of %d bytes (%d counted): want some, within its %d-byte budget", msgs, size, srv.q.Bytes(), budget)
		}
		if b := srv.Host().Stats().Events.Bytes; b > budget {
			t.Fatalf("the net host's queue holds %d bytes, over its %d-byte budget", b, budget)
		}
		got := 0
		for deadline := time.Now().Add(time.Minute); got < count; {
			e, ok := srv.Poll()
			if !ok {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d messages arrived", got, count)
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if e.Kind != EventMessage {
				continue
			}
			if len(e.Data) != size || e.Data[0] != byte(got) {
				t.Fatalf("message %d: %d bytes of %d", got, len(e.Data), e.Data[0])
			}
			got++
			if b := srv.q.Bytes(); b > budget {
				t.Fatalf("after message %d the application queue holds %d bytes", got, b)
			}
		}
	})
}
