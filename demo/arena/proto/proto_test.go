package proto

import (
	"reflect"
	"testing"

	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
)

// capture is an rmi.Sender that keeps the last frame.
type capture struct{ last []byte }

func (c *capture) Send(_ net.HostID, _ net.Delivery, data []byte) error {
	c.last = append(c.last[:0], data...)
	return nil
}

func TestSnapshotRoundTrip(t *testing.T) {
	w := sim.NewWorld(sim.DefaultMap(), sim.Rules{})
	var bots []*sim.Bot
	for i := range 12 {
		id := sim.PlayerID(1000 + 3*i)
		w.AddPlayer(id)
		bots = append(bots, sim.NewBot(id, 5))
	}
	in := map[sim.PlayerID][]sim.Input{}
	var seq uint32
	var snap Snapshot
	c := &capture{}
	proxy := NewArenaP2PProxy(c)
	var got sim.State
	var bulletsApart bool
	d := rmi.NewDispatcher()
	d.Attach(&ArenaP2PStub{
		Host_Snapshot: func(_ rmi.CallInfo, h SnapHeader, ps []PlayerState, bs []BulletState, pk []uint16) error {
			if h.Time != 123456 {
				t.Errorf("time %d", h.Time)
			}
			var err error
			got, err = Decode(h, ps, pk)
			bulletsApart = h.Flags&BulletsApart != 0
			got.Bullets = DecodeBullets(nil, got.Players, bs)
			return err
		},
		Host_Bullets: func(_ rmi.CallInfo, tick, time uint32, bs []BulletState) error {
			got.Bullets = DecodeBullets(got.Bullets[:0], got.Players, bs)
			return nil
		},
	})
	sawBullets := false
	for tick := range 1200 {
		for _, b := range bots {
			seq++
			i := b.Think(w)
			i.Seq = seq
			in[b.ID] = []sim.Input{i}
		}
		w.Step(in, nil)
		if tick%50 != 0 {
			continue
		}
		// Through the generated code, as a member receives it.
		snap.Encode(&w.State, 123456)
		bullets := snap.Bullets
		if snap.Head.Flags&BulletsApart != 0 {
			bullets = nil
		}
		if err := proxy.Host_Snapshot(7, SnapshotCtx, snap.Head, snap.Players, bullets, snap.Pickups); err != nil {
			t.Fatal(err)
		}
		if err := d.Dispatch(rmi.CallInfo{From: 7}, c.last); err != nil {
			t.Fatal(err)
		}
		if bulletsApart {
			proxy.Host_Bullets(7, BulletsCtx, w.Tick, 123456, snap.Bullets)
			if err := d.Dispatch(rmi.CallInfo{From: 7}, c.last); err != nil {
				t.Fatal(err)
			}
		}
		sawBullets = sawBullets || len(got.Bullets) > 0
		if len(got.Bullets) == 0 {
			got.Bullets = w.Bullets[:0:0] // nil and empty compare alike here
		}
		ws := w.State.Clone()
		if len(ws.Bullets) == 0 {
			ws.Bullets = got.Bullets
		}
		if !reflect.DeepEqual(got, ws) {
			t.Fatalf("tick %d: snapshot changed on the wire:\n got %+v\nwant %+v", w.Tick, got, ws)
		}
	}
	if !sawBullets {
		t.Error("never a bullet in flight: a poor test")
	}
}

// worst returns a state of p players and b bullets with the largest
// values each field can take.
func worst(p, b int) sim.State {
	s := sim.State{Tick: 1 << 31, Round: 65535, Phase: sim.Intermission, PhaseTicks: 1 << 31, NextBullet: 65535}
	for i := range p {
		s.Players = append(s.Players, sim.Player{ID: sim.PlayerID(1<<30 + i), Slot: uint8(i), Pos: sim.V(-1919.9375, -1279.9375),
			Aim: 65535, HP: 100, Alive: true, Timer: 65535, Cooldown: 255, Kills: 65535, Deaths: 65535, Ack: 1 << 31})
	}
	for i := range b {
		s.Bullets = append(s.Bullets, sim.Bullet{ID: uint16(65535 - i), Owner: s.Players[i%p].ID, Slot: uint8(i % p), Pos: sim.V(-1919.9375, -1279.9375), Aim: 65535, Life: 255})
	}
	s.Pickups = make([]uint16, 8)
	for i := range s.Pickups {
		s.Pickups[i] = 65535
	}
	return s
}

// TestSnapshotFits checks the size bounds behind BulletsFit, and that
// every snapshot the host sends fits one unreliable datagram sent to a
// group.
func TestSnapshotFits(t *testing.T) {
	c := &capture{}
	proxy := NewArenaP2PProxy(c)
	for _, p := range []int{1, 2, 8, 16} {
		for _, b := range []int{0, 1, 10, 20, 25, 31, 40} {
			s := worst(p, b)
			var snap Snapshot
			snap.Encode(&s, 1<<31)
			proxy.Host_Snapshot(7, SnapshotCtx, snap.Head, snap.Players, snap.Bullets, snap.Pickups)
			bound := snapFixed + snapPerPlayer*p + snapPerBullet*b + snapPerPickup*len(s.Pickups)
			if len(c.last) > bound {
				t.Errorf("%d players, %d bullets: %d bytes, over the bound %d", p, b, len(c.last), bound)
			}
			if BulletsFit(&s) != (snap.Head.Flags&BulletsApart == 0) {
				t.Errorf("%d players, %d bullets: flags %b disagree with BulletsFit", p, b, snap.Head.Flags)
			}
			if !BulletsFit(&s) {
				proxy.Host_Snapshot(7, SnapshotCtx, snap.Head, snap.Players, nil, snap.Pickups)
			}
			if n := len(c.last); n > sync.MaxUnreliable {
				t.Errorf("%d players, %d bullets: snapshot of %d bytes, over sync.MaxUnreliable (%d)", p, b, n, sync.MaxUnreliable)
			}
			proxy.Host_Bullets(7, BulletsCtx, 1<<31, 1<<31, snap.Bullets)
			if n := len(c.last); n > sync.MaxUnreliable {
				t.Errorf("%d bullets: %d bytes, over sync.MaxUnreliable (%d)", b, n, sync.MaxUnreliable)
			}
		}
	}
	s := worst(16, 40)
	t.Logf("16 players and 40 bullets: bullets apart %v; 16 players and 10 bullets: apart %v", !BulletsFit(&s), !BulletsFit(ptr(worst(16, 10))))
}

func ptr[T any](v T) *T { return &v }

func TestDecodeRejects(t *testing.T) {
	ok := []PlayerState{{ID: 1000, Slot: 0, HP: 100}, {ID: 1001, Slot: 1}}
	for name, ps := range map[string][]PlayerState{
		"slot twice":  {{ID: 1000, Slot: 3}, {ID: 1001, Slot: 3}},
		"slot range":  {{ID: 1000, Slot: 16}},
		"unsorted":    {{ID: 1001, Slot: 0}, {ID: 1000, Slot: 1}},
		"HP too high": {{ID: 1000, HP: 101}},
		"no ID":       {{ID: 0}},
	} {
		if _, err := Decode(SnapHeader{}, ps, nil); err != ErrBadSnapshot {
			t.Errorf("%s: %v, want ErrBadSnapshot", name, err)
		}
	}
	s, err := Decode(SnapHeader{}, ok, nil)
	if err != nil {
		t.Fatal(err)
	}
	bs := DecodeBullets(nil, s.Players, []BulletState{{ID: 1, Slot: 1}, {ID: 2, Slot: 9}, {ID: 3, Slot: 200}})
	if len(bs) != 1 || bs[0].Owner != 1001 {
		t.Errorf("bullets of a player who left should be dropped: %+v", bs)
	}
}

func TestInputs(t *testing.T) {
	cmds := []InputCmd{{Buttons: 1}, {Buttons: 2}, {Buttons: 3, Aim: 9}}
	got := Inputs(nil, 12, cmds)
	want := []sim.Input{{Seq: 10, Buttons: 1}, {Seq: 11, Buttons: 2}, {Seq: 12, Buttons: 3, Aim: 9}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	if got := Inputs(nil, 1, cmds); len(got) != 1 || got[0].Seq != 1 {
		t.Errorf("sequence numbers at or below zero must be skipped: %+v", got)
	}
}

func TestOptions(t *testing.T) {
	o := MatchOptions{Game: GameName, Version: Version, Map: "Foundry", RoundSeconds: 120}
	got, err := DecodeOptions(EncodeOptions(o))
	if err != nil || got != o {
		t.Fatalf("got %+v, %v", got, err)
	}
	if got.Rules().RoundTicks != 120*sim.TickRate {
		t.Errorf("rules %+v", got.Rules())
	}
	for _, b := range [][]byte{nil, []byte("hello"), EncodeOptions(MatchOptions{Game: "chess", Version: Version})} {
		if _, err := DecodeOptions(b); err == nil {
			t.Errorf("DecodeOptions(%q) accepted", b)
		}
	}
}
