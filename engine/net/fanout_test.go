package net_test

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// groupTable is a server's fan-out policy in tests: groups set by hand.
type groupTable struct {
	mu     sync.Mutex
	groups map[net.HostID][]net.HostID
}

func (g *groupTable) set(id net.HostID, members ...net.HostID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.groups == nil {
		g.groups = make(map[net.HostID][]net.HostID)
	}
	g.groups[id] = members
}

func (g *groupTable) members(id net.HostID, dst []net.HostID) ([]net.HostID, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.groups[id]
	return append(dst, m...), ok
}

// fanoutNet starts a server whose groups are gt and n clients configured by
// cfg(i), each pair of clients linked through the relay.
func fanoutNet(t *testing.T, nw *vnet.Network, gt *groupTable, n int, cfg func(i int) net.Config) (*net.Host, []*net.Host) {
	t.Helper()
	sconn, _ := nw.Listen(srvAddr)
	srv, _ := net.NewHost(sconn, net.Config{Accept: true, GroupMembers: gt.members,
		RelayPolicy: func(from, to net.HostID) bool { return true }})
	t.Cleanup(func() { srv.Close() })
	clients := dialAll(t, srv, n, vnetClient(t, nw, cfg))
	peer(t, clients)
	return srv, clients
}

func ids(hs ...*net.Host) []net.HostID {
	var out []net.HostID
	for _, h := range hs {
		out = append(out, h.ID())
	}
	return out
}

// noMessage fails if h has a message waiting.
func noMessage(t *testing.T, h *net.Host) {
	t.Helper()
	for {
		e, ok := h.Poll()
		if !ok {
			return
		}
		if e.Kind == net.EventMessage {
			t.Fatalf("unexpected message %q from %v", e.Data, e.Peer)
		}
	}
}

func TestSendGroupFansOutOneDatagramUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(30)
		defer nw.Close()
		gt := new(groupTable)
		srv, c := fanoutNet(t, nw, gt, 5, func(int) net.Config { return net.Config{} })
		const g, gs = net.HostID(900), net.HostID(901)
		gt.set(g, ids(c[:4]...)...)                    // c[4] is not a member
		gt.set(gs, c[0].ID(), net.ServerID, c[1].ID()) // the server is a member
		var up atomic.Int64
		nw.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
			if from == c[0].LocalAddr() && to == srvAddr {
				up.Add(1)
			}
			return false
		})
		if err := c[0].SendGroup(g, ids(c[1:4]...), net.Unreliable.OnChannel(3), []byte{1}, []byte("state")); err != nil {
			t.Fatal(err)
		}
		if n := up.Load(); n != 1 {
			t.Fatalf("group send took %d datagrams up, want 1", n)
		}
		for _, r := range c[1:4] {
			e := expect(t, r, net.EventMessage, c[0].ID())
			if string(e.Data) != "\x01state" || !e.Relayed || e.Delivery != net.Unreliable.OnChannel(3) {
				t.Fatalf("got %q relayed=%v delivery %+v", e.Data, e.Relayed, e.Delivery)
			}
		}
		// The server counts a copy once its write returned: the last
		// member may read its copy first. Let every host settle.
		synctest.Wait()
		st := srv.Stats()
		if st.Fanned.DatagramsIn != 1 || st.Fanned.DatagramsOut != 3 || st.Relayed.DatagramsOut != 3 {
			t.Fatalf("server fan-out stats: fanned %+v relayed %+v", st.Fanned, st.Relayed)
		}
		if cs := c[0].Stats(); cs.Fanned.DatagramsOut != 1 {
			t.Fatalf("sender fan-out stats %+v", cs.Fanned)
		}

		// The server is a member: it gets the message once, from the same
		// datagram.
		up.Store(0)
		if err := c[0].SendGroup(gs, []net.HostID{net.ServerID, c[1].ID()}, net.Unreliable, nil, []byte("both")); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, srv, net.EventMessage, c[0].ID()); string(e.Data) != "both" || e.Relayed {
			t.Fatalf("server got %q relayed=%v", e.Data, e.Relayed)
		}
		if e := expect(t, c[1], net.EventMessage, c[0].ID()); string(e.Data) != "both" {
			t.Fatalf("member got %q", e.Data)
		}
		if n := up.Load(); n != 1 {
			t.Fatalf("group send with the server took %d datagrams up, want 1", n)
		}
		time.Sleep(100 * time.Millisecond)
		for _, h := range append(c, srv) {
			noMessage(t, h) // no second copy, none to the non-member, none back
		}
		if d := srv.Stats().Drops; d.Total() != 0 {
			t.Fatalf("server drops %v", d)
		}
	})
}

func TestFanoutRefusedIsCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(31)
		defer nw.Close()
		gt := new(groupTable)
		srv, c := fanoutNet(t, nw, gt, 4, func(int) net.Config { return net.Config{} })
		const g = net.HostID(900)
		gt.set(g, ids(c[:3]...)...)

		// A non-member, although it has peer links to the members.
		c[3].SendGroup(g, ids(c[:3]...), net.Unreliable, nil, []byte("let me in"))
		time.Sleep(100 * time.Millisecond)
		if d := srv.Stats().Drops[net.DropRelayDenied]; d != 1 {
			t.Fatalf("non-member fan-out: relay denied counted %d, want 1", d)
		}
		// A group the server does not know.
		c[0].SendGroup(4242, ids(c[1:3]...), net.Unreliable, nil, []byte("nobody"))
		time.Sleep(100 * time.Millisecond)
		if d := srv.Stats().Drops[net.DropUnknownPeer]; d != 1 {
			t.Fatalf("unknown group: unknown peer counted %d, want 1", d)
		}
		// A member naming a non-member: c[2] is reached directly, so the
		// frame lists c[1] and c[3]; only c[1] is served.
		if err := c[0].SetPath(c[2].ID(), c[0].DirectPath(c[2].LocalAddr())); err != nil {
			t.Fatal(err)
		}
		if err := c[0].SendGroup(g, ids(c[1], c[3], c[2]), net.Unreliable, nil, []byte("mixed")); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, c[1], net.EventMessage, c[0].ID()); string(e.Data) != "mixed" || !e.Relayed {
			t.Fatalf("listed member got %q relayed=%v", e.Data, e.Relayed)
		}
		if e := expect(t, c[2], net.EventMessage, c[0].ID()); string(e.Data) != "mixed" || e.Relayed {
			t.Fatalf("direct member got %q relayed=%v", e.Data, e.Relayed)
		}
		time.Sleep(100 * time.Millisecond)
		if d := srv.Stats().Drops[net.DropRelayDenied]; d != 2 {
			t.Fatalf("listed non-member: relay denied counted %d, want 2", d)
		}
		if ls, _ := srv.LinkStats(c[0].ID()); ls.Drops[net.DropRelayDenied] != 1 || ls.Drops[net.DropUnknownPeer] != 1 {
			t.Fatalf("not counted on the sender's link: %v", ls.Drops)
		}
		for _, h := range c {
			noMessage(t, h)
		}
		if st := srv.Stats(); st.Fanned.DatagramsIn != 3 || st.Fanned.DatagramsOut != 1 {
			t.Fatalf("server fan-out stats %+v", st.Fanned)
		}
	})
}

func TestFanoutRateLimitedPerCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(32)
		defer nw.Close()
		gt := new(groupTable)
		sconn, _ := nw.Listen(srvAddr)
		srv, _ := net.NewHost(sconn, net.Config{Accept: true, RelayRate: 100, GroupMembers: gt.members})
		defer srv.Close()
		c := dialAll(t, srv, 3, vnetClient(t, nw, func(int) net.Config { return net.Config{} }))
		peer(t, c)
		gt.set(900, ids(c...)...)
		// 500 group messages in half a second, 2 copies each: 100 copies/s
		// allowed, plus a burst of 100.
		for i := range 500 {
			c[0].SendGroup(900, ids(c[1:]...), net.Unreliable, nil, []byte{byte(i)})
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		st := srv.Stats()
		if limited, copies := st.Drops[net.DropRateLimited], st.Fanned.DatagramsOut; copies > 200 || limited+copies != 1000 {
			t.Fatalf("rate limited %d, fanned out %d of 1000 copies at 100/s", limited, copies)
		}
	})
}

// TestUnreliableOrderAcrossDirectAndFanout interleaves direct sends and
// fan-out sends on one channel over a reordering network: the receiver must
// never deliver an older message after a newer one from the same sender.
func TestUnreliableOrderAcrossDirectAndFanout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(33)
		defer nw.Close()
		gt := new(groupTable)
		// The sender fans out any group send to more than one peer.
		_, c := fanoutNet(t, nw, gt, 3, func(i int) net.Config {
			if i == 0 {
				return net.Config{FanoutAbove: 1}
			}
			return net.Config{}
		})
		gt.set(900, ids(c...)...)
		for _, r := range c[1:] {
			if err := c[0].SetPath(r.ID(), c[0].DirectPath(r.LocalAddr())); err != nil {
				t.Fatal(err)
			}
		}
		nw.SetConditions(vnet.Conditions{Delay: 5 * time.Millisecond, Jitter: 4 * time.Millisecond, Reorder: 0.2})
		const count = 600
		groupSends := 0
		for i := range count {
			msg := []byte{byte(i), byte(i >> 8)}
			var err error
			if i%3 == 0 {
				err = c[0].Send(c[1].ID(), net.Unreliable.OnChannel(7), msg)
			} else {
				groupSends++
				err = c[0].SendGroup(900, ids(c[1:]...), net.Unreliable.OnChannel(7), nil, msg)
			}
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(4 * time.Millisecond)
		}
		time.Sleep(time.Second)
		last, got, relayed := -1, 0, 0
		for {
			e, ok := c[1].Poll()
			if !ok {
				break
			}
			if e.Kind != net.EventMessage {
				continue
			}
			i := int(e.Data[0]) | int(e.Data[1])<<8
			if i <= last {
				t.Fatalf("message %d delivered after %d", i, last)
			}
			last = i
			got++
			if e.Relayed {
				relayed++
			}
		}
		stale := c[1].Stats().Drops[net.DropStale]
		t.Logf("of %d messages: %d delivered (%d fanned out), %d stale", count, got, relayed, stale)
		// A third of the messages went directly: most of them must arrive
		// (a fan-out numbered apart from direct sends would make them all
		// look stale).
		if got < count/2 || relayed < count/3 || got-relayed < count/6 || stale == 0 {
			t.Fatalf("%d delivered, %d fanned out, %d stale: the run did not mix and reorder both paths", got, relayed, stale)
		}
		if n := c[0].Stats().Fanouts; n != uint64(groupSends) {
			t.Fatalf("fan-outs counted %d", n)
		}
	})
}

// The server's own copy of a fan-out message (it is a member of the group)
// costs the sender a relay token like every other copy: a member flooding
// a group with the server in it is limited to RelayRate copies in all.
func TestFanoutServerCopyRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(34)
		defer nw.Close()
		gt := new(groupTable)
		sconn, _ := nw.Listen(srvAddr)
		srv, _ := net.NewHost(sconn, net.Config{Accept: true, RelayRate: 100, GroupMembers: gt.members})
		defer srv.Close()
		c := dialAll(t, srv, 2, vnetClient(t, nw, func(int) net.Config { return net.Config{} }))
		peer(t, c)
		gt.set(900, c[0].ID(), net.ServerID, c[1].ID())
		// 500 group messages in half a second, 2 copies each (one for the
		// server itself): 100 copies/s allowed, plus a burst of 100.
		for i := range 500 {
			c[0].SendGroup(900, []net.HostID{net.ServerID, c[1].ID()}, net.Unreliable, nil, []byte{byte(i)})
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		own := 0
		for {
			e, ok := srv.Poll()
			if !ok {
				break
			}
			if e.Kind == net.EventMessage && e.Peer == c[0].ID() {
				own++
			}
		}
		st := srv.Stats()
		limited, copies := st.Drops[net.DropRateLimited], st.Fanned.DatagramsOut+uint64(own)
		if own == 0 || copies > 200 || limited+copies != 1000 {
			t.Fatalf("rate limited %d, delivered %d (%d to the server itself) of 1000 copies at 100/s", limited, copies, own)
		}
	})
}
