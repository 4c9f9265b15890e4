package netplay

import (
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

// View is what the player sees of the match at one moment, for drawing:
// its own player where its inputs took it, the others interpolated, the
// bullets where they are now.
type View struct {
	// InMatch is false outside a match (the rest is then empty).
	InMatch bool
	// Ready is false until the first snapshot (members) or the world
	// (host) is there.
	Ready bool
	Map   *sim.Map
	Me    sim.PlayerID
	Host  sim.PlayerID
	// IsHost: this session simulates the match.
	IsHost     bool
	Tick       uint32
	Round      uint16
	Phase      sim.Phase
	PhaseTicks uint32
	Players    []sim.Player // sorted by ID; positions as drawn
	Bullets    []sim.Bullet // positions as drawn
	Pickups    []uint16
}

// MeP returns the own player in v, or nil.
func (v *View) MeP() *sim.Player {
	for i := range v.Players {
		if v.Players[i].ID == v.Me {
			return &v.Players[i]
		}
	}
	return nil
}

// View fills v with the match as it should be drawn now, reusing v's
// slices.
func (s *Session) View(v *View) {
	*v = View{Players: v.Players[:0], Bullets: v.Bullets[:0], Pickups: v.Pickups[:0]}
	if s.match == net.NoHost {
		return
	}
	v.InMatch, v.Map, v.Me, v.Host = true, s.m, sim.PlayerID(s.me), sim.PlayerID(s.host)
	if s.world != nil {
		w := s.world
		v.Ready, v.IsHost = true, true
		v.Tick, v.Round, v.Phase, v.PhaseTicks = w.Tick, w.Round, w.Phase, w.PhaseTicks
		v.Players = append(v.Players, w.Players...)
		v.Bullets = append(v.Bullets, w.Bullets...)
		v.Pickups = append(v.Pickups, w.Pickups...)
		return
	}
	if !s.haveLatest || len(s.ring) == 0 {
		return
	}
	v.Ready = true
	l := &s.latest
	v.Tick, v.Round, v.Phase, v.PhaseTicks = l.Tick, l.Round, l.Phase, l.PhaseTicks
	v.Pickups = append(v.Pickups, l.Pickups...)

	now := s.serverNow()
	rt := now - float64(s.cfg.InterpDelay.Milliseconds())
	// The two snapshots around the render time.
	a, b := &s.ring[0], &s.ring[len(s.ring)-1]
	for i := len(s.ring) - 1; i >= 0; i-- {
		if float64(s.ring[i].time) <= rt {
			a = &s.ring[i]
			if i+1 < len(s.ring) {
				b = &s.ring[i+1]
			} else {
				b = a
			}
			break
		}
	}
	t := float32(0)
	if b.time != a.time {
		t = float32((rt - float64(a.time)) / float64(b.time-a.time))
		t = min(max(t, 0), 1)
	}
	for _, pb := range b.st.Players {
		p := pb
		if pa := a.st.Player(pb.ID); pa != nil && pa.Alive == pb.Alive && pa.Pos.Dist(pb.Pos) < 120 {
			p = *pa
			if t >= 0.5 { // discrete fields flip half way
				p = pb
			}
			p.Pos = pa.Pos.Lerp(pb.Pos, t)
			p.Aim = pa.Aim + uint16(int16(float32(int16(pb.Aim-pa.Aim))*t))
		} else if pa != nil && t < 1 {
			p = *pa // a respawn or death: show the old state until b
		}
		if pb.ID == v.Me {
			continue
		}
		v.Players = append(v.Players, p)
	}
	// The own player: predicted, with the latest health and score.
	if me := l.Player(v.Me); me != nil {
		p := *me
		if s.predOK {
			p.Pos = s.pred.Pos.Add(s.smooth)
			p.Aim = s.pred.Aim
		}
		v.Players = insertSorted(v.Players, p)
	}
	// Bullets fly straight: put each where it is at the render time (the
	// own player's bullets at the own player's time, ahead by the inputs
	// the host has not applied yet).
	for _, bl := range s.bullets {
		var ticks float32
		if bl.Owner == v.Me {
			ticks = float32(len(s.pending))
		} else {
			ticks = float32((rt - float64(s.bulletTime)) * sim.TickRate / 1000)
		}
		age := float32(sim.BulletLife - int(bl.Life))
		if ticks < -age || ticks > float32(bl.Life) {
			continue // not fired yet at that time, or gone
		}
		to := bl.Pos.Add(bl.Step().Scale(ticks))
		if ticks > 0 {
			if _, hit := s.m.SegmentHitsWall(bl.Pos, to); hit {
				continue
			}
		}
		bl.Pos = to
		v.Bullets = append(v.Bullets, bl)
	}
}

func insertSorted(ps []sim.Player, p sim.Player) []sim.Player {
	i := len(ps)
	for i > 0 && ps[i-1].ID > p.ID {
		i--
	}
	ps = append(ps, sim.Player{})
	copy(ps[i+1:], ps[i:])
	ps[i] = p
	return ps
}

// World returns the world as a bot playing this session sees it: the
// host's own world, or the latest snapshot with the own player where its
// inputs took it. The result is valid until the next Tick; nil before the
// first snapshot.
func (s *Session) World() *sim.World {
	if s.world != nil {
		return s.world
	}
	if !s.haveLatest || s.m == nil {
		return nil
	}
	sc := &s.scratch
	sc.Map, sc.Rules = s.m, s.rules
	players := append(sc.Players[:0], s.latest.Players...)
	sc.State = s.latest
	sc.Players = players
	sc.Bullets = s.bullets
	if p := sc.Player(sim.PlayerID(s.me)); p != nil && s.predOK {
		p.Pos, p.Aim = s.pred.Pos, s.pred.Aim
	}
	return sc
}
