package net_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// Allocations per message, held so that they cannot creep back
// (BENCHMARKS.md, "Allocations per message"). A round trip is two
// messages, one each way, between two hosts on loopback UDP, each taking
// its events with Next (the reader baton). What a message still costs:
//
//   - Event.Data, a fresh copy the application owns (events.go): 1.
//   - For a reliable message, kcp-go v5.6.72's own (pinned, kcpcore.go):
//     the receiver boxes the segment into and out of its receive heap
//     (heap.Push, heap.Pop: 2) and returns its buffer to kcp-go's
//     sync.Pool after Recv (boxing the slice: 1); the sender returns the
//     acknowledged segment's buffer the same way (1).
//
// Nothing on the send path, the sealing, the event queue or the baton
// allocates.
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
		name  string
		d     net.Delivery
		fresh bool
		want  float64
	}{
		{"reliable", net.Reliable, false, allocsReliableRoundTrip},
		{"reliable/fresh-context", net.Reliable, true, allocsReliableRoundTrip + ctxAllocs},
		{"unreliable", net.Unreliable, false, allocsUnreliableRoundTrip},
		{"unreliable/fresh-context", net.Unreliable, true, allocsUnreliableRoundTrip + ctxAllocs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := roundTripAllocs(t, tc.d, tc.fresh)
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
// message from a client to a server that echoes it, both on loopback UDP.
func roundTripAllocs(t *testing.T, d net.Delivery, fresh bool) float64 {
	t.Helper()
	srv, cli := pair(t, net.Config{}, net.Config{})
	// Bounded: a lost datagram fails the test instead of hanging it.
	echoCtx, stopEcho := context.WithTimeout(context.Background(), time.Minute)
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		for {
			e, err := srv.Next(echoCtx)
			if err != nil {
				return
			}
			if e.Kind == net.EventMessage {
				if err := srv.Send(e.Peer, d, e.Data); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { stopEcho(); <-echoDone })

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
		if failed = cli.Send(net.ServerID, d, msg); failed != nil {
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
