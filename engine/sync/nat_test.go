package sync_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/sync"
)

// natProbeWorld is natWorld with a server that has the three alternate
// NAT-probe endpoints (a second port, a second address on both ports).
// cfg, if not nil, configures the host of the client at ip.
func natProbeWorld(t *testing.T, seed int64, kinds []natKind, cfg func(ip netip.Addr) net.Config) *world {
	t.Helper()
	w := &world{t: t, nw: vnet.New(seed)}
	t.Cleanup(func() { w.nw.Close() })
	sc, _ := w.nw.Listen(natSrv)
	srv, err := sync.NewServer(sc, sync.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w.srv = srv
	t.Cleanup(func() { srv.Close() })
	for _, a := range []string{"203.0.113.10:7001", "203.0.113.11:7000", "203.0.113.11:7001"} {
		pc, err := w.nw.Listen(netip.MustParseAddrPort(a))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.AddNATProbeConn(pc); err != nil {
			t.Fatal(err)
		}
	}
	w.dialBehindNATs(kinds, cfg)
	return w
}

// Each client learns its NAT type (event and API), the server counts the
// types, and each peer learns the other's.
func TestClientNATTypeReachesServerAndPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kinds := []natKind{public, portRestricted, symmetric}
		want := []net.NATType{net.NATPublic, net.NATEndpointIndependent, net.NATSymmetric}
		w := natProbeWorld(t, 3, kinds, nil)
		for i, c := range w.clients {
			e := next(t, c, sync.EventNATType)
			if e.Err != nil || e.NAT.Type != want[i] {
				t.Fatalf("%s: NAT event %v (%v), want %v", kinds[i].name, e.NAT, e.Err, want[i])
			}
			if r, ok := c.NAT(); !ok || r != e.NAT {
				t.Fatalf("%s: NAT() %v %v, want the event's report", kinds[i].name, r, ok)
			}
		}
		time.Sleep(time.Second) // the reports reach the server
		n := w.srv.NATCounts()
		if n[net.NATPublic] != 1 || n[net.NATEndpointIndependent] != 1 || n[net.NATSymmetric] != 1 {
			t.Fatalf("server counts %v", n)
		}
		ids := []net.HostID{w.clients[0].ID(), w.clients[1].ID(), w.clients[2].ID()}
		if _, err := w.srv.CreateGroup(ids, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		for i, c := range w.clients {
			for j, p := range w.clients {
				if i == j {
					continue
				}
				if r, ok := c.PeerNAT(p.ID()); !ok || r.Type != want[j] {
					t.Fatalf("%s sees %s's NAT as %v (%v), want %v", kinds[i].name, kinds[j].name, r, ok, want[j])
				}
			}
		}
		w.clients[2].Close()
		time.Sleep(time.Second)
		if n := w.srv.NATCounts(); n[net.NATSymmetric] != 0 {
			t.Fatalf("counts after the symmetric client left: %v", n)
		}
	})
}

// A symmetric NAT and a port-restricted cone (both address-and-port
// filtering) cannot punch the plain way; birthday punching gets them
// direct, in the background, while the relay carries the game.
func TestBirthdayPunchConeSymmetric(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w *world
		w = natProbeWorld(t, 11, []natKind{portRestricted, symmetric}, func(ip netip.Addr) net.Config {
			return net.Config{Punch: net.PunchConfig{BirthdayListen: func() (net.PacketConn, error) {
				return w.nw.Listen(netip.AddrPortFrom(ip, 0))
			}}}
		})
		a, b := w.clients[0], w.clients[1]
		for _, c := range w.clients {
			next(t, c, sync.EventNATType)
		}
		start := time.Now()
		if _, err := w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
			t.Fatal(err)
		}
		isDirect := func(c *sync.Client, peer net.HostID) bool {
			st, ok := c.PeerState(peer)
			return ok && !st.Relayed
		}
		for !isDirect(a, b.ID()) || !isDirect(b, a.ID()) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("not direct after %v: a %+v, b %+v", time.Since(start), a.Host().BirthdayStats(), b.Host().BirthdayStats())
			}
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(start)
		sa, sb := a.Host().BirthdayStats(), b.Host().BirthdayStats()
		t.Logf("direct after %v (virtual time); probes: easy side %d, hard side %d", took, sa.Probes, sb.Probes)
		if sa.Attempts != 1 || sb.Attempts != 1 || sa.Won+sb.Won == 0 {
			t.Fatalf("birthday stats: easy %+v, hard %+v", sa, sb)
		}
		if sa.Probes > 2048 || sb.Probes > 3*256+1 {
			t.Fatalf("over the bounds: easy %d probes, hard %d", sa.Probes, sb.Probes)
		}
		for _, c := range []struct {
			from *sync.Client
			peer net.HostID
		}{{a, b.ID()}, {b, a.ID()}} {
			if st, _ := c.from.Host().LinkStats(c.peer); st.Birthday != net.BirthdayWon {
				t.Fatalf("link to %v says birthday punching %v, want won", c.peer, st.Birthday)
			}
		}
		st, _ := b.PeerState(a.ID())
		if !strings.HasPrefix(st.Path, "direct 203.0.113.101:") {
			t.Fatalf("hard side's path %q, want the cone's public address", st.Path)
		}
		exchange(t, a, b, 200, nil)
		// The losing sockets are closed: only the winning one is left of
		// the hard side's 256, and it goes with the link.
		if n := b.Host().BirthdayStats().Sockets; n != 1 {
			t.Fatalf("hard side has %d extra sockets open while direct, want 1", n)
		}
		if err := w.srv.DestroyGroup(w.srv.Groups()[0]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if n := b.Host().BirthdayStats().Sockets; n != 0 {
			t.Fatalf("hard side has %d extra sockets open after the peer left, want 0", n)
		}
	})
}

// A symmetric side with birthday punching off (BirthdayPorts < 0) never
// starts an attempt, and its link says so (BirthdayNone): a game does not
// blame birthday punching there. The cone side's attempt runs alone and
// ends without a path (BirthdayFailed); the pair stays on the relay.
func TestBirthdayPhaseWhenOneSideIsOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w *world
		w = natProbeWorld(t, 11, []natKind{portRestricted, symmetric}, func(ip netip.Addr) net.Config {
			ports := 0
			if ip == netip.MustParseAddr("10.2.0.11") {
				ports = -1 // the symmetric side
			}
			return net.Config{Punch: net.PunchConfig{BirthdayPorts: ports, BirthdayListen: func() (net.PacketConn, error) {
				return w.nw.Listen(netip.AddrPortFrom(ip, 0))
			}}}
		})
		a, b := w.clients[0], w.clients[1]
		for _, c := range w.clients {
			next(t, c, sync.EventNATType)
		}
		if _, err := w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if st, ok := a.Host().LinkStats(b.ID()); !ok || st.Birthday != net.BirthdayRunning {
			t.Fatalf("cone side after 1 s: birthday %v (%v), want running", st.Birthday, ok)
		}
		time.Sleep(10 * time.Second) // past BirthdayTimeout (6 s)
		sa, _ := a.Host().LinkStats(b.ID())
		sb, _ := b.Host().LinkStats(a.ID())
		if !sa.Relayed || !sb.Relayed {
			t.Fatalf("direct without the symmetric side's sockets: %q, %q", sa.Path, sb.Path)
		}
		if sa.Birthday != net.BirthdayFailed || sb.Birthday != net.BirthdayNone {
			t.Fatalf("birthday: cone side %v, symmetric side %v; want failed, none", sa.Birthday, sb.Birthday)
		}
		if n := b.Host().BirthdayStats().Attempts; n != 0 {
			t.Fatalf("the symmetric side counts %d attempts, want 0", n)
		}
	})
}

// A NAT report that arrives after the group formed still reaches the
// peers (the server passes it on when it arrives).
func TestPeerNATArrivesAfterTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &world{t: t, nw: vnet.New(12)}
		t.Cleanup(func() { w.nw.Close() })
		// 30 ms each way: the NAT checks take seconds of virtual time, the
		// group forms at once.
		w.nw.SetConditions(vnet.Conditions{Delay: 30 * time.Millisecond})
		sc, _ := w.nw.Listen(natSrv)
		srv, err := sync.NewServer(sc, sync.ServerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		w.srv = srv
		t.Cleanup(func() { srv.Close() })
		pc, _ := w.nw.Listen(netip.MustParseAddrPort("203.0.113.11:7000"))
		if err := srv.AddNATProbeConn(pc); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			pub := netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", 101+i))
			if _, err := w.nw.AddNAT(*portRestricted.nat, pub, netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/24", i+1))); err != nil {
				t.Fatal(err)
			}
		}
		a := w.dialFrom("10.1.0.11:5000", net.Config{})
		b := w.dialFrom("10.2.0.11:5000", net.Config{})
		if _, err := srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
			t.Fatal(err)
		}
		if _, ok := a.NAT(); ok {
			t.Fatal("the NAT check finished before the group formed: the test shows nothing")
		}
		time.Sleep(5 * time.Second) // the checks end, the reports go round
		for _, p := range [][2]*sync.Client{{a, b}, {b, a}} {
			if r, ok := p[0].PeerNAT(p[1].ID()); !ok || r.Type != net.NATEndpointIndependent {
				t.Fatalf("%v sees %v's NAT as %v (%v), want endpoint-independent", p[0].ID(), p[1].ID(), r, ok)
			}
		}
	})
}
