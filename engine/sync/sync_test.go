package sync_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	stdsync "sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/sync"
)

var srvAddr = netip.MustParseAddrPort("10.0.0.1:7000")

type world struct {
	t       *testing.T
	nw      *vnet.Network
	srv     *sync.Server
	clients []*sync.Client
	start   time.Time
}

// newWorld starts a server and n clients on a virtual network. Call it in a
// synctest bubble.
func newWorld(t *testing.T, n int, ncfg net.Config) *world {
	t.Helper()
	w := &world{t: t, nw: vnet.New(int64(n))}
	t.Cleanup(func() { w.nw.Close() })
	sc, _ := w.nw.Listen(srvAddr)
	srv, err := sync.NewServer(sc, sync.ServerConfig{Net: ncfg})
	if err != nil {
		t.Fatal(err)
	}
	w.start = time.Now()
	w.srv = srv
	t.Cleanup(func() { srv.Close() })
	for i := range n {
		w.addClient(fmt.Sprintf("10.0.1.%d:5000", i+1), ncfg)
	}
	return w
}

func (w *world) addClient(addr string, ncfg net.Config) *sync.Client {
	return w.dialTo(addr, srvAddr, ncfg)
}

// dialTo starts a client on addr and connects it to the server at srv.
func (w *world) dialTo(addr string, srv netip.AddrPort, ncfg net.Config) *sync.Client {
	conn, err := w.nw.Listen(netip.MustParseAddrPort(addr))
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := sync.NewClient(conn, sync.ClientConfig{Net: ncfg})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close() })
	if err := c.Connect(w.t.Context(), srv); err != nil {
		w.t.Fatal(err)
	}
	next(w.t, c, sync.EventConnected)
	next(w.t, w.srv, sync.EventConnected)
	w.clients = append(w.clients, c)
	return c
}

type eventSource interface {
	Next(context.Context) (sync.Event, error)
	Poll() (sync.Event, bool)
}

func next(t *testing.T, s eventSource, kind sync.EventKind) sync.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := s.Next(ctx)
	for err == nil && (e.Kind == sync.EventRelayStateChange || e.Kind == sync.EventNATType) && kind != e.Kind {
		if e.Kind == sync.EventRelayStateChange {
			skipped.add(s, e) // path changes come and go; relayEvents finds them
		}
		e, err = s.Next(ctx)
	}
	if err != nil {
		t.Fatalf("waiting for %v: %v", kind, err)
	}
	if e.Kind != kind {
		t.Fatalf("got %v (%+v), want %v", e.Kind, e, kind)
	}
	return e
}

// skipped keeps the relay-state events next passed over, per source.
var skipped = &eventLog{m: map[eventSource][]sync.Event{}}

type eventLog struct {
	mu stdsync.Mutex
	m  map[eventSource][]sync.Event
}

func (l *eventLog) add(s eventSource, e sync.Event) {
	l.mu.Lock()
	l.m[s] = append(l.m[s], e)
	l.mu.Unlock()
}

func (l *eventLog) take(s eventSource) []sync.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.m[s]
	delete(l.m, s)
	return evs
}

// settle lets everything in flight arrive, then returns the events waiting.
func settle(s eventSource, kinds ...sync.EventKind) []sync.Event {
	time.Sleep(200 * time.Millisecond)
	synctest.Wait()
	var out []sync.Event
	for {
		e, ok := s.Poll()
		if !ok {
			return out
		}
		if len(kinds) == 0 || slices.Contains(kinds, e.Kind) {
			out = append(out, e)
		}
	}
}

// ev is the part of a member event the semantics fix.
type ev struct {
	kind   sync.EventKind
	member net.HostID
	count  int
	custom string
}

func (w *world) ids(cs []*sync.Client) []net.HostID {
	var ids []net.HostID
	for _, c := range cs {
		ids = append(ids, c.ID())
	}
	return ids
}

// expectedJoins computes, from the rules in docs/SEMANTICS.md, what each member sees
// when members join one after another.
func expectedJoins(members []net.HostID, custom string, into map[net.HostID][]ev) {
	for i, m := range members {
		count := i + 1
		for _, e := range members[:i] {
			into[e] = append(into[e], ev{sync.EventMemberJoin, m, count, custom})
		}
		for _, e := range members[:i] {
			into[m] = append(into[m], ev{sync.EventMemberJoin, e, count, custom})
		}
		into[m] = append(into[m], ev{sync.EventMemberJoin, m, count, custom})
	}
}

func (w *world) check(want map[net.HostID][]ev) {
	w.t.Helper()
	for _, c := range w.clients {
		var got []ev
		for _, e := range settle(c, sync.EventMemberJoin, sync.EventMemberLeave) {
			got = append(got, ev{e.Kind, e.Member, e.Count, string(e.Custom)})
		}
		if !slices.Equal(got, want[c.ID()]) {
			w.t.Fatalf("client %v saw\n %v\nwant\n %v", c.ID(), got, want[c.ID()])
		}
	}
}

func TestMemberEventSemantics(t *testing.T) {
	for k := 1; k <= 5; k++ {
		t.Run(fmt.Sprintf("%d members", k), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, k+1, net.Config{})
				members := w.ids(w.clients[:k])
				custom := fmt.Sprintf("mode=%d", k)
				g, err := w.srv.CreateGroup(members, []byte(custom))
				if err != nil {
					t.Fatal(err)
				}
				want := map[net.HostID][]ev{}
				expectedJoins(members, custom, want)
				w.check(want)

				// A latecomer joins.
				late := w.clients[k].ID()
				if err := w.srv.JoinGroup(g, late); err != nil {
					t.Fatal(err)
				}
				want = map[net.HostID][]ev{}
				for _, m := range members {
					want[m] = []ev{{sync.EventMemberJoin, late, k + 1, custom}}
				}
				for _, m := range members {
					want[late] = append(want[late], ev{sync.EventMemberJoin, m, k + 1, custom})
				}
				want[late] = append(want[late], ev{sync.EventMemberJoin, late, k + 1, custom})
				w.check(want)
				if got := w.clients[0].Members(g); !slices.Equal(got, append(slices.Clone(members), late)) {
					t.Fatalf("client's member list %v", got)
				}

				// The first member leaves: the others hear of it; it hears of
				// each remaining member, then of itself.
				leaver := members[0]
				if err := w.srv.LeaveGroup(g, leaver); err != nil {
					t.Fatal(err)
				}
				rest := append(slices.Clone(members[1:]), late)
				want = map[net.HostID][]ev{}
				for _, r := range rest {
					want[r] = []ev{{sync.EventMemberLeave, leaver, k, ""}}
					want[leaver] = append(want[leaver], ev{sync.EventMemberLeave, r, k, ""})
				}
				want[leaver] = append(want[leaver], ev{sync.EventMemberLeave, leaver, k, ""})
				w.check(want)
				if gs := w.clients[0].Groups(); len(gs) != 0 {
					t.Fatalf("the leaver still has groups %v", gs)
				}

				// Destroy: members leave last-joined first.
				if err := w.srv.DestroyGroup(g); err != nil {
					t.Fatal(err)
				}
				for _, c := range w.clients[1:] {
					evs := settle(c, sync.EventMemberLeave)
					if len(evs) == 0 || evs[len(evs)-1].Member != c.ID() || evs[len(evs)-1].Count != 0 && c.ID() == rest[0] {
						t.Fatalf("client %v destroy events %+v", c.ID(), evs)
					}
				}
				if len(w.srv.Groups()) != 0 {
					t.Fatalf("groups left: %v", w.srv.Groups())
				}
			})
		})
	}
}

func TestDisconnectLeavesAllGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 3, net.Config{})
		ids := w.ids(w.clients)
		g1, _ := w.srv.CreateGroup(ids, nil)
		g2, _ := w.srv.CreateGroup(ids[1:], nil)
		settle(w.clients[1])
		settle(w.clients[2])
		w.clients[1].Close()
		got := settle(w.clients[2], sync.EventMemberLeave)
		if len(got) != 2 || got[0].Member != ids[1] || got[1].Member != ids[1] {
			t.Fatalf("events %+v", got)
		}
		if m := w.srv.Members(g1); !slices.Equal(m, []net.HostID{ids[0], ids[2]}) {
			t.Fatalf("g1 members %v", m)
		}
		if m := w.srv.Members(g2); !slices.Equal(m, []net.HostID{ids[2]}) {
			t.Fatalf("g2 members %v", m)
		}
	})
}

func TestGroupMulticastThroughRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 3, net.Config{DisableP2P: true})
		ids := w.ids(w.clients)
		g, _ := w.srv.CreateGroup(append(ids, net.ServerID), []byte("ffa"))
		for _, c := range w.clients {
			settle(c)
		}
		settle(w.srv)
		w.nw.SetConditions(vnet.Conditions{Loss: 0.1, Delay: 10 * time.Millisecond, Jitter: 3 * time.Millisecond})
		const count = 300
		for i := range count {
			for _, c := range w.clients {
				var b [8]byte
				binary.LittleEndian.PutUint32(b[:], uint32(c.ID()))
				binary.LittleEndian.PutUint32(b[4:], uint32(i))
				if err := c.Send(g, net.Reliable, b[:]); err != nil {
					t.Fatal(err)
				}
			}
			if i%20 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		time.Sleep(5 * time.Second)
		for _, r := range append([]interface {
			eventSource
		}{w.srv}, w.clients[0], w.clients[1], w.clients[2]) {
			nextFrom := map[net.HostID]uint32{}
			self := net.ServerID
			if c, ok := r.(*sync.Client); ok {
				self = c.ID()
			}
			for _, e := range settle(r, sync.EventMessage) {
				from := net.HostID(binary.LittleEndian.Uint32(e.Data))
				seq := binary.LittleEndian.Uint32(e.Data[4:])
				if from != e.Peer || from == self || e.Group != g {
					t.Fatalf("%v got a message from %v (peer %v, group %v)", self, from, e.Peer, e.Group)
				}
				if self != net.ServerID && !e.Relayed {
					t.Fatalf("peer message not relayed")
				}
				if seq != nextFrom[from] {
					t.Fatalf("%v: message %d from %v, want %d", self, seq, from, nextFrom[from])
				}
				nextFrom[from]++
			}
			for _, c := range w.clients {
				if c.ID() != self && nextFrom[c.ID()] != count {
					t.Fatalf("%v got %d of %d messages from %v", self, nextFrom[c.ID()], count, c.ID())
				}
			}
		}
		relayed := w.srv.Host().Stats().Relayed.DatagramsOut
		if relayed == 0 {
			t.Fatal("nothing relayed")
		}
	})
}

func TestNoRelayIntoAHostOutsideTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 3, net.Config{})
		a, b, outsider := w.clients[0], w.clients[1], w.clients[2]
		g, _ := w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil)
		settle(a)
		// a forges a peer link to the outsider (it has no real keys).
		if err := a.Host().AddPeer(outsider.ID(), net.NewKeys(), a.Host().RelayPath(outsider.ID())); err != nil {
			t.Fatal(err)
		}
		a.Host().Send(outsider.ID(), net.Reliable, []byte{0, 'x'})
		a.Host().Send(outsider.ID(), net.Unreliable, []byte{0, 'y'})
		if got := settle(outsider, sync.EventMessage); len(got) != 0 {
			t.Fatalf("outsider got %+v", got)
		}
		denied := w.srv.Host().Stats().Drops[net.DropRelayDenied]
		if denied < 2 {
			t.Fatalf("relay denials counted: %d", denied)
		}
		// After b leaves the group, a cannot reach b through the relay either.
		w.srv.LeaveGroup(g, b.ID())
		settle(a)
		settle(b)
		a.Host().AddPeer(b.ID(), net.NewKeys(), a.Host().RelayPath(b.ID()))
		a.Host().Send(b.ID(), net.Unreliable, []byte{0, 'z'})
		if got := settle(b, sync.EventMessage); len(got) != 0 {
			t.Fatalf("b got %+v", got)
		}
		if d := w.srv.Host().Stats().Drops[net.DropRelayDenied]; d <= denied {
			t.Fatal("denial after leave not counted")
		}
	})
}

func TestHostMigration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := net.Config{Timeout: 3 * time.Second, PingInterval: 500 * time.Millisecond}
		w := newWorld(t, 4, cfg)
		ids := w.ids(w.clients)
		time.Sleep(2 * time.Second) // RTT samples for the election
		g, _ := w.srv.CreateGroup(ids, nil)
		host := w.srv.GroupHost(g)
		if !slices.Contains(ids, host) {
			t.Fatalf("host %v is not a member", host)
		}
		for _, c := range w.clients {
			evs := settle(c, sync.EventHostChange)
			if len(evs) != 1 || evs[0].Host != host || c.GroupHost(g) != host {
				t.Fatalf("client %v host events %+v", c.ID(), evs)
			}
		}
		byID := map[net.HostID]*sync.Client{}
		for _, c := range w.clients {
			byID[c.ID()] = c
		}

		// The host leaves gracefully: a new host is named at once.
		start := time.Now()
		w.srv.LeaveGroup(g, host)
		second := w.srv.GroupHost(g)
		if second == host || second == net.NoHost {
			t.Fatalf("new host %v", second)
		}
		for _, c := range w.clients {
			if c.ID() == host {
				continue
			}
			if e := next(t, c, sync.EventMemberLeave); e.Member != host {
				t.Fatalf("leave of %v, want of the host %v", e.Member, host)
			}
			e := next(t, c, sync.EventHostChange)
			if e.Host != second {
				t.Fatalf("announced %v, want %v", e.Host, second)
			}
		}
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Fatalf("migration announced after %v", took)
		}

		// The new host vanishes: after the timeout, another is named.
		gone := byID[second].Host().LocalAddr()
		w.nw.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return from == gone })
		start = time.Now()
		var last *sync.Client
		for _, c := range w.clients {
			if c.ID() != host && c.ID() != second {
				last = c
			}
		}
		for {
			e := next(t, last, sync.EventMemberLeave)
			if e.Member == second {
				break
			}
		}
		e := next(t, last, sync.EventHostChange)
		if e.Host == second || e.Host == net.NoHost {
			t.Fatalf("host after crash %v", e.Host)
		}
		if took := time.Since(start); took > cfg.Timeout+time.Second {
			t.Fatalf("migration after a crash took %v", took)
		}
	})
}

func TestServerClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, net.Config{})
		c := w.clients[0]
		w.nw.SetLinkConditions(c.Host().LocalAddr().Addr(), srvAddr.Addr(), vnet.Conditions{Delay: 30 * time.Millisecond})
		w.nw.SetLinkConditions(srvAddr.Addr(), c.Host().LocalAddr().Addr(), vnet.Conditions{Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond})
		time.Sleep(10 * time.Second)
		st, err := c.ServerTime()
		if err != nil {
			t.Fatal(err)
		}
		truth := time.Since(w.start)
		if d := st - truth; d < -6*time.Millisecond || d > 6*time.Millisecond {
			t.Fatalf("server time off by %v", d)
		}
		_, rtt, _ := c.ServerClock()
		if rtt < 40*time.Millisecond || rtt > 75*time.Millisecond {
			t.Fatalf("clock sample rtt %v", rtt)
		}
	})
}

func TestSendRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 2, net.Config{DisableP2P: true})
		a, b := w.clients[0], w.clients[1]
		if err := a.Send(b.ID(), net.Reliable, []byte("x")); err == nil {
			t.Fatal("sent to a peer outside any group")
		}
		if err := a.Send(net.ServerID, net.Unreliable.OnChannel(255), []byte("x")); err == nil {
			t.Fatal("channel 255 accepted")
		}
		if err := a.Send(net.ServerID, net.Reliable, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		e := next(t, w.srv, sync.EventMessage)
		if e.Peer != a.ID() || !bytes.Equal(e.Data, []byte("hi")) || e.Group != net.NoHost {
			t.Fatalf("got %+v", e)
		}
		g, _ := w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil)
		settle(a)
		settle(b)
		if err := a.Send(b.ID(), net.Unreliable, []byte("p2p")); err != nil {
			t.Fatal(err)
		}
		e = next(t, b, sync.EventMessage)
		if e.Peer != a.ID() || string(e.Data) != "p2p" || !e.Relayed || e.Group != net.NoHost {
			t.Fatalf("got %+v", e)
		}
		if err := w.srv.Send(g, net.Reliable, []byte("all")); err != nil {
			t.Fatal(err)
		}
		for _, c := range w.clients {
			e := next(t, c, sync.EventMessage)
			if e.Peer != net.ServerID || e.Group != g || string(e.Data) != "all" {
				t.Fatalf("got %+v", e)
			}
		}
	})
}

func netipAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
