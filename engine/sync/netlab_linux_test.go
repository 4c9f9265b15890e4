package sync_test

// Hole punching against the real Linux kernel's NAT, in the network
// namespaces made by the netlab tool. One test process owns sockets on every
// lab host (a socket made on a thread that joined a namespace stays there),
// so the real server and clients run in-process across real NAT routers.
//
// The tests run when the process is root and netlab is found ($NETLAB, or
// where internal/netlabtest.Path looks); otherwise they skip and say why.
// Each process uses its own lab prefix and takes its lab down after.

import (
	"context"
	"errors"
	"fmt"
	stdnet "net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/internal/netlabtest"
)

// labPrefix names this process's lab (namespaces sk<pid>-server, ...), so
// test runs in parallel never tear down each other's lab.
var labPrefix = netlabtest.Prefix("sk")

// lab is a netlab lab brought up for one test.
type lab struct {
	*netlabtest.Lab
	t      *testing.T
	netlab string
	// portMap makes game's clients map their ports (on a router where
	// `netlab upnp` runs a daemon): see netlab_portmap_linux_test.go.
	// Off by default: a mapper in this process would otherwise read the
	// test process's own default route, outside the lab.
	portMap bool
}

// upLab brings a lab up with the given netlab up arguments, or skips.
func upLab(t *testing.T, args ...string) *lab {
	t.Helper()
	nl := netlabtest.Up(t, labPrefix, args...)
	return &lab{Lab: nl, t: t, netlab: nl.Script()}
}

func (l *lab) run(args ...string) string {
	l.t.Helper()
	return l.Run(args...)
}

// udpIn opens a UDP socket in lab host ns (for example "a1") on addr.
func (l *lab) udpIn(host string, addr netip.AddrPort) net.PacketConn {
	l.t.Helper()
	c := l.UDP(host, addr)
	c.SetReadBuffer(net.SocketBuffer)
	c.SetWriteBuffer(net.SocketBuffer)
	return net.UDP(c)
}

// inNetns runs f on an OS thread that joined the named namespace.
func inNetns(name string, f func() error) error { return netlabtest.InNetns(name, f) }

var labServer = netip.MustParseAddrPort("203.0.113.10:7000")

// labGame runs the server in sk-server and one client per named host.
type labGame struct {
	srv     *sync.Server
	clients []*sync.Client
}

func (l *lab) game(hosts ...string) *labGame {
	l.t.Helper()
	return l.gameWith(net.Config{}, nil, hosts...)
}

// gameWith is game with ncfg for the server's and the clients' hosts, and
// each client's socket wrapped by wrap (if not nil).
func (l *lab) gameWith(ncfg net.Config, wrap func(host string, c net.PacketConn) net.PacketConn, hosts ...string) *labGame {
	l.t.Helper()
	g := &labGame{}
	srv, err := sync.NewServer(l.udpIn("server", labServer), sync.ServerConfig{Net: ncfg})
	if err != nil {
		l.t.Fatal(err)
	}
	g.srv = srv
	l.t.Cleanup(func() { srv.Close() })
	for _, h := range hosts {
		ip := netip.MustParseAddr(l.run("addr", h))
		conn := l.udpIn(h, netip.AddrPortFrom(ip, 0))
		if wrap != nil {
			conn = wrap(h, conn)
		}
		ccfg := l.clientConfig(h)
		ccfg.Net = ncfg
		c, err := sync.NewClient(conn, ccfg)
		if err != nil {
			l.t.Fatal(err)
		}
		l.t.Cleanup(func() { c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = c.Connect(ctx, labServer)
		cancel()
		if err != nil {
			l.t.Fatalf("%s connects: %v", h, err)
		}
		next(l.t, c, sync.EventConnected)
		next(l.t, srv, sync.EventConnected)
		g.clients = append(g.clients, c)
	}
	return g
}

// meet puts every client in one group and waits for punching to settle.
func (g *labGame) meet(t *testing.T, wait time.Duration) net.HostID {
	var ids []net.HostID
	for _, c := range g.clients {
		ids = append(ids, c.ID())
	}
	id, err := g.srv.CreateGroup(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(wait)
	return id
}

// pathsOf describes how a reaches b, and b a.
func paths(a, b *sync.Client) (ab, ba sync.PeerState) {
	ab, _ = a.PeerState(b.ID())
	ba, _ = b.PeerState(a.ID())
	return ab, ba
}

// drain takes the events waiting on c (in real time, outside a synctest
// bubble), keeping relay-state events for realRelayEvents.
func drain(c *sync.Client) {
	time.Sleep(100 * time.Millisecond)
	for {
		e, ok := c.Poll()
		if !ok {
			return
		}
		if e.Kind == sync.EventRelayStateChange {
			skipped.add(c, e)
		}
	}
}

// realRelayEvents returns c's relay-state events so far.
func realRelayEvents(c *sync.Client) []sync.Event {
	drain(c)
	return skipped.take(c)
}

// realExchange checks count reliable messages each way, with real time.
func realExchange(t *testing.T, a, b *sync.Client, count int) {
	t.Helper()
	drain(a)
	drain(b)
	for i := range count {
		for _, p := range [][2]*sync.Client{{a, b}, {b, a}} {
			if err := p[0].Send(p[1].ID(), net.Reliable, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []*sync.Client{a, b} {
		for i := range count {
			e := next(t, c, sync.EventMessage)
			if string(e.Data) != fmt.Sprint(i) {
				t.Fatalf("got %q, want %d", e.Data, i)
			}
		}
	}
}

func TestNetlabConeNATsGoDirect(t *testing.T) {
	l := upLab(t, "--nat", "cone")
	g := l.game("a1", "b1")
	a, b := g.clients[0], g.clients[1]
	g.meet(t, 2*time.Second)
	ab, ba := paths(a, b)
	if ab.Relayed || ba.Relayed {
		t.Fatalf("a→b %+v, b→a %+v: want direct", ab, ba)
	}
	if !strings.HasPrefix(ab.Path, "direct 203.0.113.102:") || !strings.HasPrefix(ba.Path, "direct 203.0.113.101:") {
		t.Fatalf("paths %q, %q: want the routers' public addresses", ab.Path, ba.Path)
	}
	realExchange(t, a, b, 200)
}

func TestNetlabSymmetricNATsStayRelayedAndWork(t *testing.T) {
	l := upLab(t, "--nat", "symmetric")
	g := l.game("a1", "b1")
	a, b := g.clients[0], g.clients[1]
	g.meet(t, 4*time.Second) // longer than a punch attempt (3 s)
	ab, ba := paths(a, b)
	if !ab.Relayed || !ba.Relayed {
		t.Fatalf("a→b %+v, b→a %+v: want relayed", ab, ba)
	}
	for _, c := range g.clients {
		evs := realRelayEvents(c)
		if len(evs) == 0 || !evs[len(evs)-1].Relayed || !errors.Is(evs[len(evs)-1].Err, net.ErrPunchTimeout) {
			t.Fatalf("%v relay events %+v: want relayed, punch timed out", c.ID(), evs)
		}
	}
	realExchange(t, a, b, 200)
}

func TestNetlabSameNATUsesTheLAN(t *testing.T) {
	l := upLab(t, "--nat", "cone")
	g := l.game("a1", "a2")
	a, b := g.clients[0], g.clients[1]
	g.meet(t, 2*time.Second)
	ab, ba := paths(a, b)
	if ab.Relayed || ba.Relayed || !strings.HasPrefix(ab.Path, "direct 10.1.0.12:") || !strings.HasPrefix(ba.Path, "direct 10.1.0.11:") {
		t.Fatalf("a→b %+v, b→a %+v: want direct over the LAN", ab, ba)
	}
	realExchange(t, a, b, 200)
}

func TestNetlabBrokenPathFallsBackAndHeals(t *testing.T) {
	l := upLab(t, "--nat", "cone")
	g := l.game("a1", "b1")
	a, b := g.clients[0], g.clients[1]
	g.meet(t, 2*time.Second)
	if ab, ba := paths(a, b); ab.Relayed || ba.Relayed {
		t.Fatal("not direct to begin with")
	}
	realRelayEvents(a)
	// Router ra stops forwarding between the two homes (the server still
	// gets through).
	rules := [][]string{{"-s", "10.1.0.0/24", "-d", "203.0.113.102"}, {"-s", "203.0.113.102", "-d", "10.1.0.0/24"}}
	for _, r := range rules {
		l.run(append([]string{"exec", "ra", "iptables", "-I", "FORWARD"}, append(r, "-j", "DROP")...)...)
	}
	cut := time.Now()
	// The target (within 2 s) is measured and logged, not asserted: on a
	// loaded machine the timers run late. The test fails when the fallback
	// does not happen at all.
	var fellBack time.Duration
	for fellBack == 0 && time.Since(cut) < 15*time.Second {
		if ab, ba := paths(a, b); ab.Relayed && ba.Relayed {
			fellBack = time.Since(cut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fellBack == 0 {
		t.Fatal("still direct 15 s after the path was cut")
	}
	if fellBack > 2*time.Second {
		t.Logf("note: fell back after %v, over the 2 s target; was the machine busy?", fellBack)
	}
	realExchange(t, a, b, 100) // the relay carries the game meanwhile
	for _, r := range rules {
		l.run(append([]string{"exec", "ra", "iptables", "-D", "FORWARD"}, append(r, "-j", "DROP")...)...)
	}
	healed := time.Now()
	var back time.Duration
	for back == 0 && time.Since(healed) < 20*time.Second {
		if ab, ba := paths(a, b); !ab.Relayed && !ba.Relayed {
			back = time.Since(healed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if back == 0 {
		t.Fatal("not direct again 20 s after the path healed")
	}
	t.Logf("fell back to the relay %v after the cut; direct again %v after it healed (a recheck of the last direct address)", fellBack.Round(time.Millisecond), back.Round(time.Millisecond))
	realExchange(t, a, b, 100)
}

// TestNetlabMeasure measures, with 20 ms added on every host's egress (so
// 40 ms between two peers directly, 80 ms through the server): the time from
// the group's creation to a direct path on both sides, and the round trip
// of an application message directly and through the relay. Figures go to
// BENCHMARKS.md:
//
//	go test -run TestNetlabMeasure -v ./engine/sync/
func TestNetlabMeasure(t *testing.T) {
	l := upLab(t, "--nat", "cone")
	for _, h := range []string{"server", "a1", "b1"} {
		l.run("impair", h, "--delay", "20ms")
	}
	g := l.game("a1", "b1")
	a, b := g.clients[0], g.clients[1]
	drain(a)
	drain(b)
	start := time.Now()
	if _, err := g.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
		t.Fatal(err)
	}
	var toDirect [2]time.Duration
	for i, c := range []*sync.Client{a, b} {
		for {
			e := waitFor(t, c, sync.EventRelayStateChange)
			if !e.Relayed {
				toDirect[i] = e.Received.Sub(start)
				break
			}
		}
	}
	rtt := func() time.Duration {
		drain(a)
		drain(b)
		var samples []time.Duration
		for i := range 21 {
			t0 := time.Now()
			a.Send(b.ID(), net.Unreliable, []byte{byte(i)})
			e := waitFor(t, b, sync.EventMessage)
			b.Send(a.ID(), net.Unreliable, e.Data)
			waitFor(t, a, sync.EventMessage)
			samples = append(samples, time.Since(t0))
		}
		slices.Sort(samples)
		return samples[len(samples)/2]
	}
	direct := rtt()
	a.ForceRelay(b.ID(), true)
	b.ForceRelay(a.ID(), true)
	relayed := rtt()
	t.Logf("20 ms per hop: direct path %v (a), %v (b) after the group was created; target 3 RTT (120 ms) + probe interval (100 ms)",
		toDirect[0].Round(time.Millisecond), toDirect[1].Round(time.Millisecond))
	t.Logf("application round trip (median of 21): direct %v, relayed %v", direct.Round(100*time.Microsecond), relayed.Round(100*time.Microsecond))
	// A figure for BENCHMARKS.md, not a gate: timings move with the
	// machine's load, and no test here asserts one.
	if max(toDirect[0], toDirect[1]) > 220*time.Millisecond+40*time.Millisecond {
		t.Logf("note: over the target of 3 round trips + the probe interval (+ the server's 20 ms hop); was the machine busy?")
	}
}

// waitFor returns the next event of kind on c, passing over others.
func waitFor(t *testing.T, c eventSource, kind sync.EventKind) sync.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		e, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %v: %v", kind, err)
		}
		if e.Kind == kind {
			return e
		}
	}
}

// With UDP blocked in home a (netlab's "blocked" router drops all UDP from the
// LAN), a1 reaches the server over TCP, its peer is relayed, the game works,
// and a1 is told why.
func TestNetlabUDPBlockedFallsBackToTCP(t *testing.T) {
	l := upLab(t, "--nat-a", "blocked", "--nat-b", "cone")
	srv, err := sync.NewServer(l.udpIn("server", labServer), sync.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
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
	dial := func(host string) *sync.Client {
		var c *sync.Client
		ip := l.run("addr", host)
		err := inNetns(labPrefix+host, func() (err error) {
			// DialClient opens its UDP socket and, when that fails, its TCP
			// connection on this goroutine, so both live in host's namespace.
			c, err = sync.DialClient(context.Background(), ip+":0", labServer, sync.ClientConfig{UDPTimeout: time.Second, NoPortMap: true})
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		t.Cleanup(func() { c.Close() })
		waitFor(t, c, sync.EventConnected)
		waitFor(t, srv, sync.EventConnected)
		return c
	}
	a, b := dial("a1"), dial("b1")
	if a.Transport() != "tcp" || b.Transport() != "udp" {
		t.Fatalf("transports %s, %s; want tcp, udp", a.Transport(), b.Transport())
	}
	if _, err := srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
		t.Fatal(err)
	}
	e := waitFor(t, a, sync.EventRelayStateChange)
	if !e.Relayed || !errors.Is(e.Err, net.ErrUDPBlocked) || e.Peer != b.ID() {
		t.Fatalf("a's relay state %+v, want relayed because UDP is blocked", e)
	}
	time.Sleep(time.Second)
	if ab, ba := paths(a, b); !ab.Relayed || !ba.Relayed {
		t.Fatalf("a→b %+v, b→a %+v: want relayed", ab, ba)
	}
	realExchange(t, a, b, 200)
}
