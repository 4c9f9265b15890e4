package netplay

import (
	"context"
	"testing"
	"time"

	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/lobby"
)

// arenaSeeds are real calls of a match, encoded by the generated proxies as
// a host and a member send them (a snapshot and the events of a running
// world included), lobby answers (which only the server may send), and a
// few broken frames.
func arenaSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	capture := rmi.SenderFunc(func(_ net.HostID, _ net.Delivery, b []byte) error {
		out = append(out, append([]byte(nil), b...))
		return nil
	})
	p := proto.NewArenaP2PProxy(capture)
	lp := lobby.NewLobbyReplyProxy(capture)
	w := sim.NewWorld(sim.MapByName(DefaultOptions().Map), DefaultOptions().Rules())
	for id := sim.PlayerID(1000); id < 1003; id++ {
		if _, err := w.AddPlayer(id); err != nil {
			tb.Fatal(err)
		}
	}
	var evs []sim.Event
	for range 60 {
		evs = w.Step(nil, evs)
	}
	var snap proto.Snapshot
	snap.Encode(&w.State, 1234)
	wireEv := proto.EncodeEvents(nil, 0, evs)
	to, ctx := net.HostID(5000), rmi.Reliable
	for _, err := range []error{
		p.Player_Hello(to, ctx, "Ana", proto.Version),
		p.Player_Input(to, proto.InputCtx, 42, []proto.InputCmd{{Buttons: 1, Aim: 100}, {Buttons: 3, Aim: 200}}),
		p.Host_Snapshot(to, proto.SnapshotCtx, snap.Head, snap.Players, snap.Bullets, snap.Pickups),
		p.Host_Bullets(to, proto.BulletsCtx, w.Tick, 1234, snap.Bullets),
		p.Host_Events(to, proto.EventCtx, w.Tick, wireEv),
		p.Player_Chat(to, proto.ChatCtx, "gg"),
		lp.ChatLine(to, ctx, 1001, "Bo", "hi"),
	} {
		if err != nil {
			tb.Fatal(err)
		}
	}
	// Responses to lobby requests (sequence numbers 1 to 3), which only
	// the server's may answer.
	response := func(seq uint32, results func(e *rmi.Encoder)) []byte {
		var e rmi.Encoder
		e.Write([]byte{0, 0, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq), byte(rmi.StatusOK)})
		results(&e)
		return append([]byte(nil), e.Bytes()...)
	}
	out = append(out,
		response(1, func(e *rmi.Encoder) { e.EncodeArrayLen(2); lobby.ResultOK.EncodeRMI(e); e.EncodeUint32(5001) }),
		response(2, func(e *rmi.Encoder) { e.EncodeArrayLen(1); lobby.ResultOK.EncodeRMI(e) }),
		response(3, func(e *rmi.Encoder) {
			e.EncodeArrayLen(4)
			lobby.ResultOK.EncodeRMI(e)
			e.EncodeArrayLen(1)
			m := lobby.MatchInfo{ID: 5002, Name: "x", Players: 1, MaxPlayers: 2}
			m.EncodeRMI(e)
			e.EncodeUint32(0)
			e.EncodeUint32(1)
		}),
		[]byte{0, 0, 0, 0, 0, 1, byte(rmi.StatusRateLimited)})
	return append(out, nil, []byte{0x07}, []byte{0x07, 0xd0}, []byte{0x07, 0xd2, 0x94, 0xce})
}

// FuzzPeerMessage hands arbitrary bytes, as a match message from the other
// player, to the real event handler of a match's host (from its member) or
// of the member (from its host), then ticks it and takes its view, as the
// game does every frame. Neither panics, and both stay in the match with
// the same host: nothing a peer sends can take a player out of its match
// or make it host.
func FuzzPeerMessage(f *testing.F) {
	for _, s := range arenaSeeds(f) {
		f.Add(s, true, false)
		f.Add(s, false, true)
	}
	local, err := StartLocal("127.0.0.1:0", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { local.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, err := Dial(ctx, local.Addr(), Config{Name: "Host"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { host.Close() })
	member, err := Dial(ctx, local.Addr(), Config{Name: "Member"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { member.Close() })
	host.CreateMatch("fuzz", 4, DefaultOptions())
	for host.InMatch() == net.NoHost || host.world == nil {
		tickUntil(f, ctx, host)
	}
	match := host.InMatch()
	member.JoinMatch(match)
	for member.InMatch() != match || member.host != host.ID() || host.world.Player(sim.PlayerID(member.ID())) == nil {
		tickUntil(f, ctx, host, member)
	}
	f.Fuzz(func(t *testing.T, frame []byte, toHost, reliable bool) {
		target, from := member, host.ID()
		if toHost {
			target, from = host, member.ID()
		}
		d := net.Unreliable.OnChannel(2)
		if reliable {
			d = net.Reliable
		}
		target.handle(sync.Event{Kind: sync.EventMessage, Peer: from, Group: match, Delivery: d, Data: append([]byte(nil), frame...), Received: time.Now()})
		target.Tick(sim.Input{})
		var v View
		target.View(&v)
		target.Effects()
		target.Notices()
		if host.InMatch() != match || member.InMatch() != match || host.world == nil || member.world != nil || member.host != host.ID() {
			t.Fatalf("%x: host %v in %v (world %v), member %v in %v (host %v, world %v): a peer's message moved them",
				frame, host.ID(), host.InMatch(), host.world != nil, member.ID(), member.InMatch(), member.host, member.world != nil)
		}
	})
}

// tickUntil ticks the sessions once and fails when ctx has ended.
func tickUntil(tb testing.TB, ctx context.Context, ss ...*Session) {
	tb.Helper()
	if ctx.Err() != nil {
		tb.Fatal("the match did not start")
	}
	for _, s := range ss {
		s.Tick(sim.Input{})
		if e := s.LobbyError(); e != "" {
			tb.Fatal(e)
		}
	}
	time.Sleep(5 * time.Millisecond)
}
