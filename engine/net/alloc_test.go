package net_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// Allocations per message, held so that they cannot creep back
// (BENCHMARKS.md, "Allocations per message"). A round trip is two
// messages, one each way, between two hosts on loopback UDP (a client and
// its server, or two clients through the server's relay), each taking its
// events with Next (the reader baton). What a message still costs:
//
//   - Event.Data, a fresh copy the application owns (events.go): 1.
//   - For a reliable message, kcp-go v5.6.72's own (pinned, kcpcore.go):
//     the receiver boxes the segment into and out of its receive heap
//     (heap.Push, heap.Pop: 2) and returns its buffer to kcp-go's
//     sync.Pool after Recv (boxing the slice: 1); the sender returns the
//     acknowledged segment's buffer the same way (1).
//
// Nothing on the send path, the sealing, the relay, the event queue or
// the baton allocates.
const (
	allocsUnreliableRoundTrip = 2 * 1
	allocsReliableRoundTrip   = 2 * (1 + 4)
)

// TestAllocsPerMessage measures the allocations of a round trip, reliable
// and unreliable, with one long-lived context for every Next and with a
// fresh context per round trip (as a game loop that gives each wait its
// own timeout does): a context the baton has not seen costs the context's
// own allocations (measured alone here, its Done channel included) and
// nothing more.
func TestAllocsPerMessage(t *testing.T) {
	if net.RaceEnabled {
		t.Skip("the race detector's sync.Pool drops items on purpose")
	}
	if testing.Short() {
		t.Skip("round trips over loopback UDP")
	}
	// What a fresh context costs by itself: made, its Done channel made
	// (the baton needs it to hear the context end), cancelled.
	ctxAllocs := testing.AllocsPerRun(100, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = ctx.Done()
		cancel()
	})
	for _, tc := range []struct {
		name           string
		d              net.Delivery
		fresh, relayed bool
		want           float64
	}{
		{"reliable", net.Reliable, false, false, allocsReliableRoundTrip},
		{"reliable/fresh-context", net.Reliable, true, false, allocsReliableRoundTrip + ctxAllocs},
		{"reliable/relayed", net.Reliable, false, true, allocsReliableRoundTrip},
		{"unreliable", net.Unreliable, false, false, allocsUnreliableRoundTrip},
		{"unreliable/fresh-context", net.Unreliable, true, false, allocsUnreliableRoundTrip + ctxAllocs},
		{"unreliable/relayed", net.Unreliable, false, true, allocsUnreliableRoundTrip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := roundTripAllocs(t, tc.d, tc.fresh, tc.relayed)
			if got > tc.want {
				t.Fatalf("%v allocations per round trip, want at most %v", got, tc.want)
			}
			if got < tc.want {
				t.Logf("%v allocations per round trip, fewer than the %v held: lower the bound", got, tc.want)
			}
		})
	}
}

// roundTripAllocs returns the allocations of one round trip of a 64-byte
// message on loopback UDP: from a client to a server that echoes it, or
// (relayed) from a client to a peer that echoes it, both through the
// server's relay.
func roundTripAllocs(t *testing.T, d net.Delivery, fresh, relayed bool) float64 {
	t.Helper()
	// Bounded: a lost datagram fails the test instead of hanging it.
	bgCtx, stopBg := context.WithTimeout(context.Background(), time.Minute)
	var wg sync.WaitGroup
	t.Cleanup(func() { stopBg(); wg.Wait() })
	serve := func(h *net.Host, echo bool) {
		wg.Go(func() {
			for {
				e, err := h.Next(bgCtx)
				if err != nil {
					return
				}
				if echo && e.Kind == net.EventMessage {
					if err := h.Send(e.Peer, d, e.Data); err != nil {
						return
					}
				}
			}
		})
	}
	srv, cli := pair(t, net.Config{RelayPolicy: func(_, _ net.HostID) bool { return true }}, net.Config{})
	to := net.ServerID
	if relayed {
		echo := relayedPeer(t, srv, cli)
		to = echo.ID()
		serve(srv, false)
		serve(echo, true)
	} else {
		serve(srv, true)
	}

	msg := payload(64)
	longCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var failed error
	roundTrip := func() {
		if failed != nil {
			return
		}
		ctx, cancel := longCtx, context.CancelFunc(func() {})
		if fresh {
			ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		}
		defer cancel()
		if failed = cli.Send(to, d, msg); failed != nil {
			return
		}
		for {
			e, err := cli.Next(ctx)
			if err != nil {
				failed = err
				return
			}
			if e.Kind == net.EventMessage {
				if !bytes.Equal(e.Data, msg) {
					t.Errorf("echo %q, want %q", e.Data, msg)
				}
				return
			}
		}
	}
	for range 50 { // warm the pools and the baton
		roundTrip()
	}
	allocs := testing.AllocsPerRun(300, roundTrip)
	if failed != nil {
		t.Fatalf("round trip: %v", failed)
	}
	return allocs
}
