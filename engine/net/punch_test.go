package net_test

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	skein "github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// pathEvents takes the events waiting at h and returns its path changes,
// failing on anything but messages from peer.
func pathEvents(t *testing.T, h *skein.Host) []skein.Event {
	t.Helper()
	var out []skein.Event
	for {
		e, ok := h.Poll()
		if !ok {
			return out
		}
		switch e.Kind {
		case skein.EventPathChange:
			out = append(out, e)
		case skein.EventMessage:
		default:
			t.Fatalf("unexpected event %v from %v (err %v)", e.Kind, e.Peer, e.Err)
		}
	}
}

// After "direct path lost", the retries that fail change nothing, so no
// second "relayed" event follows (issue 11); when the path heals, the pair
// goes direct again, and a second loss is reported again.
func TestPathLostIsReportedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(44)
		defer nw.Close()
		_, c := relayNet(t, nw, 2, func(from, to skein.HostID) bool { return true })
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
		if len(ev) != 1 || !ev[0].Relayed || !errors.Is(ev[0].Err, skein.ErrPathLost) {
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
		if ev := pathEvents(t, a); len(ev) != 1 || !errors.Is(ev[0].Err, skein.ErrPathLost) {
			t.Fatalf("a's path events after a second cut: %+v, want one: path lost", ev)
		}
	})
}
