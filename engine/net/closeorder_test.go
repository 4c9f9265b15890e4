package net_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// TestCloseFlushesRelayedPeersBeforeTheServer: a client that closes with
// reliable data in flight to a peer reached through the server's relay
// keeps its server link, which carries that relay, until the peer link has
// flushed and said goodbye. Closing both at once removed the server link
// first: the peer's acknowledgements and the close could no longer pass,
// the client waited out CloseTimeout, and the peer never heard it leave.
func TestCloseFlushesRelayedPeersBeforeTheServer(t *testing.T) {
	checkGoroutines(t)
	srv, a := pair(t, net.Config{RelayPolicy: func(_, _ net.HostID) bool { return true }}, net.Config{})
	b := relayedPeer(t, srv, a)
	msg := payload(1000)
	for range 200 {
		if err := b.Send(a.ID(), net.Reliable, msg); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	got := 0
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	for {
		e, err := a.Next(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		if e.Peer != b.ID() {
			continue
		}
		if e.Kind == net.EventMessage {
			got++
			continue
		}
		if e.Kind != net.EventDisconnected || !errors.Is(e.Err, net.ErrClosedByPeer) {
			t.Fatalf("after %d messages: %v (%v); want EventDisconnected, ErrClosedByPeer", got, e.Kind, e.Err)
		}
		break
	}
	if got != 200 {
		t.Errorf("%d messages before the close, want 200", got)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

// relayedPeer dials a new client of srv on loopback and makes it a peer of
// cli over the server's relay (srv must allow relaying). It is closed when
// the test ends.
func relayedPeer(t *testing.T, srv, cli *net.Host) *net.Host {
	t.Helper()
	h, err := net.Listen("127.0.0.1:0", net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	dialAll(t, srv, 1, func(int) *net.Host { return h })
	peer(t, []*net.Host{cli, h})
	return h
}
