package net_test

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// natServer starts a server at 1.1.1.1:7000 with alternate NAT-probe
// endpoints at each of alts.
func natServer(t *testing.T, nw *vnet.Network, alts ...string) *net.Host {
	t.Helper()
	sc, err := nw.Listen(netip.MustParseAddrPort("1.1.1.1:7000"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.NewHost(sc, net.Config{Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alts {
		pc, err := nw.Listen(netip.MustParseAddrPort(a))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.AddProbeConn(pc); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// detect connects a client at local (behind typ unless typ is nil) to
// srv and runs DetectNAT.
func detect(t *testing.T, nw *vnet.Network, typ *vnet.NATType, local string) net.NATReport {
	t.Helper()
	if typ != nil {
		if _, err := nw.AddNAT(*typ, netip.MustParseAddr("2.2.2.2"), netip.MustParsePrefix("192.168.1.0/24")); err != nil {
			t.Fatal(err)
		}
	}
	cc, err := nw.Listen(netip.MustParseAddrPort(local))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := net.NewHost(cc, net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Shutdown(context.Background()) })
	if err := cli.Dial(t.Context(), netip.MustParseAddrPort("1.1.1.1:7000")); err != nil {
		t.Fatal(err)
	}
	r, err := cli.DetectNAT(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Every NAT type vnet simulates is classified as it is, by a server with a
// second address and port (RFC 5780).
func TestDetectNATTypes(t *testing.T) {
	ei, ad, apd := vnet.EndpointIndependent, vnet.AddressDependent, vnet.AddressPortDependent
	cases := []struct {
		name               string
		nat                *vnet.NATType
		typ                net.NATType
		mapping, filtering net.NATBehavior
		hairpin            bool
	}{
		{"public", nil, net.NATPublic, net.EndpointIndependent, net.EndpointIndependent, false},
		{"full cone", &vnet.NATType{Mapping: ei, Filtering: ei}, net.NATEndpointIndependent, net.EndpointIndependent, net.EndpointIndependent, false},
		{"restricted cone", &vnet.NATType{Mapping: ei, Filtering: ad}, net.NATEndpointIndependent, net.EndpointIndependent, net.AddressDependent, false},
		{"port-restricted cone", &vnet.NATType{Mapping: ei, Filtering: apd}, net.NATEndpointIndependent, net.EndpointIndependent, net.AddressPortDependent, false},
		{"port-restricted cone, hairpin", &vnet.NATType{Mapping: ei, Filtering: apd, Hairpin: true}, net.NATEndpointIndependent, net.EndpointIndependent, net.AddressPortDependent, true},
		{"address-dependent mapping", &vnet.NATType{Mapping: ad, Filtering: ad}, net.NATSymmetric, net.AddressDependent, net.AddressDependent, false},
		{"symmetric", &vnet.NATType{Mapping: apd, Filtering: apd}, net.NATSymmetric, net.AddressPortDependent, net.AddressPortDependent, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := vnet.New(7)
				defer nw.Close()
				srv := natServer(t, nw, "1.1.1.1:7001", "1.1.1.2:7000", "1.1.1.2:7001")
				defer srv.Shutdown(context.Background())
				local := "192.168.1.10:5000"
				if c.nat == nil {
					local = "5.5.5.5:5000"
				}
				r := detect(t, nw, c.nat, local)
				if r.Type != c.typ || r.Mapping != c.mapping || r.Filtering != c.filtering || r.Hairpin != c.hairpin {
					t.Fatalf("report %v, want %v (mapping %v, filtering %v, hairpin %v)", r, c.typ, c.mapping, c.filtering, c.hairpin)
				}
				if want := netip.MustParseAddr("2.2.2.2"); c.nat != nil && r.Mapped.Addr() != want {
					t.Fatalf("mapped %v, want an address of %v", r.Mapped, want)
				}
			})
		})
	}
}

// With only a second port (no second address), mapping is still told
// apart, and filtering as far as a port change shows it.
func TestDetectNATSecondPortOnly(t *testing.T) {
	for _, c := range []struct {
		nat       vnet.NATType
		typ       net.NATType
		filtering net.NATBehavior
	}{
		{vnet.NATType{Mapping: vnet.EndpointIndependent, Filtering: vnet.AddressDependent}, net.NATEndpointIndependent, net.AddressDependent},
		{vnet.NATType{Mapping: vnet.AddressPortDependent, Filtering: vnet.AddressPortDependent}, net.NATSymmetric, net.AddressPortDependent},
	} {
		synctest.Test(t, func(t *testing.T) {
			nw := vnet.New(8)
			defer nw.Close()
			srv := natServer(t, nw, "1.1.1.1:7001")
			defer srv.Shutdown(context.Background())
			r := detect(t, nw, &c.nat, "192.168.1.10:5000")
			if r.Type != c.typ || r.Filtering != c.filtering {
				t.Fatalf("report %v, want %v with filtering %v", r, c.typ, c.filtering)
			}
		})
	}
}

// A server without alternate endpoints tells only the public address: the
// type stays unknown behind a NAT, and is public without one.
func TestDetectNATWithoutAlternates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(9)
		defer nw.Close()
		srv := natServer(t, nw)
		defer srv.Shutdown(context.Background())
		typ := vnet.NATType{Mapping: vnet.AddressPortDependent, Filtering: vnet.AddressPortDependent}
		r := detect(t, nw, &typ, "192.168.1.10:5000")
		if r.Type != net.NATUnknown || r.Mapping != net.BehaviorUnknown || !r.Mapped.IsValid() {
			t.Fatalf("report %v (mapped %v), want unknown with a mapped address", r, r.Mapped)
		}
	})
}

// A server has no NAT to detect; a client takes no more than three
// alternate endpoints' worth of probes from a server.
func TestDetectNATErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(10)
		defer nw.Close()
		srv := natServer(t, nw, "1.1.1.1:7001", "1.1.1.2:7000", "1.1.1.2:7001")
		defer srv.Shutdown(context.Background())
		if _, err := srv.DetectNAT(t.Context()); err == nil {
			t.Fatal("a server ran DetectNAT")
		}
		pc, _ := nw.Listen(netip.MustParseAddrPort("1.1.1.3:7000"))
		if err := srv.AddProbeConn(pc); err == nil {
			t.Fatal("a fourth probe endpoint was taken")
		}
		pc.Close()
		cc, _ := nw.Listen(netip.MustParseAddrPort("5.5.5.5:1"))
		cli, _ := net.NewHost(cc, net.Config{})
		defer cli.Shutdown(context.Background())
		if _, err := cli.DetectNAT(t.Context()); err == nil {
			t.Fatal("DetectNAT without a server link")
		}
		if err := cli.AddProbeConn(cc); err == nil {
			t.Fatal("a client took a probe endpoint")
		}
	})
}
