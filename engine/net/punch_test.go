package net_test

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// pathEvents takes the events waiting at h and returns its path changes,
// failing on anything but messages from peer.
func pathEvents(t *testing.T, h *net.Host) []net.Event {
	t.Helper()
	var out []net.Event
	for {
		e, ok := h.Poll()
		if !ok {
			return out
		}
		switch e.Kind {
		case net.EventPathChange:
			out = append(out, e)
		case net.EventMessage:
		default:
			t.Fatalf("unexpected event %v from %v (err %v)", e.Kind, e.Peer, e.Err)
		}
	}
}

// Punch probes to candidates that never answer are not data the peer
// lost: a relayed pair whose probes all vanish reports no loss (issue 11:
// relayed pairs showed 42-77% with nothing lost).
func TestUnansweredProbesAreNotLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(43)
		defer nw.Close()
		_, c := relayNet(t, nw, 2, func(from, to net.HostID) bool { return true })
		a, b := c[0], c[1]
		peer(t, c)
		nowhere := []netip.AddrPort{netip.MustParseAddrPort("10.9.0.1:1"), netip.MustParseAddrPort("10.9.0.2:2")}
		for _, h := range c {
			other := a.ID()
			if h == a {
				other = b.ID()
			}
			if err := h.Punch(other, nowhere); err != nil {
				t.Fatal(err)
			}
		}
		// Traffic through the relay both ways while the probes go out.
		for i := range 600 {
			a.Send(b.ID(), net.Unreliable, []byte("state"))
			b.Send(a.ID(), net.Unreliable, []byte("state"))
			if i%10 == 0 {
				pathEvents(t, a)
				pathEvents(t, b)
			}
			time.Sleep(25 * time.Millisecond)
		}
		if lost := nw.Stats().Dropped.NoRoute; lost < 100 {
			t.Fatalf("only %d probes went nowhere", lost)
		}
		for _, h := range c {
			other := a.ID()
			if h == a {
				other = b.ID()
			}
			st, _ := h.LinkStats(other)
			t.Logf("%v: loss in %.3f out %.3f, relayed %v", h.ID(), st.LossIn, st.LossOut, st.Relayed)
			if !st.Relayed {
				t.Fatal("direct through an address that does not exist")
			}
			if st.LossIn > 0.01 || st.LossOut > 0.01 {
				t.Fatalf("%v reports loss in %.3f out %.3f with nothing lost", h.ID(), st.LossIn, st.LossOut)
			}
		}
	})
}

// After "direct path lost", the retries that fail change nothing, so no
// second "relayed" event follows (issue 11); when the path heals, the pair
// goes direct again, and a second loss is reported again.
func TestPathLostIsReportedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(44)
		defer nw.Close()
		_, c := relayNet(t, nw, 2, func(from, to net.HostID) bool { return true })
		a, b := c[0], c[1]
		peer(t, c)
		if err := a.Punch(b.ID(), []netip.AddrPort{b.LocalAddr()}); err != nil {
			t.Fatal(err)
		}
		if err := b.Punch(a.ID(), []netip.AddrPort{a.LocalAddr()}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if ev := pathEvents(t, a); len(ev) != 1 || ev[0].Relayed {
			t.Fatalf("a's path events %+v, want one to direct", ev)
		}
		pathEvents(t, b)

		// The direct path breaks: only traffic through the server passes.
		var cut atomic.Bool
		cut.Store(true)
		nw.SetFilter(func(from, to netip.AddrPort, _ []byte) bool {
			return cut.Load() && from != srvAddr && to != srvAddr
		})
		// Long enough for two failed retries (5 s, then 10 s back-off, 3 s
		// each).
		time.Sleep(25 * time.Second)
		ev := pathEvents(t, a)
		if len(ev) != 1 || !ev[0].Relayed || !errors.Is(ev[0].Err, net.ErrPathLost) {
			t.Fatalf("a's path events after the cut: %+v, want one: relayed, path lost", ev)
		}
		if st, _ := a.LinkStats(b.ID()); !st.Relayed {
			t.Fatal("still direct")
		}

		cut.Store(false)
		time.Sleep(45 * time.Second) // the next retry (back-off 20 s, then 40 s)
		if ev := pathEvents(t, a); len(ev) != 1 || ev[0].Relayed {
			t.Fatalf("a's path events after healing: %+v, want one to direct", ev)
		}
		cut.Store(true)
		time.Sleep(3 * time.Second)
		if ev := pathEvents(t, a); len(ev) != 1 || !errors.Is(ev[0].Err, net.ErrPathLost) {
			t.Fatalf("a's path events after a second cut: %+v, want one: path lost", ev)
		}
	})
}
