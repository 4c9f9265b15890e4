package sync

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func addrPorts(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

// A socket bound to "::" (dual-stack) offers its global IPv6 addresses
// after its IPv4 ones; one bound to "0.0.0.0" offers IPv4 only; loopback
// and link-local addresses never.
func TestInterfaceCandidates(t *testing.T) {
	ifaddrs := addrs("127.0.0.1", "192.168.1.5", "::1", "fe80::1", "2001:db8::5", "169.254.0.9", "10.0.0.5", "fd00::5")
	for _, c := range []struct {
		local string
		want  []netip.AddrPort
	}{
		{"[::]:7000", addrPorts("192.168.1.5:7000", "10.0.0.5:7000", "[2001:db8::5]:7000", "[fd00::5]:7000")},
		{"0.0.0.0:7000", addrPorts("192.168.1.5:7000", "10.0.0.5:7000")},
	} {
		got := interfaceCandidates(netip.MustParseAddrPort(c.local), ifaddrs)
		if !slices.Equal(got, c.want) {
			t.Errorf("bound to %s: %v, want %v", c.local, got, c.want)
		}
	}
	many := make([]netip.Addr, 0, 2*maxAddrs)
	for i := range 2 * maxAddrs {
		many = append(many, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}))
	}
	if got := interfaceCandidates(netip.MustParseAddrPort("[::]:1"), many); len(got) != maxAddrs {
		t.Errorf("%d candidates, want at most %d", len(got), maxAddrs)
	}
	if got := localCandidates(netip.MustParseAddrPort("10.1.2.3:4")); !slices.Equal(got, addrPorts("10.1.2.3:4")) {
		t.Errorf("bound to one address: %v", got)
	}
}

// A peer's IPv6 candidate is offered only to a client that has IPv6.
func TestReachableCandidates(t *testing.T) {
	v4, v6 := netip.MustParseAddrPort("10.0.0.5:1"), netip.MustParseAddrPort("[2001:db8::5]:1")
	pub4, pub6 := netip.MustParseAddrPort("198.51.100.1:2"), netip.MustParseAddrPort("[2001:db8::9]:2")
	for _, c := range []struct {
		a, toPub netip.AddrPort
		toCands  []netip.AddrPort
		want     bool
	}{
		{v4, pub4, nil, true},
		{v6, pub4, nil, false},
		{v6, pub4, addrPorts("10.0.0.9:1"), false},
		{v6, pub4, addrPorts("10.0.0.9:1", "[2001:db8::7]:1"), true},
		{v6, pub6, nil, true},
	} {
		if got := reachable(c.a, c.toPub, c.toCands); got != c.want {
			t.Errorf("reachable(%v, %v, %v) = %v", c.a, c.toPub, c.toCands, got)
		}
	}
}

// Two dual-stack clients behind symmetric IPv4 NATs (no direct IPv4 path)
// that announce global IPv6 addresses go direct over IPv6 once grouped:
// the server offers each the other's IPv6 candidate.
func TestIPv6PeersGoDirect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(81)
		defer nw.Close()
		srvAddr := netip.MustParseAddrPort("203.0.113.10:7000")
		sc, _ := nw.Listen(srvAddr)
		srv, err := NewServer(sc, ServerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		sym := vnet.NATType{Mapping: vnet.AddressPortDependent, Filtering: vnet.AddressPortDependent}
		var cs []*Client
		for i, home := range []string{"10.1.0", "10.2.0"} {
			if _, err := nw.AddNAT(sym, netip.AddrFrom4([4]byte{203, 0, 113, byte(101 + i)}), netip.MustParsePrefix(home+".0/24")); err != nil {
				t.Fatal(err)
			}
			local := netip.MustParseAddrPort(home + ".11:5000")
			v6 := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i + 1), 15: 1}), 5000)
			conn, _ := nw.Listen(local)
			if err := conn.AddAddr(v6); err != nil {
				t.Fatal(err)
			}
			c, err := NewClient(conn, ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			err = c.Connect(ctx, srvAddr)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			// What localCandidates announces for a dual-stack socket (a
			// vnet conn has no interfaces to list).
			announce := appendControl(nil, control{Op: opCandidates, Addrs: []netip.AddrPort{local, v6}})
			if err := c.h.Send(net.ServerID, net.Reliable, announce); err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		time.Sleep(time.Second)
		if _, err := srv.CreateGroup([]net.HostID{cs[0].ID(), cs[1].ID()}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		for i, c := range cs {
			st, ok := c.PeerState(cs[1-i].ID())
			if !ok || st.Relayed || !strings.HasPrefix(st.Path, "direct [2001:db8:") {
				t.Fatalf("client %d: %+v, want direct over IPv6", i, st)
			}
		}
	})
}
