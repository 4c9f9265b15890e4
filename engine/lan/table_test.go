package lan

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func names(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestTableExpiry(t *testing.T) {
	tab := newTable(5*time.Second, 16)
	src := netip.MustParseAddr("10.1.0.11")
	a := Beacon{Instance: 1, Name: "a", Port: 7000}
	b := Beacon{Instance: 2, Name: "b", Port: 7001}

	if changed, _ := tab.observe(a, src, t0); !changed {
		t.Error("a new entry is a change")
	}
	tab.observe(b, src, t0.Add(2*time.Second))
	if got := names(tab.entries(t0.Add(3 * time.Second))); len(got) != 2 {
		t.Fatalf("entries %v, want a and b", got)
	}
	// A repeated beacon refreshes the entry without being a change.
	if changed, _ := tab.observe(a, src, t0.Add(4*time.Second)); changed {
		t.Error("a refresh is not a change")
	}
	if next := tab.next(); !next.Equal(t0.Add(7 * time.Second)) {
		t.Errorf("next expiry %v, want b's at +7s", next)
	}
	// b expires at +7s, a (refreshed at +4s) at +9s.
	if got := names(tab.entries(t0.Add(7 * time.Second))); len(got) != 1 || got[0] != "a" {
		t.Errorf("at +7s: %v, want [a]", got)
	}
	if !tab.expire(t0.Add(7 * time.Second)) {
		t.Error("expire at +7s removed nothing")
	}
	if tab.expire(t0.Add(8 * time.Second)) {
		t.Error("expire at +8s removed something")
	}
	if !tab.expire(t0.Add(9 * time.Second)) {
		t.Error("a did not expire at +9s")
	}
	if len(tab.recs) != 0 || !tab.next().IsZero() {
		t.Errorf("table not empty: %d records", len(tab.recs))
	}
}

func TestTableChangesAndGoodbye(t *testing.T) {
	tab := newTable(time.Minute, 16)
	src := netip.MustParseAddr("192.168.1.20")
	b := Beacon{Instance: 9, Name: "x", Players: 1, Capacity: 4, Port: 7000}
	tab.observe(b, src, t0)
	b.Players = 2
	if changed, _ := tab.observe(b, src, t0.Add(time.Second)); !changed {
		t.Error("a new player count is a change")
	}
	es := tab.entries(t0.Add(time.Second))
	if len(es) != 1 || es[0].Players != 2 || es[0].Addr != netip.MustParseAddrPort("192.168.1.20:7000") ||
		!es[0].FirstSeen.Equal(t0) || !es[0].LastSeen.Equal(t0.Add(time.Second)) {
		t.Errorf("entry %+v", es)
	}
	b.Leaving = true
	if changed, _ := tab.observe(b, netip.MustParseAddr("192.168.1.21"), t0.Add(2*time.Second)); !changed {
		t.Error("a goodbye is a change")
	}
	if n := len(tab.entries(t0.Add(2 * time.Second))); n != 0 {
		t.Errorf("%d entries after the goodbye", n)
	}
	if changed, _ := tab.observe(b, src, t0.Add(3*time.Second)); changed {
		t.Error("a goodbye for an unknown instance is not a change")
	}
}

func TestTableBounded(t *testing.T) {
	tab := newTable(5*time.Second, 2)
	src := netip.MustParseAddr("10.0.0.1")
	tab.observe(Beacon{Instance: 1, Port: 1}, src, t0)
	tab.observe(Beacon{Instance: 2, Port: 1}, src, t0.Add(time.Second))
	if _, full := tab.observe(Beacon{Instance: 3, Port: 1}, src, t0.Add(2*time.Second)); !full {
		t.Error("a third advertiser fits in a table of two")
	}
	if _, full := tab.observe(Beacon{Instance: 2, Port: 1}, src, t0.Add(2*time.Second)); full {
		t.Error("a known advertiser is refused when the table is full")
	}
	// Once instance 1 expired (+5s) there is room again.
	if _, full := tab.observe(Beacon{Instance: 3, Port: 1}, src, t0.Add(5*time.Second)); full {
		t.Error("no room after an expiry")
	}
	// Sources per entry are bounded too.
	for i := range 10 {
		tab.observe(Beacon{Instance: 3, Port: 1}, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 2)}), t0.Add(5*time.Second))
	}
	if n := len(tab.recs[3].sources); n > maxSources {
		t.Errorf("%d sources kept, limit %d", n, maxSources)
	}
}

// One advertiser heard on loopback and on the LAN (same machine) is one
// entry, and its address is stable: loopback wins while it is heard.
func TestTablePrefersStableAddress(t *testing.T) {
	tab := newTable(5*time.Second, 16)
	b := Beacon{Instance: 5, Name: "both", Port: 4000}
	lanIP := netip.MustParseAddr("192.168.1.7")
	loop := netip.MustParseAddr("127.0.0.1")
	tab.observe(b, lanIP, t0)
	if changed, _ := tab.observe(b, loop, t0); !changed {
		t.Error("a better address is a change")
	}
	for i := 1; i < 4; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		tab.observe(b, lanIP, at)
		tab.observe(b, loop, at)
		es := tab.entries(at)
		if len(es) != 1 || es[0].Addr.Addr() != loop {
			t.Fatalf("entries %+v, want one at 127.0.0.1", es)
		}
	}
	// Loopback falls silent: after a TTL the LAN address takes over.
	at := t0.Add(9 * time.Second)
	tab.observe(b, lanIP, at)
	if es := tab.entries(at); es[0].Addr.Addr() != lanIP {
		t.Errorf("address %v, want the LAN one once loopback is stale", es[0].Addr)
	}
}
