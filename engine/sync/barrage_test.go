package sync

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// barrageKind is one kind of message the group layer defines, as a
// modified client sends it whole, and what its truncations come to.
type barrageKind struct {
	name string
	msg  []byte
	// minLen is the shortest prefix the receivers deliver as an
	// application message (0: never delivered).
	minLen int
	// serverTakes: the whole message is a control message the server acts
	// on from a client (no event, no drop).
	serverTakes bool
}

// outcomes counts what a barrage should come to at one receiver.
type outcomes struct {
	delivered  int
	malformed  uint64
	unexpected uint64
}

// TestTruncatedMessagesBarrage is the attack of issue 11 item 1 and its
// whole class: a modified client sends every kind of message the group
// layer defines (an application message to one host and to a group, each
// control operation, an unknown tag), truncated to every length from 1 to
// whole, reliable and unreliable, to the server and to a peer it shares a
// group with (directly, and in a second run through the server's relay).
// Both stay up, count each drop by its reason, deliver exactly the
// well-formed prefixes, and go on serving a legitimate client: a reliable
// round trip with the server and a group message to the peer. Length 0
// cannot cross the wire (engine/net drops an empty reliable message and
// counts it, TestEmptyReliableDropped; Send refuses one), so it goes to
// both receivers' handlers directly.
func TestTruncatedMessagesBarrage(t *testing.T) {
	t.Run("direct", func(t *testing.T) { synctest.Test(t, func(t *testing.T) { barrage(t, false) }) })
	t.Run("relayed", func(t *testing.T) { synctest.Test(t, func(t *testing.T) { barrage(t, true) }) })
}

// barrage runs TestTruncatedMessagesBarrage with the attacker's messages to
// the peer going directly or through the server's relay.
func barrage(t *testing.T, relayed bool) {
	ctx := t.Context()
	nw := vnet.New(11)
	t.Cleanup(func() { nw.Close() })
	srvAddr := netip.MustParseAddrPort("10.0.0.1:7000")
	sconn, err := nw.Listen(srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(sconn, ServerConfig{NoTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dial := func(i int) *Client {
		conn, err := nw.Listen(netip.MustParseAddrPort(fmt.Sprintf("10.0.1.%d:5000", i)))
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewClient(conn, ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Connect(ctx, srvAddr); err != nil {
			t.Fatal(err)
		}
		return c
	}
	attacker, victim, legit := dial(1), dial(2), dial(3)
	for range 3 { // the server has their addresses
		if e, err := srv.Next(ctx); err != nil || e.Kind != EventConnected {
			t.Fatalf("server: %+v, %v; want a connected client", e, err)
		}
	}
	g, err := srv.CreateGroup([]net.HostID{attacker.ID(), victim.ID(), legit.ID(), net.ServerID}, []byte("mode=ffa"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // peers punch through to each other
	synctest.Wait()
	for _, c := range []*Client{attacker, victim, legit} {
		drain(c.events)
	}
	drain(srv.events)
	if st, ok := victim.PeerState(attacker.ID()); !ok || st.Relayed {
		t.Fatalf("victim's path to the attacker: %+v (ok %v), want direct", st, ok)
	}
	if relayed {
		if err := attacker.ForceRelay(victim.ID(), true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		drain(attacker.events)
		if st, ok := attacker.PeerState(victim.ID()); !ok || !st.Relayed {
			t.Fatalf("attacker's path to the victim: %+v (ok %v), want relayed", st, ok)
		}
	}

	head := groupHead(g)
	kinds := []barrageKind{
		{name: "user", msg: append(append([]byte(nil), userHead...), "hello"...), minLen: 2},
		{name: "group", msg: append(head[:], "state"...), minLen: 6},
		{name: "unknown tag", msg: []byte{0x03, 'x', 'y'}},
	}
	for _, c := range controlSeeds() {
		if c.Op == opCandidates {
			c.Addrs = []netip.AddrPort{netip.MustParseAddrPort("10.0.1.1:5000")}
		}
		kinds = append(kinds, barrageKind{
			name: fmt.Sprintf("control op %d", c.Op), msg: appendControl(nil, c),
			serverTakes: c.Op == opCandidates || c.Op == opTimeReq || c.Op == opNATReport,
		})
	}

	var atServer, atPeer outcomes
	deliveries := []net.Delivery{net.Reliable, net.Unreliable, net.Unreliable.OnChannel(controlChannel)}
	for _, k := range kinds {
		for n := 1; n <= len(k.msg); n++ {
			part := k.msg[:n]
			for _, d := range deliveries {
				for _, to := range []net.HostID{net.ServerID, victim.ID()} {
					if err := attacker.Host().Send(to, d, part); err != nil {
						t.Fatalf("%s[:%d] to %v: %v", k.name, n, to, err)
					}
				}
				switch {
				case k.minLen > 0 && n >= k.minLen:
					atServer.delivered++
					atPeer.delivered++
				case k.minLen > 0 || n < len(k.msg) || k.msg[0] != tagControl:
					atServer.malformed++
					atPeer.malformed++
				default: // a whole control message
					if !k.serverTakes {
						atServer.unexpected++
					}
					atPeer.unexpected++
				}
				if k.msg[0] == tagControl && n < len(k.msg) {
					// A peer refuses control messages before reading them.
					atPeer.malformed--
					atPeer.unexpected++
				}
			}
		}
		time.Sleep(10 * time.Millisecond) // paced: the barrage is not a flood test
	}
	// Length 0, to each receiver's own handler.
	empty := net.Event{Kind: net.EventMessage, Peer: attacker.ID(), Delivery: net.Reliable, Data: []byte{}, Received: time.Now()}
	srv.do(func() error { srv.handle(empty); return nil })
	victim.handle(empty)
	atServer.malformed++
	atPeer.malformed++

	time.Sleep(time.Second)
	synctest.Wait()
	check := func(who string, e *events, want outcomes) {
		t.Helper()
		got := 0
		for _, ev := range drain(e) {
			if ev.Kind == EventMessage && ev.Peer == attacker.ID() {
				got++
				if e == victim.events && ev.Relayed != relayed {
					t.Errorf("peer got %+v, want relayed %v", ev, relayed)
				}
			}
		}
		d := e.Drops()
		t.Logf("%s: %d delivered, %d malformed, %d unexpected", who, got, d[net.DropMalformed], d[net.DropUnexpected])
		if got != want.delivered || d[net.DropMalformed] != want.malformed || d[net.DropUnexpected] != want.unexpected {
			t.Errorf("%s: delivered %d, malformed %d, unexpected %d; want %d, %d, %d", who,
				got, d[net.DropMalformed], d[net.DropUnexpected], want.delivered, want.malformed, want.unexpected)
		}
	}
	check("server", srv.events, atServer)
	check("peer", victim.events, atPeer)

	// Both still serve a legitimate client.
	if err := legit.Send(net.ServerID, net.Reliable, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if e := nextMessage(ctx, t, srv.events); e.Peer != legit.ID() || string(e.Data) != "ping" {
		t.Fatalf("server got %+v, want ping from %v", e, legit.ID())
	}
	if err := srv.Send(legit.ID(), net.Reliable, []byte("pong")); err != nil {
		t.Fatal(err)
	}
	if e := nextMessage(ctx, t, legit.events); e.Peer != net.ServerID || string(e.Data) != "pong" {
		t.Fatalf("client got %+v, want pong from the server", e)
	}
	if err := legit.Send(g, net.Reliable, []byte("to the group")); err != nil {
		t.Fatal(err)
	}
	if e := nextMessage(ctx, t, victim.events); e.Peer != legit.ID() || e.Group != g || string(e.Data) != "to the group" {
		t.Fatalf("peer got %+v, want the group message from %v", e, legit.ID())
	}
	if st, ok := srv.Host().LinkStats(attacker.ID()); !ok {
		t.Errorf("the server dropped the attacker's link (%+v): bad messages are dropped, not the client", st)
	}
}

// drain returns the events waiting in e.
func drain(e *events) []Event {
	var out []Event
	for ev, ok := e.Poll(); ok; ev, ok = e.Poll() {
		out = append(out, ev)
	}
	return out
}

// nextMessage waits for the next message event in e, passing over others.
func nextMessage(ctx context.Context, t *testing.T, e *events) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		ev, err := e.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for a message: %v", err)
		}
		if ev.Kind == EventMessage {
			return ev
		}
	}
}
