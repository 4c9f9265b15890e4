package sync_test

// Port mapping across real NAT routers (netlab, with miniupnpd started by
// `netlab upnp HOME on`): pairs that were relayed go direct once one side's
// router maps its port. See netlab_linux_test.go for the lab helpers.

import (
	"context"
	"flag"
	"fmt"
	stdnet "net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/portmap"
	"github.com/skein-dev/skein/engine/sync"
)

var (
	portmapTrials = flag.Int("portmap.trials", 3, "trials per pair type in TestNetlabPortMapMeasure (BENCHMARKS.md uses 50)")
	portmapDelay  = flag.Duration("portmap.delay", 0, "egress delay on server, a1 and b1 in TestNetlabPortMapMeasure (BENCHMARKS.md uses 20ms)")
)

// clientConfig is the ClientConfig game gives the client on host: port
// mapping off unless l.portMap, and then asked of the host's own router
// with sockets in the host's namespace.
func (l *lab) clientConfig(host string) sync.ClientConfig {
	gw := map[byte]string{'a': "10.1.0.1", 'b': "10.2.0.1"}[host[0]]
	if !l.portMap || gw == "" {
		return sync.ClientConfig{NoPortMap: true}
	}
	return sync.ClientConfig{PortMap: nsPortMap(host, portmap.Config{
		Gateway: netip.MustParseAddr(gw),
		Timeout: 500 * time.Millisecond,
		Retry:   time.Second, // a test turns the daemon on late
	})}
}

// nsPortMap makes cfg open its sockets in lab host's namespace.
func nsPortMap(host string, cfg portmap.Config) portmap.Config {
	ns := labPrefix + host
	cfg.DialContext = func(ctx context.Context, network, address string) (c stdnet.Conn, err error) {
		err = inNetns(ns, func() (err error) {
			c, err = (&stdnet.Dialer{}).DialContext(ctx, network, address)
			return err
		})
		return c, err
	}
	cfg.ListenPacket = func(network, address string) (c stdnet.PacketConn, err error) {
		err = inNetns(ns, func() (err error) {
			c, err = stdnet.ListenPacket(network, address)
			return err
		})
		return c, err
	}
	cfg.ListenAnnounce = func(network, address string) (c stdnet.PacketConn, err error) {
		err = inNetns(ns, func() (err error) {
			c, err = portmap.ListenShared(network, address)
			return err
		})
		return c, err
	}
	return cfg
}

// waitMapped waits (10 s at most) until c has a port mapping.
func waitMapped(t *testing.T, c *sync.Client) portmap.Mapping {
	t.Helper()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		if s := c.PortMapping(); s.Available() {
			return s.Mapping
		}
	}
	t.Fatalf("no port mapping in 10 s: %+v", c.PortMapping())
	return portmap.Mapping{}
}

// waitState waits (10 s at most) until c's port mapping is in state st, and
// returns its status then (or at the end of the wait).
func waitState(c *sync.Client, st portmap.State) portmap.Status {
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		if s := c.PortMapping(); s.State == st {
			return s
		}
	}
	return c.PortMapping()
}

// waitDirect waits (within limit) until a and b reach each other directly,
// and returns how long that took.
func waitDirect(a, b *sync.Client, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < limit {
		if ab, ba := paths(a, b); !ab.Relayed && !ba.Relayed && ab.Path != "" && ba.Path != "" {
			return time.Since(start), true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, false
}

// nftMaps reports whether router r maps external port p.
func (l *lab) nftMaps(r string, p uint16) bool {
	return strings.Contains(l.run("exec", r, "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd"), fmt.Sprintf("dport %d ", p))
}

// Symmetric NAT on both sides is relayed (TestNetlabSymmetricNATsStayRelayedAndWork);
// with miniupnpd on a's router, a1 maps its port and the pair goes direct
// through the mapping: b1 reaches a1 at the mapped address. The client says
// which protocol mapped what; Close deletes the mapping on the router.
func TestNetlabPortMapSymmetricPairGoesDirect(t *testing.T) {
	l := upLab(t, "--nat", "symmetric")
	l.run("upnp", "a", "on")
	l.portMap = true
	g := l.game("a1", "b1")
	a, b := g.clients[0], g.clients[1]
	mp := waitMapped(t, a)
	if mp.Protocol != portmap.PCP || mp.External.Addr() != netip.MustParseAddr("203.0.113.101") || mp.Internal.Port() != a.Host().LocalAddr().Port() {
		t.Fatalf("a1's mapping %+v: want PCP on 203.0.113.101 for port %d", mp, a.Host().LocalAddr().Port())
	}
	g.meet(t, 0)
	took, ok := waitDirect(a, b, 10*time.Second)
	ab, ba := paths(a, b)
	if !ok {
		t.Fatalf("a→b %+v, b→a %+v: want direct through a's mapping", ab, ba)
	}
	if ba.Path != "direct "+mp.External.String() {
		t.Fatalf("b reaches a at %q, want the mapped address %v", ba.Path, mp.External)
	}
	t.Logf("direct %v after the group formed; b→a %s, a→b %s", took.Round(time.Millisecond), ba.Path, ab.Path)
	realExchange(t, a, b, 200)
	if s := waitState(b, portmap.Unavailable); s.State != portmap.Unavailable || s.Err == nil {
		t.Fatalf("b1 (no daemon on its router): %+v, want unavailable with the reason", s)
	} else if s.Stats.Requests == 0 || s.Stats.Answers != 0 || s.Stats.Mapped != 0 {
		t.Fatalf("b1's port-mapping stats %+v: want requests, no answer", s.Stats)
	}
	if st := a.PortMapping().Stats; st.Mapped != 1 || st.Answers == 0 || st.Dropped() != 0 {
		t.Fatalf("a1's port-mapping stats %+v: want one mapping, answers, no drops", st)
	}
	if !l.nftMaps("ra", mp.External.Port()) {
		t.Fatal("the router has no rule for the mapping")
	}
	a.Close()
	if l.nftMaps("ra", mp.External.Port()) {
		t.Fatalf("the router still maps port %d after a1 closed", mp.External.Port())
	}
}

// Cone NAT against symmetric NAT is relayed; with port mapping on the
// symmetric side it goes direct.
func TestNetlabPortMapConeSymmetricGoesDirect(t *testing.T) {
	l := upLab(t, "--nat-a", "symmetric", "--nat-b", "cone")
	l.run("upnp", "a", "on")
	l.portMap = true
	g := l.game("a1", "b1")
	a, b := g.clients[0], g.clients[1]
	mp := waitMapped(t, a)
	g.meet(t, 0)
	took, ok := waitDirect(a, b, 10*time.Second)
	ab, ba := paths(a, b)
	if !ok || ba.Path != "direct "+mp.External.String() {
		t.Fatalf("a→b %+v, b→a %+v: want direct, b to a's mapping %v", ab, ba, mp.External)
	}
	t.Logf("direct %v after the group formed", took.Round(time.Millisecond))
	realExchange(t, a, b, 100)
}

// A mapping made after the pair has given up punching still helps: the
// client announces its new candidate, the server passes it to the peer
// (opPeerCandidates), which punches again and goes direct.
func TestNetlabPortMapLateMappingGoesDirect(t *testing.T) {
	l := upLab(t, "--nat", "symmetric")
	l.portMap = true
	g := l.game("a1", "b1")
	a, b := g.clients[0], g.clients[1]
	g.meet(t, 4*time.Second) // longer than a punch attempt (3 s)
	if ab, ba := paths(a, b); !ab.Relayed || !ba.Relayed {
		t.Fatalf("a→b %+v, b→a %+v: want relayed before the router maps ports", ab, ba)
	}
	if s := waitState(a, portmap.Unavailable); s.State != portmap.Unavailable {
		t.Fatalf("a1 before the daemon runs: %+v", s)
	}
	l.run("upnp", "a", "on")
	mp := waitMapped(t, a) // the mapper asks again every second here
	took, ok := waitDirect(a, b, 10*time.Second)
	ab, ba := paths(a, b)
	if !ok || ba.Path != "direct "+mp.External.String() {
		t.Fatalf("a→b %+v, b→a %+v: want direct, b to a's mapping %v", ab, ba, mp.External)
	}
	t.Logf("direct %v after the mapping was made", took.Round(time.Millisecond))
	realExchange(t, a, b, 100)
}

// TestNetlabPortMapMeasure measures, for each pair with port mapping on one
// side (miniupnpd on a's router), the rate of pairs that go direct and the
// time from the group's creation to a direct path on both sides; and, as
// the baseline in the same run, the same pairs with port mapping switched
// off (ClientConfig.NoPortMap; 1 trial in 10, each given 4 s: longer than a
// punch attempt). Each trial connects two fresh clients and creates their
// group at once (the mapping may come before or after it). With
// -portmap.delay, every host's egress (server, a1, b1) is delayed that much.
// Figures go to BENCHMARKS.md:
//
//	go test -run TestNetlabPortMapMeasure -v ./engine/sync/ -args -portmap.trials=50 -portmap.delay=20ms
func TestNetlabPortMapMeasure(t *testing.T) {
	l := upLab(t, "--nat", "symmetric")
	if *portmapDelay > 0 {
		for _, h := range []string{"server", "a1", "b1"} {
			l.run("impair", h, "--delay", portmapDelay.String())
		}
	}
	srv, err := sync.NewServer(l.udpIn("server", labServer), sync.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	connect := func(h string) *sync.Client {
		ip := netip.MustParseAddr(l.run("addr", h))
		c, err := sync.NewClient(l.udpIn(h, netip.AddrPortFrom(ip, 0)), l.clientConfig(h))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Connect(ctx, labServer); err != nil {
			t.Fatalf("%s connects: %v", h, err)
		}
		next(t, c, sync.EventConnected)
		waitFor(t, srv, sync.EventConnected) // past the last trial's disconnections
		return c
	}
	// trial runs one pair and reports whether it went direct within
	// limit, how long that took, and whether a1 had its mapping when the
	// group was created.
	trial := func(limit time.Duration) (time.Duration, bool, bool) {
		a, b := connect("a1"), connect("b1")
		defer b.Close()
		defer a.Close()
		early := a.PortMapping().Available()
		if _, err := srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
			t.Fatal(err)
		}
		took, ok := waitDirect(a, b, limit)
		if !ok && l.portMap {
			ab, ba := paths(a, b)
			t.Logf("relayed after %v (a→b %+v, b→a %+v; a's mapping %+v)", limit, ab, ba, a.PortMapping())
		}
		return took, ok, early
	}
	cases := []struct{ name, natA, natB string }{
		{"symmetric+map <-> symmetric", "symmetric", "symmetric"},
		{"symmetric+map <-> cone", "symmetric", "cone"},
		{"cone+map <-> symmetric", "cone", "symmetric"},
	}
	for _, tc := range cases {
		l.run("nat", "a", tc.natA)
		l.run("nat", "b", tc.natB)
		l.run("upnp", "a", "on") // after `netlab nat`, which rewrites the router's rules
		l.portMap = true
		var times []time.Duration
		direct, early := 0, 0
		for range *portmapTrials {
			took, ok, mappedFirst := trial(10 * time.Second)
			if ok {
				direct++
				times = append(times, took)
			}
			if mappedFirst {
				early++
			}
		}
		l.portMap = false
		base, baseDirect := max(1, *portmapTrials/10), 0
		for range base {
			if _, ok, _ := trial(4 * time.Second); ok {
				baseDirect++
			}
		}
		slices.Sort(times)
		median, p90 := time.Duration(0), time.Duration(0)
		if len(times) > 0 {
			median, p90 = times[len(times)/2], times[len(times)*9/10]
		}
		t.Logf("%-28s with port mapping: direct %d/%d (%.0f%%), time to direct median %v, p90 %v (mapping in place at the group's creation in %d); without (baseline): direct %d/%d",
			tc.name, direct, *portmapTrials, 100*float64(direct)/float64(*portmapTrials),
			median.Round(time.Millisecond), p90.Round(time.Millisecond), early, baseDirect, base)
		if direct == 0 {
			t.Errorf("%s: no trial went direct with port mapping", tc.name)
		}
	}
}
