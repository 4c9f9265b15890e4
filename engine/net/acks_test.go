package net_test

import (
	"context"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// TestRequestAnswerOneDatagram: a reliable request answered at once costs
// one datagram each way. The acknowledgement of the answer waits for the
// next request instead of leaving in a datagram of its own (and the
// request's rides with the answer).
func TestRequestAnswerOneDatagram(t *testing.T) {
	srv, cli := pair(t, net.Config{}, net.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for {
			e, err := srv.Next(ctx)
			if err != nil {
				return
			}
			if e.Kind == net.EventMessage {
				if srv.Send(e.Peer, net.Reliable, e.Data) != nil {
					return
				}
			}
		}
	}()
	roundTrip := func() {
		t.Helper()
		if err := cli.Send(net.ServerID, net.Reliable, []byte("request")); err != nil {
			t.Fatal(err)
		}
		expect(t, cli, net.EventMessage, net.ServerID)
	}
	roundTrip() // warm-up
	const n = 50
	before := cli.Stats().DatagramsOut
	start := time.Now()
	for range n {
		roundTrip()
	}
	sent := cli.Stats().DatagramsOut - before
	// A keepalive ping a second may add one, and so may a held
	// acknowledgement whose next request came after the 10 ms update (a
	// loaded machine or the race detector): a fifth more is allowed. A
	// datagram of its own for every acknowledgement would be 2n.
	allowed := uint64(n + n/5 + 1 + time.Since(start)/time.Second)
	if sent > allowed {
		t.Fatalf("%d round trips took %d datagrams from the client, want at most %d (about one each)", n, sent, allowed)
	}
}

// TestHeldAckLeaves: an answer's acknowledgement that no next request
// carries still leaves, with the next update: the answering side's send
// queue empties.
func TestHeldAckLeaves(t *testing.T) {
	srv, cli := pair(t, net.Config{}, net.Config{})
	if err := cli.Send(net.ServerID, net.Reliable, []byte("request")); err != nil {
		t.Fatal(err)
	}
	expect(t, srv, net.EventMessage, cli.ID())
	if err := srv.Send(cli.ID(), net.Reliable, []byte("answer")); err != nil {
		t.Fatal(err)
	}
	expect(t, cli, net.EventMessage, net.ServerID)
	// The client sends nothing more.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, ok := srv.LinkStats(cli.ID())
		if ok && st.SendQueue == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the answer is still unacknowledged: %+v", st.Flow)
		}
		time.Sleep(time.Millisecond)
	}
}
