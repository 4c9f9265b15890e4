package sync_test

import (
	"context"
	stdnet "net"
	"net/netip"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// natProbeServer starts the lab's server with its three alternate NAT-probe
// endpoints: 203.0.113.10:7001 and 203.0.113.11 on both ports.
func (l *lab) natProbeServer() *sync.Server {
	l.t.Helper()
	srv, err := sync.NewServer(l.udpIn("server", labServer), sync.ServerConfig{})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { srv.Close() })
	for _, a := range []string{"203.0.113.10:7001", "203.0.113.11:7000", "203.0.113.11:7001"} {
		if err := srv.AddNATProbeConn(l.udpIn("server", netip.MustParseAddrPort(a))); err != nil {
			l.t.Fatal(err)
		}
	}
	return srv
}

// natClient connects a client on lab host h to srv and returns it.
func (l *lab) natClient(srv *sync.Server, h string) *sync.Client {
	l.t.Helper()
	ip := netip.MustParseAddr(l.run("addr", h))
	c, err := sync.NewClient(l.udpIn(h, netip.AddrPortFrom(ip, 0)), sync.ClientConfig{})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx, labServer); err != nil {
		l.t.Fatalf("%s connects: %v", h, err)
	}
	waitFor(l.t, srv, sync.EventConnected)
	return c
}

// The NAT type of every kind of host netlab offers, from the real Linux
// NAT: a public host (p1), a cone router (Linux masquerade: endpoint-
// independent mapping, address-and-port-dependent filtering, no
// hairpinning) and a symmetric one (masquerade fully-random).
func TestNetlabNATTypes(t *testing.T) {
	l := upLab(t, "--nat-a", "cone", "--nat-b", "symmetric")
	srv := l.natProbeServer()
	cases := []struct {
		host               string
		typ                net.NATType
		mapping, filtering net.NATBehavior
	}{
		{"p1", net.NATPublic, net.EndpointIndependent, net.EndpointIndependent},
		{"a1", net.NATEndpointIndependent, net.EndpointIndependent, net.AddressPortDependent},
		{"b1", net.NATSymmetric, net.AddressPortDependent, net.AddressPortDependent},
	}
	for _, c := range cases {
		cl := l.natClient(srv, c.host)
		e := waitFor(t, cl, sync.EventNATType)
		r := e.NAT
		t.Logf("%s: %v, public address %v", c.host, r, r.Mapped)
		if e.Err != nil || r.Type != c.typ || r.Mapping != c.mapping || r.Filtering != c.filtering || r.Hairpin {
			t.Errorf("%s: %v (%v), want %v, mapping %v, filtering %v, no hairpin", c.host, r, e.Err, c.typ, c.mapping, c.filtering)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.NATCounts() != [net.NumNATTypes]int{net.NATPublic: 1, net.NATEndpointIndependent: 1, net.NATSymmetric: 1} {
		if time.Now().After(deadline) {
			t.Fatalf("server counts %v", srv.NATCounts())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A client whose router drops UDP reaches the server over TCP and reports
// its NAT type as UDP blocked.
func TestNetlabNATTypeUDPBlocked(t *testing.T) {
	l := upLab(t, "--nat-a", "blocked")
	srv := l.natProbeServer()
	var ln stdnet.Listener
	if err := inNetns(labPrefix+"server", func() (err error) {
		ln, err = stdnet.Listen("tcp4", labServer.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeTCP(ln); err != nil {
		t.Fatal(err)
	}
	var c *sync.Client
	ip := l.run("addr", "a1")
	if err := inNetns(labPrefix+"a1", func() (err error) {
		c, err = sync.DialClient(context.Background(), ip+":0", labServer, sync.ClientConfig{UDPTimeout: time.Second})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := waitFor(t, c, sync.EventNATType)
	if e.Err != nil || e.NAT.Type != net.NATUDPBlocked || c.Transport() != "tcp" {
		t.Fatalf("NAT %v (%v) over %s, want UDP blocked over tcp", e.NAT, e.Err, c.Transport())
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.NATCounts()[net.NATUDPBlocked] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("server counts %v", srv.NATCounts())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
