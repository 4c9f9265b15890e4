package rmi_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/gamerpc"
)

// fakeNet is an in-memory transport: each fakeHost is an rmi.Sender, and a
// group ID multicasts to every member but the sender, as net.Host will.
type fakeNet struct {
	hosts  map[net.HostID]*fakeHost
	groups map[net.HostID][]net.HostID
}

type fakeMsg struct {
	from net.HostID
	d    net.Delivery
	data []byte
}

type fakeHost struct {
	id    net.HostID
	n     *fakeNet
	inbox []fakeMsg
	disp  *rmi.Dispatcher
}

func (h *fakeHost) Send(to net.HostID, d net.Delivery, data []byte) error {
	dests := h.n.groups[to]
	if dests == nil {
		dests = []net.HostID{to}
	}
	for _, id := range dests {
		if id == h.id && len(h.n.groups[to]) > 0 {
			continue
		}
		dst, ok := h.n.hosts[id]
		if !ok {
			return errors.New("unknown host")
		}
		// Copy, as the real Host does before Send returns.
		dst.inbox = append(dst.inbox, fakeMsg{h.id, d, append([]byte(nil), data...)})
	}
	return nil
}

// drain hands every waiting message to the host's dispatcher, as a game loop
// draining net.Host events would.
func (h *fakeHost) drain(t *testing.T) {
	for _, m := range h.inbox {
		if err := h.disp.Receive(m.from, m.d, m.data, false, time.Unix(9, 0)); err != nil {
			t.Errorf("host %v: %v", h.id, err)
		}
	}
	h.inbox = nil
}

type move struct {
	host     net.HostID
	info     rmi.CallInfo
	pos, vel gamerpc.Vec2
	tick     uint32
}

// TestEndToEndFakeHosts calls Player_Move on a proxy of one host and checks
// it reaches the stubs of a peer and of a group with the right sender and
// values.
func TestEndToEndFakeHosts(t *testing.T) {
	n := &fakeNet{hosts: map[net.HostID]*fakeHost{}, groups: map[net.HostID][]net.HostID{}}
	var got []move
	for _, id := range []net.HostID{1000, 1001, 1002} {
		h := &fakeHost{id: id, n: n, disp: rmi.NewDispatcher()}
		n.hosts[id] = h
		err := h.disp.Attach(&gamerpc.GameStub{
			Player_Move: func(info rmi.CallInfo, pos, vel gamerpc.Vec2, tick uint32) error {
				got = append(got, move{id, info, pos, vel, tick})
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	const group net.HostID = 50000
	n.groups[group] = []net.HostID{1000, 1001, 1002}

	a := gamerpc.NewGameProxy(n.hosts[1000])
	pos, vel := gamerpc.Vec2{X: 1.5, Y: -2}, gamerpc.Vec2{X: 0.25, Y: 8}
	if err := a.Player_Move(1001, rmi.Unreliable.OnChannel(1), pos, vel, 77); err != nil {
		t.Fatal(err)
	}
	if err := a.Player_Move(group, rmi.Reliable, vel, pos, 78); err != nil {
		t.Fatal(err)
	}
	for _, id := range []net.HostID{1000, 1001, 1002} {
		n.hosts[id].drain(t)
	}
	at := time.Unix(9, 0)
	want := []move{
		{1001, rmi.CallInfo{From: 1000, Context: rmi.Unreliable.OnChannel(1), Received: at}, pos, vel, 77},
		{1001, rmi.CallInfo{From: 1000, Context: rmi.Reliable, Received: at}, vel, pos, 78},
		{1002, rmi.CallInfo{From: 1000, Context: rmi.Reliable, Received: at}, vel, pos, 78},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// TestEndToEndHost runs a server and a client net.Host over the virtual
// network: the client's Player_Move and Chat reach the server's stubs, and
// the server's reply reaches the client's, each with the right sender.
func TestEndToEndHost(t *testing.T) {
	vn := vnet.New(1)
	defer vn.Close()
	sconn, err := vn.Listen(netip.MustParseAddrPort("10.0.0.1:7777"))
	if err != nil {
		t.Fatal(err)
	}
	cconn, err := vn.Listen(netip.MustParseAddrPort("10.0.0.2:0"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.NewHost(sconn, net.Config{Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.NewHost(cconn, net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, sconn.LocalAddr()); err != nil {
		t.Fatal(err)
	}

	// Server side: a stub that answers every Chat with a Chat back.
	srvProxy := gamerpc.NewGameProxy(srv)
	var moves []move
	var chats []string
	sd := rmi.NewDispatcher()
	if err := sd.Attach(&gamerpc.GameStub{
		Player_Move: func(info rmi.CallInfo, pos, vel gamerpc.Vec2, tick uint32) error {
			moves = append(moves, move{net.ServerID, info, pos, vel, tick})
			return nil
		},
		Chat: func(info rmi.CallInfo, text string) error {
			chats = append(chats, text)
			return srvProxy.Chat(info.From, rmi.Reliable, "echo: "+text)
		},
	}); err != nil {
		t.Fatal(err)
	}
	// Client side.
	var replies []string
	var replyFrom net.HostID
	cd := rmi.NewDispatcher()
	if err := cd.Attach(&gamerpc.GameStub{Chat: func(info rmi.CallInfo, text string) error {
		replies, replyFrom = append(replies, text), info.From
		return nil
	}}); err != nil {
		t.Fatal(err)
	}

	p := gamerpc.NewGameProxy(cli)
	pos, vel := gamerpc.Vec2{X: 3, Y: 4}, gamerpc.Vec2{X: -1, Y: 0.5}
	if err := p.Player_Move(net.ServerID, rmi.Unreliable, pos, vel, 1234); err != nil {
		t.Fatal(err)
	}
	if err := p.Chat(net.ServerID, rmi.Reliable, "hello"); err != nil {
		t.Fatal(err)
	}

	// Drain the server until both calls arrived, then the client for the reply.
	for len(moves) < 1 || len(chats) < 1 {
		e, err := srv.Next(ctx)
		if err != nil {
			t.Fatalf("server: %v (moves %d chats %d)", err, len(moves), len(chats))
		}
		if _, err := sd.DispatchEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	for len(replies) < 1 {
		e, err := cli.Next(ctx)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		if _, err := cd.DispatchEvent(e); err != nil {
			t.Fatal(err)
		}
	}

	m := moves[0]
	if m.info.From != cli.ID() || m.info.Context != rmi.Unreliable || m.info.Relayed || m.info.Received.IsZero() {
		t.Errorf("move info = %+v, client is %v", m.info, cli.ID())
	}
	if m.pos != pos || m.vel != vel || m.tick != 1234 {
		t.Errorf("move = %+v", m)
	}
	if chats[0] != "hello" || replies[0] != "echo: hello" || replyFrom != net.ServerID {
		t.Errorf("chats %q replies %q from %v", chats, replies, replyFrom)
	}
}
