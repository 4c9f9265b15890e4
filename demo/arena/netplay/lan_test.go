package netplay

import (
	"context"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/lan"
	"github.com/skein-dev/skein/engine/net"
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
	id, _ := net.NewIdentity()
	ad, err := AdvertiseMatch(ctx, lan.ScopeLoopback, 7777, "Ada's arena", LANMatch{Match: 1234, Map: "Pit", Key: id.Current()}, 3, 16, nil)
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
	if !ok || m.Match != 1234 || m.Map != "Pit" || m.Key != id.Current() || e.Name != "Ada's arena" || e.Addr.Port() != 7777 || e.Capacity != 16 {
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

// A beacon's Info round-trips with and without the server key, and no map
// name can be read as a key.
func TestLANInfoKey(t *testing.T) {
	id, _ := net.NewIdentity()
	k := id.Current()
	for _, m := range []LANMatch{
		{Match: 7, Map: "Foundry", Key: k},
		{Match: 7, Map: "Foundry"},
		{Match: 7, Map: "", Key: k},
		{Match: 7, Map: string(make([]byte, 40)), Key: k}, // NULs in the name are dropped
	} {
		got, ok := ParseLANBeacon(lan.Beacon{Kind: LANKind, Protocol: 1, Info: lanInfo(m)})
		if !ok || got.Match != m.Match || got.Key != m.Key {
			t.Errorf("%+v read back as %+v", m, got)
		}
	}
}

func TestParseJoin(t *testing.T) {
	id, _ := net.NewIdentity()
	k := id.Current()
	for _, c := range []struct {
		in, server string
		pinned     bool
	}{
		{"example.org:7777", "example.org:7777", false},
		{" 10.0.0.1 ", "10.0.0.1", false},
		{"10.0.0.1:7000#" + k.String(), "10.0.0.1:7000", true},
		{JoinLink("example.org:7777", k), "example.org:7777", true},
		{"skein://example.org/#" + k.String(), "example.org", true},
	} {
		server, key, pinned, err := ParseJoin(c.in)
		if err != nil || server != c.server || pinned != c.pinned || pinned && key != k {
			t.Errorf("ParseJoin(%q) = %q %v %v %v", c.in, server, key, pinned, err)
		}
	}
	if _, _, _, err := ParseJoin("10.0.0.1:7000#notakey"); err == nil {
		t.Error("a bad key was accepted")
	}
}
