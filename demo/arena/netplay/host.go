package netplay

import (
	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
)

// inputQueue is a member's inputs waiting at the host: a small jitter
// buffer, so that inputs arriving in bursts are applied one per tick.
type inputQueue struct {
	q      []sim.Input
	last   uint32 // highest Seq queued or applied
	credit int    // inputs this member may still apply: one more per tick
}

// maxCredit bounds how far a member may catch up after a stall: a fifth of
// a second of inputs. Over time nobody applies more than one input per tick,
// however fast it sends them, so nobody walks faster than the others.
const maxCredit = 12

// maxQueued bounds a member's waiting inputs (half a second).
const maxQueued = 30

func (q *inputQueue) push(in sim.Input) {
	if in.Seq <= q.last {
		return
	}
	q.last = in.Seq
	if len(q.q) >= maxQueued {
		copy(q.q, q.q[1:])
		q.q = q.q[:len(q.q)-1]
	}
	q.q = append(q.q, in)
}

// take returns the inputs to apply this tick: one normally, two when a few
// are waiting, and all but a few when far behind (after a burst), so the
// queue stays short without jerking the player at every hiccup.
func (q *inputQueue) take(dst []sim.Input) []sim.Input {
	q.credit = min(q.credit+1, maxCredit)
	n := len(q.q)
	switch {
	case n == 0:
		return dst
	case n <= 3:
		n = 1
	case n <= 8:
		n = 2
	default:
		n -= 3
	}
	n = min(n, q.credit)
	q.credit -= n
	dst = append(dst, q.q[:n]...)
	q.q = append(q.q[:0], q.q[n:]...)
	return dst
}

func (s *Session) queueFor(id sim.PlayerID) *inputQueue {
	q := s.queues[id]
	if q == nil {
		q = &inputQueue{}
		if p := s.world.Player(id); p != nil {
			q.last = p.Ack
		}
		s.queues[id] = q
	}
	return q
}

// becomeHost makes this session the match's authority: from its latest
// snapshot when it has one (a host migration), else from a new world.
func (s *Session) becomeHost() {
	if s.haveLatest {
		st := s.latest.Clone()
		st.Bullets = append(st.Bullets[:0], s.bullets...)
		s.world = sim.NewWorldFrom(s.m, s.rules, st)
		// Carry on from what this player sees: its inputs the old host
		// never applied are applied now.
		if p := s.world.Player(sim.PlayerID(s.me)); p != nil && s.predOK {
			p.Pos, p.Aim, p.Ack = s.pred.Pos, s.pred.Aim, s.seq
		}
		s.log.Info("host: continuing the match", "tick", st.Tick, "players", len(st.Players))
	} else {
		s.world = sim.NewWorld(s.m, s.rules)
		s.log.Info("host: new match")
	}
	s.queues = map[sim.PlayerID]*inputQueue{}
	s.stepIn = map[sim.PlayerID][]sim.Input{}
	// Match the players to the group's members.
	present := map[sim.PlayerID]bool{}
	for _, m := range s.playerMembers() {
		present[sim.PlayerID(m)] = true
		if _, err := s.world.AddPlayer(sim.PlayerID(m)); err != nil {
			s.log.Warn("no room for a player", "player", m, "error", err)
		}
		s.queueFor(sim.PlayerID(m))
	}
	for _, p := range append([]sim.Player(nil), s.world.Players...) {
		if !present[p.ID] {
			s.world.RemovePlayer(p.ID)
		}
	}
	s.smooth = sim.Vec2{}
	s.waiting = s.waiting[:0]
	s.ticks = 0
}

// resignHost hands the authority over: this session becomes a member
// whose latest snapshot is its own world.
func (s *Session) resignHost() {
	st := s.world.Snapshot()
	s.bullets = append(s.bullets[:0], st.Bullets...)
	st.Bullets = nil
	s.latest, s.haveLatest = st, true
	s.latestTime = s.serverMs()
	s.bulletTime = s.latestTime
	s.ring = append(s.ring[:0], timedState{time: s.latestTime, st: st})
	if p := st.Player(sim.PlayerID(s.me)); p != nil {
		s.pred, s.predOK = *p, true
	}
	s.pending = s.pending[:0]
	s.world, s.queues = nil, nil
}

func (s *Session) hostTick(in sim.Input) {
	w := s.world
	clear(s.stepIn)
	for id, q := range s.queues {
		if id == sim.PlayerID(s.me) {
			continue
		}
		if ins := q.take(s.stepIn[id][:0]); len(ins) > 0 {
			s.stepIn[id] = ins
		}
	}
	s.stepIn[sim.PlayerID(s.me)] = append(s.stepIn[sim.PlayerID(s.me)][:0], in)
	s.evbuf = w.Step(s.stepIn, s.evbuf)
	if len(s.evbuf) > 0 {
		s.addEffects(s.evbuf...)
		// Members show events at the interpolated time, a snapshot or two
		// behind: sending them with the next snapshot costs nothing to see
		// and saves a reliable message (and its acknowledgement) per tick.
		for i := range s.evTicks {
			s.evTicks[i]++
		}
		s.pendingEv = append(s.pendingEv, s.evbuf...)
		for range s.evbuf {
			s.evTicks = append(s.evTicks, 0)
		}
	} else {
		for i := range s.evTicks {
			s.evTicks[i]++
		}
	}
	s.ticks++
	if s.ticks%s.cfg.SnapshotTicks == 0 {
		if s.others() {
			s.sendEvents()
			s.sendSnapshot()
		}
		s.pendingEv, s.evTicks = s.pendingEv[:0], s.evTicks[:0]
	}
}

// sendEvents multicasts the events since the last snapshot, each with its
// age in ticks.
func (s *Session) sendEvents() {
	if len(s.pendingEv) == 0 {
		return
	}
	s.wireEv = s.wireEv[:0]
	for i, e := range s.pendingEv {
		s.wireEv = proto.EncodeEvents(s.wireEv, uint8(min(s.evTicks[i], 255)), []sim.Event{e})
	}
	if err := s.arena.Host_Events(s.match, proto.EventCtx, s.world.Tick, s.wireEv); err != nil {
		s.log.Debug("events not sent", "error", err)
	}
}

func (s *Session) sendSnapshot() {
	now := s.serverMs()
	s.wire.Encode(&s.world.State, now)
	bullets := s.wire.Bullets
	apart := s.wire.Head.Flags&proto.BulletsApart != 0
	if apart {
		bullets = nil
	}
	if err := s.arena.Host_Snapshot(s.match, proto.SnapshotCtx, s.wire.Head, s.wire.Players, bullets, s.wire.Pickups); err != nil {
		s.log.Debug("snapshot not sent", "error", err)
	}
	if apart {
		if err := s.arena.Host_Bullets(s.match, proto.BulletsCtx, s.world.Tick, now, s.wire.Bullets); err != nil {
			s.log.Debug("bullets not sent", "error", err)
		}
	}
	s.counts.SnapshotsSent++
}

func (s *Session) onInput(info rmi.CallInfo, seq uint32, cmds []proto.InputCmd) error {
	if s.world == nil || len(cmds) > 16 {
		return nil // not the host (an input sent before the news), or junk
	}
	s.counts.Inputs++
	id := sim.PlayerID(info.From)
	if s.world.Player(id) == nil {
		return nil
	}
	q := s.queueFor(id)
	var buf [16]sim.Input
	for _, in := range proto.Inputs(buf[:0], seq, cmds) {
		q.push(in)
	}
	return nil
}

// hostChanged follows the server's choice of host.
func (s *Session) hostChanged(h net.HostID) {
	old := s.host
	s.host = h
	if h == old {
		return
	}
	s.counts.HostChanges++
	switch {
	case h == s.me && s.world == nil:
		s.becomeHost()
		if old != net.NoHost {
			s.notice(Network, "You are now the host: the match goes on from your last snapshot")
		}
	case h != s.me && s.world != nil:
		s.resignHost()
		s.notice(Network, "%s is now the host", s.PlayerName(h))
	case h == net.NoHost:
	default:
		if old != net.NoHost {
			s.notice(Network, "Host migration: %s is now the host", s.PlayerName(h))
		}
	}
}
