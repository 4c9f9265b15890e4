package vnet_test

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// natTypes names the classic NAT types.
var natTypes = []struct {
	name string
	typ  vnet.NATType
}{
	{"full cone", vnet.NATType{Mapping: vnet.EndpointIndependent, Filtering: vnet.EndpointIndependent}},
	{"restricted cone", vnet.NATType{Mapping: vnet.EndpointIndependent, Filtering: vnet.AddressDependent}},
	{"port-restricted cone", vnet.NATType{Mapping: vnet.EndpointIndependent, Filtering: vnet.AddressPortDependent}},
	{"symmetric", vnet.NATType{Mapping: vnet.AddressPortDependent, Filtering: vnet.AddressPortDependent}},
}

func addNAT(t *testing.T, n *vnet.Network, typ vnet.NATType, public, inside string) *vnet.NAT {
	t.Helper()
	x, err := n.AddNAT(typ, ip(public), netip.MustParsePrefix(inside))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// observe sends a datagram from c to srv and returns the source srv sees.
func observe(t *testing.T, c, srv *vnet.Conn) netip.AddrPort {
	t.Helper()
	write(t, c, srv.LocalAddr(), "hello")
	buf := make([]byte, 64)
	_, from, err := srv.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	return from
}

// inbox reads a conn in the background and queues the source of every
// datagram.
type inbox chan netip.AddrPort

func newInbox(c *vnet.Conn) inbox {
	ib := make(inbox, 256)
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			ib <- from
		}
	}()
	return ib
}

// within returns the source of the next datagram if one arrives within d
// (of virtual time).
func (ib inbox) within(d time.Duration) (netip.AddrPort, bool) {
	select {
	case from := <-ib:
		return from, true
	case <-time.After(d):
		return netip.AddrPort{}, false
	}
}

func TestNATMappingAndFiltering(t *testing.T) {
	for _, nt := range natTypes {
		t.Run(nt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := vnet.New(1)
				defer n.Close()
				addNAT(t, n, nt.typ, "2.2.2.2", "192.168.1.0/24")
				a := listen(t, n, "192.168.1.10:5000")
				srv := listen(t, n, "1.1.1.1:3478")
				srvPort2 := listen(t, n, "1.1.1.1:3479")
				other := listen(t, n, "4.4.4.4:1")

				m1 := observe(t, a, srv)
				ibA := newInbox(a)
				if m1.Addr() != ip("2.2.2.2") {
					t.Fatalf("server sees %v, want the NAT's public address", m1)
				}
				if observe(t, a, srv) != m1 {
					t.Fatal("mapping changed for the same destination")
				}
				m2 := observe(t, a, srvPort2)
				m3 := observe(t, a, other)
				sameForPort := nt.typ.Mapping != vnet.AddressPortDependent
				sameForAddr := nt.typ.Mapping == vnet.EndpointIndependent
				if (m1 == m2) != sameForPort || (m1 == m3) != sameForAddr {
					t.Fatalf("mappings %v %v %v for %v", m1, m2, m3, nt.typ)
				}

				// A reply from where a sent always gets in.
				write(t, srv, m1, "reply")
				if from, ok := ibA.within(time.Minute); !ok || from != srv.LocalAddr() {
					t.Fatalf("reply: %v %v", from, ok)
				}
				// Unsolicited: another port of the server, another host.
				fresh := listen(t, n, "1.1.1.1:4000")
				write(t, fresh, m1, "other port")
				_, gotPort := ibA.within(time.Minute)
				stranger := listen(t, n, "5.5.5.5:1")
				write(t, stranger, m1, "other host")
				_, gotHost := ibA.within(time.Minute)
				wantPort := nt.typ.Filtering != vnet.AddressPortDependent
				wantHost := nt.typ.Filtering == vnet.EndpointIndependent
				if gotPort != wantPort || gotHost != wantHost {
					t.Fatalf("unsolicited other port %v (want %v), other host %v (want %v)", gotPort, wantPort, gotHost, wantHost)
				}
				// Private addresses are unreachable from outside.
				write(t, srv, a.LocalAddr(), "direct")
				if st := n.Stats(); st.Dropped.NAT == 0 {
					t.Fatalf("Stats = %+v", st)
				}
			})
		})
	}
}

// punch runs a server-assisted hole punch between a host behind NAT type ta
// and one behind tb and reports whether both ends heard the other. Each side
// sends to the address the server saw for the other, and answers the source
// of whatever it hears (a peer-reflexive address, as in ICE).
func punch(t *testing.T, ta, tb vnet.NATType) bool {
	ok := false
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		addNAT(t, n, ta, "2.2.2.2", "192.168.1.0/24")
		addNAT(t, n, tb, "3.3.3.3", "192.168.2.0/24")
		a := listen(t, n, "192.168.1.10:5000")
		b := listen(t, n, "192.168.2.10:5000")
		srv := listen(t, n, "1.1.1.1:3478")
		pa, pb := observe(t, a, srv), observe(t, b, srv)
		toB, toA := pb, pa
		ibA, ibB := newInbox(a), newInbox(b)
		aHeard, bHeard := false, false
		for range 3 {
			write(t, a, toB, "punch")
			write(t, b, toA, "punch")
			if from, got := ibA.within(10 * time.Millisecond); got {
				aHeard, toB = true, from
			}
			if from, got := ibB.within(10 * time.Millisecond); got {
				bHeard, toA = true, from
			}
		}
		ok = aHeard && bHeard
	})
	return ok
}

func TestNATHolePunchMatrix(t *testing.T) {
	for i, x := range natTypes {
		for j, y := range natTypes {
			// Punching fails only between a symmetric NAT and one that
			// filters by port (symmetric or port-restricted).
			blocked := (i == 3 && j >= 2) || (j == 3 && i >= 2)
			if got, want := punch(t, x.typ, y.typ), !blocked; got != want {
				t.Errorf("%s <-> %s: punched %v, want %v", x.name, y.name, got, want)
			}
		}
	}
}

func TestNATHairpinAndLAN(t *testing.T) {
	for _, hairpin := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			n := vnet.New(1)
			defer n.Close()
			addNAT(t, n, vnet.NATType{Hairpin: hairpin}, "2.2.2.2", "192.168.1.0/24")
			a1 := listen(t, n, "192.168.1.10:5000")
			a2 := listen(t, n, "192.168.1.11:5000")
			srv := listen(t, n, "1.1.1.1:3478")
			p1, p2 := observe(t, a1, srv), observe(t, a2, srv)
			ib2 := newInbox(a2)

			write(t, a1, p2, "via the public address")
			from, ok := ib2.within(time.Minute)
			if ok != hairpin || (ok && from != p1) {
				t.Fatalf("hairpin=%v: received %v from %v, want source %v", hairpin, ok, from, p1)
			}
			write(t, a1, a2.LocalAddr(), "same LAN")
			if from, ok := ib2.within(time.Minute); !ok || from != a1.LocalAddr() {
				t.Fatalf("LAN: %v %v", from, ok)
			}
		})
	}
}

func TestNATTimeoutResetAndBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		x := addNAT(t, n, vnet.NATType{MappingTimeout: 10 * time.Second}, "2.2.2.2", "192.168.1.0/24")
		addNAT(t, n, vnet.NATType{BlockUDP: true}, "3.3.3.3", "192.168.2.0/24")
		a := listen(t, n, "192.168.1.10:5000")
		blocked := listen(t, n, "192.168.2.10:5000")
		srv := listen(t, n, "1.1.1.1:3478")
		// Conditions name real hosts, so a host behind a NAT can be impaired.
		n.SetLinkConditions(ip("1.1.1.1"), ip("192.168.1.10"), vnet.Conditions{Delay: time.Second})

		m := observe(t, a, srv)
		ibA := newInbox(a)
		time.Sleep(5 * time.Second)
		write(t, srv, m, "in time")
		start := time.Now()
		if _, ok := ibA.within(time.Minute); !ok || time.Since(start) != time.Second {
			t.Fatalf("reply within the timeout: %v after %v", ok, time.Since(start))
		}
		if x.Mappings() != 1 {
			t.Fatalf("Mappings = %d, want 1", x.Mappings())
		}
		time.Sleep(11 * time.Second) // incoming traffic does not refresh
		if x.Mappings() != 0 {
			t.Fatalf("Mappings = %d after the timeout, want 0", x.Mappings())
		}
		before := n.Stats().Dropped.NAT
		write(t, srv, m, "too late")
		if n.Stats().Dropped.NAT != before+1 {
			t.Fatal("datagram through an expired mapping not dropped")
		}

		m = observe(t, a, srv)
		x.Reset()
		write(t, srv, m, "after reset")
		write(t, blocked, srv.LocalAddr(), "blocked")
		if st := n.Stats(); st.Dropped.NAT != before+3 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

func TestAddNATErrors(t *testing.T) {
	n := vnet.New(1)
	defer n.Close()
	addNAT(t, n, vnet.NATType{}, "2.2.2.2", "192.168.1.0/24")
	for _, c := range []struct{ public, inside string }{
		{"2.2.2.2", "192.168.2.0/24"},   // same public address
		{"3.3.3.3", "192.168.0.0/16"},   // overlapping prefix
		{"192.168.1.1", "10.0.0.0/8"},   // public inside another NAT
		{"10.0.0.1", "10.0.0.0/8"},      // public inside its own prefix
		{"3.3.3.3", "192.168.1.128/25"}, // nested prefix
	} {
		if _, err := n.AddNAT(vnet.NATType{}, ip(c.public), netip.MustParsePrefix(c.inside)); err == nil {
			t.Errorf("AddNAT(%s, %s) succeeded", c.public, c.inside)
		}
	}
}
