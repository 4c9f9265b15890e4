package sync_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/sync"
)

// resumeNet: a short timeout, so that a 5 s cut suspends the links, and a
// grace window well past it.
var resumeNet = net.Config{Timeout: 2 * time.Second, PingInterval: 250 * time.Millisecond, ResumeGrace: 20 * time.Second}

// collector keeps every event of one Server or Client.
type collector struct {
	mu     stdsync.Mutex
	events []sync.Event
	change chan struct{}
}

func collect(t *testing.T, s eventSource) *collector {
	c := &collector{change: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			e, err := s.Next(ctx)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.events = append(c.events, e)
			c.mu.Unlock()
			select {
			case c.change <- struct{}{}:
			default:
			}
		}
	}()
	return c
}

func (c *collector) wait(t *testing.T, what string, cond func([]sync.Event) bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		c.mu.Lock()
		ok := cond(c.events)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.change:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("waiting for %s; events: %v", what, kinds(c.events))
		}
	}
}

func kinds(evs []sync.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == sync.EventMessage {
			continue
		}
		out = append(out, fmt.Sprintf("%v peer=%v member=%v", e.Kind, e.Peer, e.Member))
	}
	return out
}

// count returns how many events match.
func count(evs []sync.Event, match func(sync.Event) bool) int {
	n := 0
	for _, e := range evs {
		if match(e) {
			n++
		}
	}
	return n
}

func kindIs(kind sync.EventKind, peer, member net.HostID) func(sync.Event) bool {
	return func(e sync.Event) bool { return e.Kind == kind && e.Peer == peer && e.Member == member }
}

// resumeMsg is reliable message i of sender from: the sender, the index,
// and padding, so the receiver checks the order per sender.
func resumeMsg(from net.HostID, i int) []byte {
	b := make([]byte, 8+i%700)
	binary.LittleEndian.PutUint32(b, uint32(from))
	binary.LittleEndian.PutUint32(b[4:], uint32(i))
	return b
}

// inOrder checks that each sender's reliable messages arrived exactly once
// and in order, [0, n) of each, and reports whether all n arrived.
func inOrder(t *testing.T, evs []sync.Event, senders []net.HostID, n int) bool {
	t.Helper()
	next := map[net.HostID]int{}
	for _, e := range evs {
		if e.Kind != sync.EventMessage || !e.Delivery.Reliable {
			continue
		}
		from := net.HostID(binary.LittleEndian.Uint32(e.Data))
		i := int(binary.LittleEndian.Uint32(e.Data[4:]))
		if from != e.Peer || i != next[from] || len(e.Data) != 8+i%700 {
			t.Fatalf("from %v: message %d (peer %v), want %d: lost, duplicated or out of order", from, i, e.Peer, next[from])
		}
		next[from]++
	}
	for _, s := range senders {
		if next[s] != n {
			return false
		}
	}
	return true
}

// A member's path is cut for 5 s mid-match and restored: it keeps its
// HostID and its group, the group keeps its host, every member (the
// server included) sees it away and back (never a leave and a join), and
// every reliable message, sent before, during and after the cut, in both
// directions and between peers, arrives exactly once and in order.
func TestMemberCutFor5sResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 3, resumeNet)
		a, b, c := w.clients[0], w.clients[1], w.clients[2]
		g, err := w.srv.CreateGroup([]net.HostID{net.ServerID, a.ID(), b.ID(), c.ID()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		settle(w.srv)
		for _, cl := range w.clients {
			settle(cl)
		}
		host := w.srv.GroupHost(g)
		cid := c.ID()
		cAddr := netip.MustParseAddrPort("10.0.1.3:5000")
		var cut atomic.Bool
		w.nw.SetFilter(func(from, to netip.AddrPort, _ []byte) bool {
			return cut.Load() && (from == cAddr || to == cAddr)
		})
		cs, ca, cb, cc := collect(t, w.srv), collect(t, a), collect(t, b), collect(t, c)

		const per = 50 // messages per sender in each phase
		sent := map[net.HostID]int{}
		phase := func() {
			for range per {
				for _, cl := range w.clients {
					id := cl.ID()
					if err := cl.Send(g, net.Reliable, resumeMsg(id, sent[id])); err != nil {
						t.Fatalf("%v sends to the group: %v", id, err)
					}
					sent[id]++
				}
				if err := w.srv.Send(cid, net.Reliable, resumeMsg(net.ServerID, sent[net.ServerID])); err != nil {
					t.Fatalf("server sends to %v: %v", cid, err)
				}
				sent[net.ServerID]++
			}
		}
		phase()
		cut.Store(true)
		start := time.Now()
		phase() // before the links time out
		cs.wait(t, "the server sees c away", func(evs []sync.Event) bool { return count(evs, kindIs(sync.EventAway, cid, 0)) == 1 })
		for _, o := range []*collector{ca, cb} {
			o.wait(t, "a member sees c away", func(evs []sync.Event) bool {
				return count(evs, func(e sync.Event) bool { return e.Kind == sync.EventMemberAway && e.Member == cid && e.Group == g }) == 1
			})
		}
		cc.wait(t, "c sees the server away", func(evs []sync.Event) bool { return count(evs, kindIs(sync.EventAway, net.ServerID, 0)) == 1 })
		if !slicesContain(w.srv.Members(g), cid) || w.srv.GroupHost(g) != host {
			t.Fatalf("while away: members %v host %v (was %v)", w.srv.Members(g), w.srv.GroupHost(g), host)
		}
		phase() // while suspended
		time.Sleep(5*time.Second - time.Since(start))
		cut.Store(false)
		phase() // after

		cs.wait(t, "the server sees c back", func(evs []sync.Event) bool { return count(evs, kindIs(sync.EventBack, cid, 0)) == 1 })
		for _, o := range []*collector{ca, cb} {
			o.wait(t, "a member sees c back", func(evs []sync.Event) bool {
				return count(evs, func(e sync.Event) bool { return e.Kind == sync.EventMemberBack && e.Member == cid && e.Group == g }) == 1
			})
		}
		cc.wait(t, "c sees the server back", func(evs []sync.Event) bool { return count(evs, kindIs(sync.EventBack, net.ServerID, 0)) == 1 })

		all := 4 * per
		cc.wait(t, "every message at c", func(evs []sync.Event) bool {
			return inOrder(t, evs, []net.HostID{net.ServerID, a.ID(), b.ID()}, all)
		})
		ca.wait(t, "every message at a", func(evs []sync.Event) bool { return inOrder(t, evs, []net.HostID{b.ID(), cid}, all) })
		cb.wait(t, "every message at b", func(evs []sync.Event) bool { return inOrder(t, evs, []net.HostID{a.ID(), cid}, all) })
		cs.wait(t, "every message at the server", func(evs []sync.Event) bool {
			return inOrder(t, evs, []net.HostID{a.ID(), b.ID(), cid}, all)
		})

		if c.ID() != cid || !slicesContain(w.srv.Members(g), cid) || w.srv.GroupHost(g) != host {
			t.Fatalf("after: id %v (was %v), members %v, host %v (was %v)", c.ID(), cid, w.srv.Members(g), w.srv.GroupHost(g), host)
		}
		noMembershipChange(t, "during a resumed cut", map[string]*collector{"server": cs, "a": ca, "b": cb, "c": cc})
		cc.mu.Lock()
		t.Logf("c saw %v and %d events in all", kinds(cc.events), len(cc.events))
		cc.mu.Unlock()
		if st := w.srv.Host().Stats().Resume; st.Resumed != 1 || st.Suspended != 0 {
			t.Fatalf("server resume stats %+v", st)
		}
	})
}

// Past the grace window an away member leaves as it would have without
// resume: the others see it away, then leave; the server sees it away,
// then disconnected (ErrTimeout).
func TestMemberAwayPastGraceLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := resumeNet
		cfg.ResumeGrace = 3 * time.Second
		w := newWorld(t, 2, cfg)
		a, c := w.clients[0], w.clients[1]
		g, err := w.srv.CreateGroup([]net.HostID{a.ID(), c.ID()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		settle(w.srv)
		settle(a)
		settle(c)
		cid := c.ID()
		cAddr := netip.MustParseAddrPort("10.0.1.2:5000")
		w.nw.SetFilter(func(from, to netip.AddrPort, _ []byte) bool { return from == cAddr || to == cAddr })
		cs, ca := collect(t, w.srv), collect(t, a)
		cs.wait(t, "the server sees c disconnected", func(evs []sync.Event) bool {
			return count(evs, kindIs(sync.EventDisconnected, cid, 0)) == 1
		})
		ca.wait(t, "a sees c leave", func(evs []sync.Event) bool {
			return count(evs, func(e sync.Event) bool { return e.Kind == sync.EventMemberLeave && e.Member == cid }) == 1
		})
		cs.mu.Lock()
		var order []sync.EventKind
		var reason error
		for _, e := range cs.events {
			if e.Peer == cid {
				order = append(order, e.Kind)
				if e.Kind == sync.EventDisconnected {
					reason = e.Err
				}
			}
		}
		cs.mu.Unlock()
		if len(order) != 2 || order[0] != sync.EventAway || order[1] != sync.EventDisconnected || !errors.Is(reason, net.ErrTimeout) {
			t.Fatalf("server saw %v (reason %v), want away then disconnected (timeout)", order, reason)
		}
		ca.mu.Lock()
		away := count(ca.events, func(e sync.Event) bool { return e.Kind == sync.EventMemberAway && e.Member == cid && e.Group == g })
		ca.mu.Unlock()
		if away != 1 {
			t.Fatalf("a saw c away %d times before it left", away)
		}
		if slicesContain(w.srv.Members(g), cid) {
			t.Fatalf("c still a member: %v", w.srv.Members(g))
		}
	})
}

// noMembershipChange fails t for every member join or leave and every
// connect or disconnect a collector saw: a resumed cut (or a restart that
// takes the session over) must show none; during says which.
func noMembershipChange(t *testing.T, during string, cols map[string]*collector) {
	t.Helper()
	for name, col := range cols {
		col.mu.Lock()
		for _, e := range col.events {
			switch e.Kind {
			case sync.EventMemberLeave, sync.EventMemberJoin, sync.EventDisconnected, sync.EventConnected:
				t.Errorf("%s: %v (peer %v member %v) %s", name, e.Kind, e.Peer, e.Member, during)
			default: // messages, and the away, back and path events
			}
		}
		col.mu.Unlock()
	}
}

func slicesContain(s []net.HostID, id net.HostID) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}

// A member whose process restarts while it is away (its old session
// suspended) connects again with the same credentials: it takes its
// session over, with its HostID, its groups and its host role; it is told
// its groups again (member joins, host) and gets new peer links; the other
// members see it back, never a leave or a join; and messages flow again
// both ways, with the server and between peers.
func TestRestartedMemberTakesOverItsSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(21)
		defer nw.Close()
		scfg := resumeNet
		scfg.Authenticate = func(_ context.Context, r *net.AuthRequest) (net.AuthResult, error) {
			return net.AuthResult{User: string(r.Credentials)}, nil
		}
		sc, _ := nw.Listen(srvAddr)
		srv, err := sync.NewServer(sc, sync.ServerConfig{Net: scfg})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		dial := func(addr, user string) *sync.Client {
			t.Helper()
			conn, err := nw.Listen(netip.MustParseAddrPort(addr))
			if err != nil {
				t.Fatal(err)
			}
			c, err := sync.NewClient(conn, sync.ClientConfig{Net: resumeNet, Credentials: []byte(user)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if err := c.Connect(t.Context(), srvAddr); err != nil {
				t.Fatalf("%s connects: %v", user, err)
			}
			return c
		}
		a := dial("10.0.1.1:5000", "a")
		next(t, a, sync.EventConnected)
		next(t, srv, sync.EventConnected)
		c := dial("10.0.1.2:5000", "c")
		next(t, c, sync.EventConnected)
		next(t, srv, sync.EventConnected)
		cid := c.ID()
		g, err := srv.CreateGroup([]net.HostID{net.ServerID, cid, a.ID()}, []byte("ctf"))
		if err != nil {
			t.Fatal(err)
		}
		settle(srv)
		settle(a)
		settle(c)
		host := srv.GroupHost(g)
		if host != cid {
			t.Logf("host %v (c is %v)", host, cid)
		}
		cs, ca := collect(t, srv), collect(t, a)
		cAddr := netip.MustParseAddrPort("10.0.1.2:5000")
		nw.SetFilter(func(from, to netip.AddrPort, _ []byte) bool { return from == cAddr || to == cAddr })
		cs.wait(t, "the server sees c away", func(evs []sync.Event) bool { return count(evs, kindIs(sync.EventAway, cid, 0)) == 1 })

		c2 := dial("10.0.1.3:5000", "c") // the restarted process
		if c2.ID() != cid {
			t.Fatalf("the restarted client is %v, its session was %v", c2.ID(), cid)
		}
		cc := collect(t, c2)
		cs.wait(t, "the server sees c back", func(evs []sync.Event) bool {
			for _, e := range evs {
				if e.Kind == sync.EventBack && e.Peer == cid && errors.Is(e.Err, net.ErrSessionRestarted) {
					return true
				}
			}
			return false
		})
		ca.wait(t, "a sees c back", func(evs []sync.Event) bool {
			return count(evs, func(e sync.Event) bool { return e.Kind == sync.EventMemberBack && e.Member == cid && e.Group == g }) == 1
		})
		cc.wait(t, "c is told its group again", func(evs []sync.Event) bool {
			joins := count(evs, func(e sync.Event) bool { return e.Kind == sync.EventMemberJoin && e.Group == g && e.Count == 3 })
			return joins == 3 && count(evs, func(e sync.Event) bool { return e.Kind == sync.EventHostChange && e.Host == host }) == 1
		})
		if got := c2.Members(g); len(got) != 3 || string(c2.Custom(g)) != "ctf" || c2.GroupHost(g) != host {
			t.Fatalf("c's view: members %v custom %q host %v", got, c2.Custom(g), c2.GroupHost(g))
		}
		// Messages again, both ways, with the server and between peers.
		for i := range 20 {
			if err := c2.Send(g, net.Reliable, resumeMsg(cid, i)); err != nil {
				t.Fatal(err)
			}
			if err := a.Send(g, net.Reliable, resumeMsg(a.ID(), i)); err != nil {
				t.Fatal(err)
			}
		}
		cc.wait(t, "a's messages at c", func(evs []sync.Event) bool { return inOrder(t, evs, []net.HostID{a.ID()}, 20) })
		ca.wait(t, "c's messages at a", func(evs []sync.Event) bool { return inOrder(t, evs, []net.HostID{cid}, 20) })
		cs.wait(t, "both at the server", func(evs []sync.Event) bool { return inOrder(t, evs, []net.HostID{a.ID(), cid}, 20) })
		if !slicesContain(srv.Members(g), cid) || srv.GroupHost(g) != host {
			t.Fatalf("after: members %v host %v (was %v)", srv.Members(g), srv.GroupHost(g), host)
		}
		noMembershipChange(t, "across a restart", map[string]*collector{"server": cs, "a": ca})
	})
}
