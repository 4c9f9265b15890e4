package sync_test

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// cutConn is a client's socket whose traffic can be cut off both ways at
// once (an unplugged cable, a dead Wi-Fi), so that the moment the path is
// restored is known to the microsecond: a firewall rule takes a netlab
// command of a few hundred milliseconds to add or remove.
type cutConn struct {
	net.PacketConn
	cut atomic.Bool
}

// ReadFrom drops what arrives while cut.
func (c *cutConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.cut.Load() {
			return n, a, err
		}
	}
}

// WriteTo drops what is sent while cut.
func (c *cutConn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, to)
}

// TestNetlabResumeAcrossNATChange cuts a1 off (all its traffic lost, both
// ways) mid-match for 5 s, and while it is cut its home router's NAT
// changes (cone to symmetric, conntrack flushed: a new public port for
// everything a1 sends from then on). a1's links time out and are
// suspended on every side; when its traffic gets through again it comes
// back from a new port, the server and b1 resume it (the same HostID and
// group, away then back, no leave), and every reliable message between
// a1, b1 and the server, sent before, during and after the cut, arrives
// exactly once and in order. With SKEIN_RESUME_TRIALS=N it cuts N times
// (the NAT switching type each time) and logs the time from the restored
// path to each EventBack (BENCHMARKS.md, "Reconnect and resume");
// SKEIN_RESUME_DELAY=20ms delays a1's traffic both ways by that much.
func TestNetlabResumeAcrossNATChange(t *testing.T) {
	trials := 1
	if n, err := strconv.Atoi(os.Getenv("SKEIN_RESUME_TRIALS")); err == nil && n > 0 {
		trials = n
	}
	l := upLab(t, "--nat", "cone")
	var a1 *cutConn
	g := l.gameWith(resumeNet, func(host string, c net.PacketConn) net.PacketConn {
		cc := &cutConn{PacketConn: c}
		if host == "a1" {
			a1 = cc
		}
		return cc
	}, "a1", "b1")
	a, b := g.clients[0], g.clients[1]
	grp := g.meet(t, 2*time.Second)
	if d := os.Getenv("SKEIN_RESUME_DELAY"); d != "" {
		l.run("impair", "a1", "--delay", d, "--dir", "both")
	}
	drain(a)
	drain(b)
	srv := g.srv.Host()
	aid := a.ID()
	cs, ca, cb := collect(t, g.srv), collect(t, a), collect(t, b)

	const per = 20
	sent := map[net.HostID]int{}
	toServer := 0
	phase := func() {
		for range per {
			for _, c := range g.clients {
				if err := c.Send(grp, net.Reliable, resumeMsg(c.ID(), sent[c.ID()])); err != nil {
					t.Fatalf("%v sends: %v", c.ID(), err)
				}
				sent[c.ID()]++
			}
			if err := g.srv.Send(aid, net.Reliable, resumeMsg(net.ServerID, sent[net.ServerID])); err != nil {
				t.Fatalf("server sends: %v", err)
			}
			sent[net.ServerID]++
			if err := a.Send(net.ServerID, net.Reliable, resumeMsg(aid, toServer)); err != nil {
				t.Fatalf("a1 sends to the server: %v", err)
			}
			toServer++
		}
	}
	// backAt: at least n events match m.
	backAt := func(n int, m func(sync.Event) bool) func([]sync.Event) bool {
		return func(evs []sync.Event) bool { return count(evs, m) >= n }
	}
	nat := []string{"symmetric", "cone"}
	var srvBack, cliBack, peerBack []time.Duration
	var rtts []time.Duration
	r := rand.New(rand.NewPCG(1, 2))
	for i := range trials {
		before, _ := srv.RemoteAddr(aid)
		phase()
		a1.cut.Store(true)
		start := time.Now()
		phase()
		cs.wait(t, "the server sees a1 away", backAt(i+1, kindIs(sync.EventAway, aid, 0)))
		ca.wait(t, "a1 sees the server away", backAt(i+1, kindIs(sync.EventAway, net.ServerID, 0)))
		cb.wait(t, "b1 sees a1 away", backAt(i+1, func(e sync.Event) bool { return e.Kind == sync.EventMemberAway && e.Member == aid }))
		l.run("nat", "a", nat[i%2])
		phase()
		time.Sleep(5*time.Second - time.Since(start) + time.Duration(r.Int64N(int64(100*time.Millisecond))))
		a1.cut.Store(false)
		restored := time.Now()
		phase()
		since := func(col *collector, m func(sync.Event) bool) time.Duration {
			col.mu.Lock()
			defer col.mu.Unlock()
			var last time.Time
			for _, e := range col.events {
				if m(e) {
					last = e.Received
				}
			}
			return last.Sub(restored)
		}
		cs.wait(t, "the server sees a1 back", backAt(i+1, kindIs(sync.EventBack, aid, 0)))
		ca.wait(t, "a1 sees the server back", backAt(i+1, kindIs(sync.EventBack, net.ServerID, 0)))
		cb.wait(t, "b1 sees a1 back", backAt(i+1, func(e sync.Event) bool { return e.Kind == sync.EventMemberBack && e.Member == aid }))
		srvBack = append(srvBack, since(cs, kindIs(sync.EventBack, aid, 0)))
		cliBack = append(cliBack, since(ca, kindIs(sync.EventBack, net.ServerID, 0)))
		all := 4 * per * (i + 1)
		ca.wait(t, "every message at a1", func(evs []sync.Event) bool { return inOrder(t, evs, []net.HostID{net.ServerID, b.ID()}, all) })
		cb.wait(t, "every message at b1", func(evs []sync.Event) bool { return inOrder(t, evs, []net.HostID{aid}, all) })
		cs.wait(t, "every message at the server", func(evs []sync.Event) bool { return inOrder(t, evs, []net.HostID{aid}, all) })
		peerBack = append(peerBack, since(ca, kindIs(sync.EventBack, b.ID(), 0)))
		st, _ := srv.LinkStats(aid) // the server's view: it pings every interval
		rtts = append(rtts, st.RTT)
		after, _ := srv.RemoteAddr(aid)
		if after == before {
			t.Fatalf("trial %d: a1 still at %v: the NAT did not rebind", i, after)
		}
		t.Logf("trial %d: a1 moved from %v to %v (NAT now %s); RTT %v; restored path to the server's EventBack %v, a1's %v, a1's peer link %v",
			i, before, after, nat[i%2], st.RTT.Round(time.Microsecond), srvBack[i].Round(time.Microsecond), cliBack[i].Round(time.Microsecond), peerBack[i].Round(time.Millisecond))
	}
	if a.ID() != aid || !slicesContain(g.srv.Members(grp), aid) {
		t.Fatalf("a1 is %v (was %v), members %v", a.ID(), aid, g.srv.Members(grp))
	}
	noMembershipChange(t, "during a resumed cut", map[string]*collector{"server": cs, "a1": ca, "b1": cb})
	if trials > 1 {
		slices.Sort(rtts)
		t.Logf("%d trials, RTT to the server median %v: restored path to the server's EventBack %s; to a1's %s", trials, rtts[len(rtts)/2], med(srvBack), med(cliBack))
	}
}

// med formats the median and maximum of d.
func med(d []time.Duration) string {
	slices.Sort(d)
	return "median " + d[len(d)/2].Round(time.Microsecond).String() + ", max " + d[len(d)-1].Round(time.Microsecond).String()
}
