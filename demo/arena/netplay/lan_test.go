package netplay

import (
	"context"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/lan"
)

// TestLANBeacon advertises a match on this machine and finds it.
func TestLANBeacon(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	br, err := lan.Browse(ctx, lan.BrowserConfig{Scope: lan.ScopeLoopback, Kind: LANKind})
	if err != nil {
		t.Skipf("cannot browse on loopback here: %v", err)
	}
	defer br.Close()
	ad, err := AdvertiseMatch(ctx, lan.ScopeLoopback, 7777, "Ada's arena", LANMatch{Match: 1234, Map: "Pit"}, 3, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	if err := UpdateLANPlayers(ad, 5); err != nil {
		t.Fatal(err)
	}
	e, err := br.Wait(ctx, func(e lan.Entry) bool { return e.Instance == ad.Instance() && e.Players == 5 })
	if err != nil {
		t.Fatal(err)
	}
	m, ok := ParseLANBeacon(e.Beacon)
	if !ok || m.Match != 1234 || m.Map != "Pit" || e.Name != "Ada's arena" || e.Addr.Port() != 7777 || e.Capacity != 16 {
		t.Errorf("entry %+v, match %+v", e, m)
	}
	for _, b := range []lan.Beacon{
		{Kind: "skein-chat", Protocol: 1, Info: lanInfo(LANMatch{Match: 1})},
		{Kind: LANKind, Protocol: 99, Info: lanInfo(LANMatch{Match: 1})},
		{Kind: LANKind, Protocol: 1, Info: []byte{1, 2}},
		{Kind: LANKind, Protocol: 1, Info: lanInfo(LANMatch{})},
	} {
		if _, ok := ParseLANBeacon(b); ok {
			t.Errorf("accepted %+v", b)
		}
	}
}
