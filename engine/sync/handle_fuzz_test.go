package sync

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// Hosts of the handler fuzz targets: a client that has announced its
// addresses, one that has not, and a peer.
const (
	fuzzReady   net.HostID = 1001
	fuzzFresh   net.HostID = 1002
	fuzzPeer    net.HostID = 1003
	fuzzGroupID net.HostID = 5000
)

// messageSeeds are real messages of every kind the group layer sends: each
// control operation, an application message to one host and one to a
// group, as the Client and Server encode them.
func messageSeeds() [][]byte {
	var out [][]byte
	for _, c := range controlSeeds() {
		out = append(out, appendControl(nil, c))
	}
	head := groupHead(fuzzGroupID)
	out = append(out,
		append(append([]byte(nil), userHead...), "hello"...),
		append(head[:], "snapshot"...),
		nil,
		[]byte{tagUser},
		head[:],
		head[:3],
		[]byte{tagControl},
		[]byte{0x7f, 1, 2},
	)
	return out
}

// delivered checks an application message event against the bytes it came
// from: the same sender, the payload the tail of the message, and the group
// the one in its header.
func delivered(t *testing.T, e Event, from net.HostID, data []byte) {
	t.Helper()
	if e.Peer != from || len(e.Data) == 0 || !bytes.HasSuffix(data, e.Data) {
		t.Fatalf("message event %+v from %x (sender %v)", e, data, from)
	}
	switch data[0] {
	case tagUser:
		if e.Group != net.NoHost || len(e.Data) != len(data)-1 {
			t.Fatalf("user message %x delivered as %+v", data, e)
		}
	case tagGroup:
		if e.Group != net.HostID(binary.LittleEndian.Uint32(data[1:5])) || len(e.Data) != len(data)-5 {
			t.Fatalf("group message %x delivered as %+v", data, e)
		}
	default:
		t.Fatalf("message %x with tag %#x delivered", data, data[0])
	}
}

func dropsSince(before, after net.DropCounts) (d net.DropCounts) {
	for i := range d {
		d[i] = after[i] - before[i]
	}
	return d
}

// FuzzServerMessage feeds arbitrary messages from a client to the Server's
// own handler on its loop goroutine, from a client that has announced its
// addresses (ready) or one that has not. The server never panics; each
// message is either dropped and counted once, delivered as one event that
// matches its bytes, or is a control message the server acts on.
func FuzzServerMessage(f *testing.F) {
	for _, m := range messageSeeds() {
		f.Add(m, true, true)
		f.Add(m, false, false)
	}
	nw := vnet.New(1)
	f.Cleanup(func() { nw.Close() })
	conn, err := nw.Listen(netip.MustParseAddrPort("10.0.0.1:7000"))
	if err != nil {
		f.Fatal(err)
	}
	s, err := NewServer(conn, ServerConfig{NoTCP: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	run := func(ev net.Event) (net.DropCounts, []Event) {
		before := s.Drops()
		if err := s.do(func() error { s.handle(ev); return nil }); err != nil {
			f.Fatal(err)
		}
		var evs []Event
		for e, ok := s.Poll(); ok; e, ok = s.Poll() {
			evs = append(evs, e)
		}
		return dropsSince(before, s.Drops()), evs
	}
	announce := appendControl(nil, control{Op: opCandidates, Addrs: []netip.AddrPort{netip.MustParseAddrPort("10.0.1.1:5000")}})
	if _, evs := run(net.Event{Kind: net.EventMessage, Peer: fuzzReady, Delivery: net.Reliable, Data: announce}); len(evs) != 1 || evs[0].Kind != EventConnected {
		f.Fatalf("announcement gave %+v, want one connected event", evs)
	}
	f.Fuzz(func(t *testing.T, data []byte, ready, reliable bool) {
		from := fuzzFresh
		if ready {
			from = fuzzReady
		}
		d := net.Unreliable
		if reliable {
			d = net.Reliable
		}
		drops, evs := run(net.Event{Kind: net.EventMessage, Peer: from, Delivery: d, Data: append([]byte(nil), data...), Received: time.Now()})
		defer s.do(func() error { // the fresh client stays fresh for the next input
			delete(s.memberOf, fuzzFresh)
			delete(s.lan, fuzzFresh)
			return nil
		})
		if n := drops.Total() + uint64(len(evs)); n > 1 {
			t.Fatalf("%x: drops %v and events %+v: more than one outcome", data, drops, evs)
		}
		if len(data) == 0 && drops[net.DropMalformed] != 1 {
			t.Fatalf("empty message: drops %v", drops)
		}
		var c control
		ctlErr := errBadControl
		if len(data) > 0 && data[0] == tagControl {
			c, ctlErr = parseControl(data[1:])
			if ctlErr != nil && drops[net.DropMalformed] != 1 {
				t.Fatalf("bad control message %x: drops %v", data, drops)
			}
		}
		if len(evs) == 1 {
			e := evs[0]
			switch e.Kind {
			case EventMessage:
				if !ready {
					t.Fatalf("message %x taken from a client that has not announced itself", data)
				}
				delivered(t, e, from, data)
			case EventConnected:
				if ready || ctlErr != nil || c.Op != opCandidates || e.Peer != from {
					t.Fatalf("%x made event %+v", data, e)
				}
			default:
				t.Fatalf("%x made event %+v", data, e)
			}
		}
		if drops.Total() == 0 && len(evs) == 0 {
			// Only a clock request, or the addresses or NAT type of a
			// client already announced, have no event and no drop.
			quiet := c.Op == opTimeReq || (c.Op == opCandidates || c.Op == opNATReport) && ready
			if ctlErr != nil || !quiet {
				t.Fatalf("%x from %v: neither dropped nor taken", data, from)
			}
		}
	})
}

// FuzzClientMessage feeds arbitrary messages from the server or from a
// peer to a Client's own handler. The client never panics; a message from
// a peer is either dropped and counted once or delivered as one event that
// matches its bytes (control messages from a peer are refused); the
// server's control messages are applied.
func FuzzClientMessage(f *testing.F) {
	for _, m := range messageSeeds() {
		f.Add(m, true, true)
		f.Add(m, false, true)
		f.Add(m, false, false)
	}
	nw := vnet.New(1)
	f.Cleanup(func() { nw.Close() })
	conn, err := nw.Listen(netip.MustParseAddrPort("10.0.1.1:5000"))
	if err != nil {
		f.Fatal(err)
	}
	// Not connected: its loop takes no network event, so this goroutine
	// is the only one that handles messages (peer additions punch into
	// the virtual network, which delivers them nowhere).
	c, err := NewClient(conn, ClientConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	f.Fuzz(func(t *testing.T, data []byte, fromServer, reliable bool) {
		from := fuzzPeer
		if fromServer {
			from = net.ServerID
		}
		d := net.Unreliable
		if reliable {
			d = net.Reliable
		}
		before := c.Drops()
		c.handle(net.Event{Kind: net.EventMessage, Peer: from, Delivery: d, Data: append([]byte(nil), data...), Received: time.Now()})
		drops := dropsSince(before, c.Drops())
		var evs []Event
		for e, ok := c.Poll(); ok; e, ok = c.Poll() {
			evs = append(evs, e)
		}
		defer func() { // forget what a control message set up
			for _, p := range c.Peers() {
				c.h.RemovePeer(p)
			}
			c.mu.Lock()
			clear(c.groups)
			clear(c.peers)
			c.mu.Unlock()
		}()
		if drops.Total() > 1 {
			t.Fatalf("%x: drops %v", data, drops)
		}
		if len(data) == 0 && drops[net.DropMalformed] != 1 {
			t.Fatalf("empty message: drops %v", drops)
		}
		if len(data) == 0 || data[0] != tagControl {
			if n := drops.Total() + uint64(len(evs)); n != 1 {
				t.Fatalf("message %x from %v: drops %v and events %+v, want exactly one", data, from, drops, evs)
			}
			if len(evs) == 1 {
				delivered(t, evs[0], from, data)
			}
			return
		}
		if !fromServer {
			if drops[net.DropUnexpected] != 1 || len(evs) != 0 {
				t.Fatalf("control message %x from a peer: drops %v, events %+v", data, drops, evs)
			}
			return
		}
		ctl, err := parseControl(data[1:])
		switch {
		case err != nil:
			if drops[net.DropMalformed] != 1 || len(evs) != 0 {
				t.Fatalf("bad control message %x: drops %v, events %+v", data, drops, evs)
			}
		case ctl.Op == opTimeReq || ctl.Op == opCandidates || ctl.Op == opNATReport:
			if drops[net.DropUnexpected] != 1 {
				t.Fatalf("client-side control %x from the server: drops %v", data, drops)
			}
		case ctl.Op == opPeerNAT:
			// Taken for a peer, dropped as unexpected for anyone else.
			want := uint64(1)
			if slices.Contains(c.Peers(), ctl.Peer) {
				want = 0
			}
			if drops[net.DropUnexpected] != want || drops.Total() != want || len(evs) != 0 {
				t.Fatalf("peer NAT %x: drops %v, events %+v", data, drops, evs)
			}
		default:
			if drops.Total() != 0 {
				t.Fatalf("server control %x dropped: %v", data, drops)
			}
			if want, ok := controlEvent(ctl, time.Time{}); ok && (len(evs) != 1 || evs[0].Kind != want.Kind || evs[0].Group != want.Group) {
				t.Fatalf("control %x: events %+v, want one %v", data, evs, want.Kind)
			}
		}
	})
}
