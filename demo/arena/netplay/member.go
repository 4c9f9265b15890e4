package netplay

import (
	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
)

// Bounds of the member's buffers.
const (
	maxPending = 240 // own inputs not yet acknowledged (4 s)
	ringSize   = 32  // snapshots kept for interpolation (1.6 s at 20 Hz)
)

func (s *Session) memberTick(in sim.Input) {
	if len(s.pending) >= maxPending {
		copy(s.pending, s.pending[1:])
		s.pending = s.pending[:len(s.pending)-1]
	}
	s.pending = append(s.pending, in)
	if s.predOK {
		sim.MovePlayer(s.m, &s.pred, in)
	}
	s.smooth = s.smooth.Scale(0.85)
	if len(s.cmds) >= proto.InputRedundancy {
		copy(s.cmds, s.cmds[1:])
		s.cmds = s.cmds[:len(s.cmds)-1]
	}
	s.cmds = append(s.cmds, proto.InputCmd{Buttons: uint8(in.Buttons), Aim: in.Aim})
	if s.host != net.NoHost && s.host != s.me && in.Seq%uint32(s.cfg.InputTicks) == 0 {
		if err := s.arena.Player_Input(s.host, proto.InputCtx, in.Seq, s.cmds); err != nil {
			s.log.Trace("input not sent", "error", err)
		}
	}
	s.releaseEvents()
}

func (s *Session) fromHost(info rmi.CallInfo) bool {
	return s.world == nil && s.match != net.NoHost && info.From == s.host
}

func (s *Session) onSnapshot(info rmi.CallInfo, head proto.SnapHeader, players []proto.PlayerState, bullets []proto.BulletState, pickups []uint16) error {
	if !s.fromHost(info) {
		return nil // an old host's last words, or not in a match
	}
	st, err := proto.Decode(head, players, pickups)
	if err != nil {
		return err
	}
	if s.haveLatest && int32(head.Time-s.latestTime) < 0 {
		return nil // older than what we have (a new host whose clock lags)
	}
	s.counts.Snapshots++
	s.latest, s.latestTime, s.haveLatest = st, head.Time, true
	if len(s.ring) >= ringSize {
		copy(s.ring, s.ring[1:])
		s.ring = s.ring[:len(s.ring)-1]
	}
	s.ring = append(s.ring, timedState{time: head.Time, st: st})
	if head.Flags&proto.BulletsApart == 0 {
		s.bullets = proto.DecodeBullets(s.bullets[:0], st.Players, bullets)
		s.bulletTime = head.Time
	}
	s.reconcile()
	return nil
}

// reconcile puts the own player where the host says it was after the last
// input it applied, then replays the inputs the host has not seen yet.
func (s *Session) reconcile() {
	me := s.latest.Player(sim.PlayerID(s.me))
	if me == nil {
		s.predOK = false
		return
	}
	i := 0
	for i < len(s.pending) && s.pending[i].Seq <= me.Ack {
		i++
	}
	s.pending = append(s.pending[:0], s.pending[i:]...)
	p := *me
	for _, in := range s.pending {
		sim.MovePlayer(s.m, &p, in)
	}
	if s.predOK && p.Alive && s.pred.Alive {
		if d := s.pred.Pos.Sub(p.Pos); d.Len2() > 0.01 {
			s.counts.Corrections++
			if d.Len() < 96 {
				s.smooth = s.smooth.Add(d) // glide there instead of jumping
			} else {
				s.smooth = sim.Vec2{}
			}
		}
	} else {
		s.smooth = sim.Vec2{}
	}
	s.pred, s.predOK = p, true
}

func (s *Session) onBullets(info rmi.CallInfo, tick, time uint32, bullets []proto.BulletState) error {
	if !s.fromHost(info) || !s.haveLatest {
		return nil
	}
	if int32(time-s.bulletTime) < 0 && s.bullets != nil {
		return nil
	}
	s.bullets = proto.DecodeBullets(s.bullets[:0], s.latest.Players, bullets)
	s.bulletTime = time
	return nil
}

func (s *Session) onEvents(info rmi.CallInfo, tick uint32, events []proto.GameEvent) error {
	if !s.fromHost(info) {
		return nil
	}
	// Show each event when the interpolated view reaches its tick.
	at := s.serverMs()
	if s.haveLatest {
		at = s.latestTime + uint32(int32(tick-s.latest.Tick)*1000/sim.TickRate)
	}
	for _, e := range events {
		if len(s.waiting) >= 512 {
			break
		}
		s.waiting = append(s.waiting, timedEvent{at: at - uint32(e.Age)*1000/sim.TickRate, ev: proto.DecodeEvent(e)})
	}
	return nil
}

// releaseEvents moves host events whose time has come to the effects.
func (s *Session) releaseEvents() {
	if len(s.waiting) == 0 {
		return
	}
	rt := uint32(s.serverNow() - float64(s.cfg.InterpDelay.Milliseconds()))
	n := 0
	for _, w := range s.waiting {
		if int32(rt-w.at) >= 0 {
			s.addEffects(w.ev)
			n++
		} else {
			break
		}
	}
	s.waiting = append(s.waiting[:0], s.waiting[n:]...)
}
