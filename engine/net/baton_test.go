package net_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// waitFor polls cond until it holds, failing after 10 s (a bound for a
// broken host, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestBatonNextReads: a Next that finds no event takes the reader baton and
// reads the socket itself; the messages arrive whole and in order, reliable
// and unreliable, whoever reads.
func TestBatonNextReads(t *testing.T) {
	checkGoroutines(t)
	srv, cli := pair(t, net.Config{}, net.Config{})
	for _, d := range []net.Delivery{net.Reliable, net.Unreliable} {
		for i := range 200 {
			msg := fmt.Appendf(nil, "%v %d", d.Reliable, i)
			if err := cli.Send(net.ServerID, d, msg); err != nil {
				t.Fatal(err)
			}
			e := expect(t, srv, net.EventMessage, cli.ID())
			if string(e.Data) != string(msg) {
				t.Fatalf("got %q, want %q", e.Data, msg)
			}
		}
	}
	if st := srv.Stats().Baton; st.Takes == 0 {
		t.Fatalf("Next never took the baton: %+v", st)
	}
}

// TestBatonContextEnds: a Next blocked in the socket read returns when its
// context ends, and the reader goroutine reads again afterwards (a Poll
// loop gets what arrives).
func TestBatonContextEnds(t *testing.T) {
	checkGoroutines(t)
	srv, cli := pair(t, net.Config{}, net.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := srv.Next(ctx)
		done <- err
	}()
	waitFor(t, "the baton to be taken", func() bool { return srv.Stats().Baton.Takes > 0 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after its context ended")
	}
	if err := cli.Send(net.ServerID, net.Reliable, []byte("after")); err != nil {
		t.Fatal(err)
	}
	var got net.Event
	waitFor(t, "the message through Poll", func() bool {
		e, ok := srv.Poll()
		if ok && e.Kind == net.EventMessage {
			got = e
			return true
		}
		return false
	})
	if string(got.Data) != "after" {
		t.Fatalf("got %q", got.Data)
	}
}

// TestBatonEventFromElsewhere: an event another goroutine pushes (here a
// Kick's disconnect) reaches a Next blocked in the socket read.
func TestBatonEventFromElsewhere(t *testing.T) {
	checkGoroutines(t)
	srv, cli := pair(t, net.Config{}, net.Config{})
	got := make(chan net.Event, 1)
	go func() {
		e, err := srv.Next(context.Background())
		if err == nil {
			got <- e
		}
		close(got)
	}()
	waitFor(t, "the baton to be taken", func() bool { return srv.Stats().Baton.Takes > 0 })
	if err := srv.Kick(cli.ID(), "bye"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Kind != net.EventDisconnected || e.Peer != cli.ID() {
			t.Fatalf("got %v from %v, want the kicked client's disconnect", e.Kind, e.Peer)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked Next did not get the disconnect")
	}
}

// TestBatonGoesBack: once the application stops calling Next (and calls
// nothing else), the timer goroutine gives the baton back to the reader
// goroutine, which reads and acknowledges what arrives meanwhile.
func TestBatonGoesBack(t *testing.T) {
	checkGoroutines(t)
	srv, cli := pair(t, net.Config{}, net.Config{})
	// The baton is with the reader goroutine (every take returned, pair's
	// Next included), and then the server's Next takes it: it waits, with
	// nothing queued, before "one" is sent. (Sending first let the reader
	// goroutine queue "one" before Next came on a loaded machine: Next
	// took it without the baton, and nothing was ever given back.)
	waitFor(t, "pair's baton to go back", func() bool { b := srv.Stats().Baton; return b.Takes == b.Returns })
	before := srv.Stats().Baton
	got := make(chan net.Event, 1)
	go func() {
		defer close(got)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if e, err := srv.Next(ctx); err == nil {
			got <- e
		}
	}()
	waitFor(t, "the server's Next to take the baton", func() bool { return srv.Stats().Baton.Takes > before.Takes })
	if err := cli.Send(net.ServerID, net.Reliable, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if e := <-got; e.Kind != net.EventMessage || e.Peer != cli.ID() {
		t.Fatalf("the server's Next got %v from %v, want the message", e.Kind, e.Peer)
	}
	waitFor(t, "the baton to go back", func() bool { return srv.Stats().Baton.Returns > before.Returns })
	for i := range 50 {
		if err := cli.Send(net.ServerID, net.Reliable, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the server to acknowledge everything", func() bool {
		st, ok := cli.LinkStats(net.ServerID)
		return ok && st.SendQueue == 0
	})
}

// TestBatonClose: a Next blocked in the socket read returns once the host
// closes, after the events still waiting.
func TestBatonClose(t *testing.T) {
	checkGoroutines(t)
	srv, _ := pair(t, net.Config{}, net.Config{})
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := srv.Next(context.Background()); err != nil {
				done <- err
				return
			}
		}
	}()
	waitFor(t, "the baton to be taken", func() bool { return srv.Stats().Baton.Takes > 0 })
	srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrHostClosed) {
			t.Fatalf("Next returned %v, want ErrHostClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after Close")
	}
}

// TestBatonContextAfterContext: Next after Next, each with a context of its
// own (the reader goroutine takes each one's Done channel in turn): the end
// of a context whose Next returned does not end the next Next's wait, and
// the end of the current one does, again and again.
func TestBatonContextAfterContext(t *testing.T) {
	checkGoroutines(t)
	srv, cli := pair(t, net.Config{}, net.Config{})
	send := func(s string) {
		t.Helper()
		if err := cli.Send(net.ServerID, net.Reliable, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	within := func(what string, c <-chan error) error {
		t.Helper()
		select {
		case err := <-c:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s within 10 s", what)
			return nil
		}
	}
	for i := range 10 {
		first, endFirst := context.WithCancel(context.Background())
		send(fmt.Sprint("first ", i))
		if e, err := srv.Next(first); err != nil || e.Kind != net.EventMessage {
			t.Fatalf("round %d: %v %v, want the first message", i, e.Kind, err)
		}
		second, endSecond := context.WithCancel(context.Background())
		msg, ended := make(chan error, 1), make(chan error, 1)
		go func() {
			e, err := srv.Next(second)
			if err == nil && (e.Kind != net.EventMessage || string(e.Data) != "second") {
				err = fmt.Errorf("got %v %q, want the second message", e.Kind, e.Data)
			}
			msg <- err
			_, err = srv.Next(second)
			ended <- err
		}()
		endFirst() // ends a context no Next waits on any more
		send("second")
		if err := within("second message", msg); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		endSecond()
		if err := within("return from the ended Next", ended); !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: Next returned %v, want context.Canceled", i, err)
		}
	}
}
