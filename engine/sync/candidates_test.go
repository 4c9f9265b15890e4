package sync

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/portmap"
)

// A pair behind symmetric NATs is relayed. When one client's port mapping
// appears later, the client announces it, the server passes it on
// (opPeerCandidates), and the peer punches toward the mapped address at
// once, without waiting for its retry back-off. On vnet the "mapped"
// address is one the test's router watches; the real thing is
// TestNetlabPortMapLateMappingGoesDirect.
func TestMappedCandidateReachesPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(1)
		defer nw.Close()
		sym := vnet.NATType{Mapping: vnet.AddressPortDependent, Filtering: vnet.AddressPortDependent}
		for i, pub := range []string{"203.0.113.101", "203.0.113.102"} {
			if _, err := nw.AddNAT(sym, netip.MustParseAddr(pub), netip.MustParsePrefix([]string{"10.1.0.0/24", "10.2.0.0/24"}[i])); err != nil {
				t.Fatal(err)
			}
		}
		srvAt := netip.MustParseAddrPort("203.0.113.10:7000")
		sc, _ := nw.Listen(srvAt)
		srv, err := NewServer(sc, ServerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		var clients []*Client
		for _, at := range []string{"10.1.0.11:5000", "10.2.0.11:5000"} {
			conn, _ := nw.Listen(netip.MustParseAddrPort(at))
			c, err := NewClient(conn, ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Connect(t.Context(), srvAt); err != nil {
				t.Fatal(err)
			}
			if s := c.PortMapping(); s.State != portmap.Off {
				t.Fatalf("a client on vnet: port mapping %+v, want off", s)
			}
			clients = append(clients, c)
		}
		a, b := clients[0], clients[1]
		time.Sleep(time.Second)
		synctest.Wait()
		if _, err := srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second) // past the punch attempt (3 s)
		synctest.Wait()
		if st, _ := b.PeerState(a.ID()); !st.Relayed {
			t.Fatalf("b's path to a: %+v, want relayed", st)
		}
		mapped := netip.MustParseAddrPort("203.0.113.200:40000")
		var probes atomic.Int64
		nw.SetRouter(vnet.RouterFunc(func(p *vnet.Packet) bool {
			if p.To == mapped {
				if p.Sender != netip.MustParseAddrPort("10.2.0.11:5000") {
					t.Errorf("a datagram to the mapped address from %v", p.Sender)
				}
				probes.Add(1)
				return false
			}
			return true
		}))
		a.portMapChanged(portmap.Status{State: portmap.Mapped, Mapping: portmap.Mapping{Protocol: portmap.PCP, External: mapped}})
		time.Sleep(500 * time.Millisecond) // well inside the 5 s retry back-off
		synctest.Wait()
		if probes.Load() == 0 {
			t.Fatal("b sent nothing to a's mapped address")
		}
		// The same address again changes nothing; a lost mapping is
		// announced too (and b stops probing it on its next attempt).
		a.portMapChanged(portmap.Status{State: portmap.Mapped, Mapping: portmap.Mapping{Protocol: portmap.PCP, External: mapped}})
		a.portMapChanged(portmap.Status{State: portmap.Unavailable})
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		srv.do(func() error {
			if n := srv.updates[a.ID()]; n != 2 {
				t.Errorf("the server re-announced a's candidates %d times, want 2", n)
			}
			if got := srv.lan[a.ID()]; len(got) != 1 || got[0] != netip.MustParseAddrPort("10.1.0.11:5000") {
				t.Errorf("a's candidates at the server: %v", got)
			}
			return nil
		})
	})
}
