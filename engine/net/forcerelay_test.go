package net_test

import (
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// punchedPair connects two peers through a relaying server and lets them
// punch a direct path to each other.
func punchedPair(t *testing.T, nw *vnet.Network) (a, b *net.Host) {
	t.Helper()
	_, c := relayNet(t, nw, 2, func(from, to net.HostID) bool { return true })
	a, b = c[0], c[1]
	peer(t, c)
	if err := a.Punch(b.ID(), []netip.AddrPort{b.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	if err := b.Punch(a.ID(), []netip.AddrPort{a.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	for _, h := range c {
		if ev := pathEvents(t, h); len(ev) != 1 || ev[0].Relayed {
			t.Fatalf("%v's path events %+v, want one to direct", h.ID(), ev)
		}
	}
	return a, b
}

// relayedBothWays checks that each of a and b reaches the other through
// the relay, by its link state and by a message each way.
func relayedBothWays(t *testing.T, a, b *net.Host, want bool) {
	t.Helper()
	for _, p := range [][2]*net.Host{{a, b}, {b, a}} {
		from, to := p[0], p[1]
		if st, _ := from.LinkStats(to.ID()); st.Relayed != want {
			t.Fatalf("%v->%v relayed %v, want %v (%s)", from.ID(), to.ID(), st.Relayed, want, st.Path)
		}
		if err := from.Send(to.ID(), net.Reliable, []byte("which way")); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, to, net.EventMessage, from.ID()); e.Relayed != want {
			t.Fatalf("%v->%v message relayed %v, want %v", from.ID(), to.ID(), e.Relayed, want)
		}
	}
}

// ForceRelay on one side moves both directions onto the relay, with an
// event at each end; releasing it lets both punch back to direct, and
// nothing goes direct in between, past punching's retry back-off.
func TestForceRelayBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(46)
		defer nw.Close()
		a, b := punchedPair(t, nw)
		relayedBothWays(t, a, b, false)

		if err := a.ForceRelay(b.ID(), true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		for _, h := range []*net.Host{a, b} {
			ev := pathEvents(t, h)
			if len(ev) != 1 || !ev[0].Relayed || !errors.Is(ev[0].Err, net.ErrForcedRelay) {
				t.Fatalf("%v's path events after ForceRelay: %+v, want one: relayed, forced", h.ID(), ev)
			}
		}
		relayedBothWays(t, a, b, true)
		time.Sleep(30 * time.Second) // several punch retry periods
		for _, h := range []*net.Host{a, b} {
			if ev := pathEvents(t, h); len(ev) != 0 {
				t.Fatalf("%v's path events while forced: %+v, want none", h.ID(), ev)
			}
		}
		relayedBothWays(t, a, b, true)

		if err := a.ForceRelay(b.ID(), false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		for _, h := range []*net.Host{a, b} {
			if ev := pathEvents(t, h); len(ev) != 1 || ev[0].Relayed {
				t.Fatalf("%v's path events after release: %+v, want one to direct", h.ID(), ev)
			}
		}
		relayedBothWays(t, a, b, false)
	})
}

// The peer that forced the relay holds it even when the other side
// releases its own force, and a peer that missed every force notice still
// leaves the direct path (the forcing side stops answering its probes).
func TestForceRelayHeldAndNoticeLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(47)
		defer nw.Close()
		a, b := punchedPair(t, nw)
		// Every notice is lost: nothing from a reaches the server for a
		// moment (the notices go out through the relay).
		srv := netip.MustParseAddrPort("10.0.0.1:7000")
		nw.SetFilter(func(from, to netip.AddrPort, _ []byte) bool {
			return from == a.LocalAddr() && to == srv
		})
		if err := a.ForceRelay(b.ID(), true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		nw.SetFilter(nil)
		time.Sleep(3 * time.Second)
		if ev := pathEvents(t, b); len(ev) != 1 || !ev[0].Relayed || !errors.Is(ev[0].Err, net.ErrPathLost) {
			t.Fatalf("b's path events with the notices lost: %+v, want one: relayed, path lost", ev)
		}
		pathEvents(t, a)
		time.Sleep(30 * time.Second) // b's retries find no direct path
		relayedBothWays(t, a, b, true)

		// b forces and releases its own side: a still forces, both stay relayed.
		if err := b.ForceRelay(a.ID(), true); err != nil {
			t.Fatal(err)
		}
		if err := b.ForceRelay(a.ID(), false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		pathEvents(t, a)
		pathEvents(t, b)
		relayedBothWays(t, a, b, true)
	})
}
