package sim

import (
	"errors"
	"slices"
)

// Tuning. Times are in ticks, distances in world units.
const (
	// TickRate is the number of simulation steps per second.
	TickRate = 60
	// TickSeconds is the length of one step in seconds.
	TickSeconds float32 = 1.0 / TickRate

	// MaxPlayers bounds the players in a match.
	MaxPlayers = 16
	// PlayerRadius is a player's collision radius.
	PlayerRadius = 16
	// PlayerSpeed is how far a player walks in one second.
	PlayerSpeed = 250
	// MaxHP is a player's health when spawned.
	MaxHP = 100

	// BulletSpeed is how far a bullet flies in one second.
	BulletSpeed = 1000
	// BulletLife is how many ticks a bullet flies before it fades.
	BulletLife = 36
	// BulletRadius widens a bullet for hits on players.
	BulletRadius = 3
	// BulletDamage is the health a hit takes.
	BulletDamage = 20
	// FireTicks is the time between two shots of one player.
	FireTicks = 14
	// MaxBullets bounds the bullets in flight; a shot is refused beyond it
	// (which keeps a snapshot within one datagram).
	MaxBullets = 40

	// RespawnTicks is how long a dead player waits.
	RespawnTicks = 150
	// ProtectTicks is how long a spawned player cannot be hurt (firing
	// ends it early).
	ProtectTicks = 90

	// HealthPackHP is the health a pack gives.
	HealthPackHP = 40
	// HealthPackTicks is how long a taken pack takes to come back.
	HealthPackTicks = 600
	// PickupRadius is how close a player's centre must come to a pack.
	PickupRadius = 28

	// DefaultRoundTicks is the length of a round (3 minutes).
	DefaultRoundTicks = 3 * 60 * TickRate
	// DefaultIntermissionTicks is the pause between rounds (8 seconds).
	DefaultIntermissionTicks = 8 * TickRate
)

// PlayerID names a player: the HostID of the client that plays it.
type PlayerID uint32

// Phase is the part of a round the match is in.
type Phase uint8

// Phases.
const (
	// Playing: players fight; the round ends when its time runs out.
	Playing Phase = iota
	// Intermission: the scoreboard shows the round's result; players may
	// walk but not shoot.
	Intermission
)

// Rules are a match's settings, chosen when it is created and fixed for
// its life (they travel in the match options, not in snapshots).
type Rules struct {
	// RoundTicks is the length of a round; zero means DefaultRoundTicks.
	RoundTicks uint32
	// IntermissionTicks is the pause between rounds; zero means
	// DefaultIntermissionTicks.
	IntermissionTicks uint32
}

func (r Rules) withDefaults() Rules {
	if r.RoundTicks == 0 {
		r.RoundTicks = DefaultRoundTicks
	}
	if r.IntermissionTicks == 0 {
		r.IntermissionTicks = DefaultIntermissionTicks
	}
	return r
}

// Player is one player's state.
type Player struct {
	ID   PlayerID
	Slot uint8 // 0..MaxPlayers-1: colour and scoreboard order of joining
	Pos  Vec2
	Aim  uint16
	HP   uint8
	// Alive is false while the player waits to respawn.
	Alive bool
	// Timer counts down the ticks to respawn (dead) or of spawn protection
	// left (alive).
	Timer    uint16
	Cooldown uint8 // ticks until the player may fire again
	Kills    uint16
	Deaths   uint16
	// Ack is the Seq of the last input of this player the world applied.
	Ack uint32
}

// Protected reports whether the player is alive and cannot be hurt yet.
func (p *Player) Protected() bool { return p.Alive && p.Timer > 0 }

// Bullet is a shot in flight.
type Bullet struct {
	ID    uint16
	Owner PlayerID
	Slot  uint8 // the owner's slot, for its colour
	Pos   Vec2
	Aim   uint16
	Life  uint8 // ticks left
}

// Step returns how far b moves in one tick.
func (b *Bullet) Step() Vec2 { return AimDir(b.Aim).Scale(BulletSpeed * TickSeconds) }

// State is everything that changes in a match. A snapshot is a copy of it.
type State struct {
	Tick       uint32
	Round      uint16
	Phase      Phase
	PhaseTicks uint32 // ticks left in the phase
	NextBullet uint16
	Players    []Player // sorted by ID
	Bullets    []Bullet
	Pickups    []uint16 // per Map.Pickups: ticks until the pack is back (0: there)
}

// Clone returns a deep copy of s.
func (s *State) Clone() State {
	c := *s
	c.Players = slices.Clone(s.Players)
	c.Bullets = slices.Clone(s.Bullets)
	c.Pickups = slices.Clone(s.Pickups)
	return c
}

// Player returns the player with that ID, or nil.
func (s *State) Player(id PlayerID) *Player {
	i, ok := slices.BinarySearchFunc(s.Players, id, func(p Player, id PlayerID) int { return cmpID(p.ID, id) })
	if !ok {
		return nil
	}
	return &s.Players[i]
}

func cmpID(a, b PlayerID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Leader returns the player with most kills (then fewest deaths, then
// lowest ID), or nil when there is nobody.
func (s *State) Leader() *Player {
	var best *Player
	for i := range s.Players {
		p := &s.Players[i]
		if best == nil || p.Kills > best.Kills || p.Kills == best.Kills && p.Deaths < best.Deaths {
			best = p
		}
	}
	return best
}

// Ranking returns the players' IDs best first (as Leader orders them).
func (s *State) Ranking() []PlayerID {
	ps := slices.Clone(s.Players)
	slices.SortStableFunc(ps, func(a, b Player) int {
		if a.Kills != b.Kills {
			return int(b.Kills) - int(a.Kills)
		}
		return int(a.Deaths) - int(b.Deaths)
	})
	ids := make([]PlayerID, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventHit: Player was hit by Other's bullet at Pos for Value damage
	// (0 when spawn protection absorbed it).
	EventHit EventKind = iota + 1
	// EventKill: Player was killed by Other at Pos.
	EventKill
	// EventSpawn: Player (re)spawned at Pos.
	EventSpawn
	// EventPickup: Player took the health pack Value at Pos.
	EventPickup
	// EventRoundEnd: round Value ended; Player leads it (NoPlayer if
	// nobody played).
	EventRoundEnd
	// EventRoundStart: round Value started.
	EventRoundStart
)

// Event is something that happened during a Step, for effects, sounds and
// the kill feed.
type Event struct {
	Kind   EventKind
	Player PlayerID
	Other  PlayerID
	Pos    Vec2
	Value  int32
}

// NoPlayer is the zero PlayerID.
const NoPlayer PlayerID = 0

// World is a match being simulated: the static map and rules, and the
// State that Step advances.
type World struct {
	Map   *Map
	Rules Rules
	State
}

// ErrFull is returned by AddPlayer when the match has MaxPlayers players.
var ErrFull = errors.New("sim: match is full")

// NewWorld returns a world at the start of round 1 with no players.
func NewWorld(m *Map, rules Rules) *World {
	rules = rules.withDefaults()
	w := &World{Map: m, Rules: rules}
	w.Round = 1
	w.Phase = Playing
	w.PhaseTicks = rules.RoundTicks
	w.Pickups = make([]uint16, len(m.Pickups))
	return w
}

// NewWorldFrom returns a world that continues from snapshot s (a copy is
// taken): how a new host carries on the match.
func NewWorldFrom(m *Map, rules Rules, s State) *World {
	w := &World{Map: m, Rules: rules.withDefaults(), State: s.Clone()}
	if len(w.Pickups) != len(m.Pickups) {
		w.Pickups = make([]uint16, len(m.Pickups))
	}
	slices.SortFunc(w.Players, func(a, b Player) int { return cmpID(a.ID, b.ID) })
	return w
}

// Snapshot returns a copy of the world's state.
func (w *World) Snapshot() State { return w.State.Clone() }

// AddPlayer adds a player with the lowest free slot and spawns it. Adding a
// player that is already there returns it unchanged.
func (w *World) AddPlayer(id PlayerID) (*Player, error) {
	if p := w.Player(id); p != nil {
		return p, nil
	}
	if len(w.Players) >= MaxPlayers {
		return nil, ErrFull
	}
	var used [MaxPlayers]bool
	for _, p := range w.Players {
		if int(p.Slot) < MaxPlayers {
			used[p.Slot] = true
		}
	}
	slot := uint8(0)
	for used[slot] {
		slot++
	}
	i, _ := slices.BinarySearchFunc(w.Players, id, func(p Player, id PlayerID) int { return cmpID(p.ID, id) })
	w.Players = slices.Insert(w.Players, i, Player{ID: id, Slot: slot})
	p := &w.Players[i]
	w.spawn(p, nil)
	return p, nil
}

// RemovePlayer removes a player and its bullets.
func (w *World) RemovePlayer(id PlayerID) {
	w.Players = slices.DeleteFunc(w.Players, func(p Player) bool { return p.ID == id })
	w.Bullets = slices.DeleteFunc(w.Bullets, func(b Bullet) bool { return b.Owner == id })
}

// MovePlayer applies one input's aim and movement to p (alive or not: a
// dead player only turns). It is the part of a step a client predicts for
// its own player.
func MovePlayer(m *Map, p *Player, in Input) {
	p.Aim = in.Aim
	if !p.Alive {
		return
	}
	d := in.Buttons.Move()
	if d == (Vec2{}) {
		return
	}
	p.Pos = snapV(m.MoveCircle(p.Pos, PlayerRadius, d.Scale(PlayerSpeed*TickSeconds)))
}

// Step advances the world by one tick. inputs holds, per player, the
// inputs to apply this tick in order (usually one; none leaves the player
// standing; inputs at or below the player's Ack are skipped). It returns
// what happened, in order (the slice is reused by the next Step).
func (w *World) Step(inputs map[PlayerID][]Input, events []Event) []Event {
	events = events[:0]
	w.Tick++
	for i := range w.Players {
		p := &w.Players[i]
		if p.Cooldown > 0 {
			p.Cooldown--
		}
		for _, in := range inputs[p.ID] {
			if in.Seq != 0 && in.Seq <= p.Ack {
				continue
			}
			if in.Seq != 0 {
				p.Ack = in.Seq
			}
			MovePlayer(w.Map, p, in)
			if in.Buttons.Has(Fire) {
				w.fire(p)
			}
		}
		switch {
		case !p.Alive:
			if p.Timer > 0 {
				p.Timer--
			}
			if p.Timer == 0 && w.Phase == Playing {
				w.spawn(p, &events)
			}
		case p.Timer > 0:
			p.Timer--
		}
	}
	events = w.stepBullets(events)
	events = w.stepPickups(events)
	if w.PhaseTicks > 0 {
		w.PhaseTicks--
	}
	if w.PhaseTicks == 0 {
		if w.Phase == Playing {
			events = w.endRound(events)
		} else {
			events = w.startRound(events)
		}
	}
	return events
}

func (w *World) fire(p *Player) {
	if !p.Alive || p.Cooldown > 0 || w.Phase != Playing || len(w.Bullets) >= MaxBullets {
		return
	}
	w.NextBullet++
	w.Bullets = append(w.Bullets, Bullet{ID: w.NextBullet, Owner: p.ID, Slot: p.Slot, Pos: p.Pos, Aim: p.Aim, Life: BulletLife})
	p.Cooldown = FireTicks
	p.Timer = 0 // shooting ends spawn protection
}

func (w *World) stepBullets(events []Event) []Event {
	keep := w.Bullets[:0]
	for _, b := range w.Bullets {
		a := b.Pos
		end := a.Add(b.Step())
		tw, hitWall := w.Map.SegmentHitsWall(a, end)
		var victim *Player
		tp := float32(2)
		for i := range w.Players {
			p := &w.Players[i]
			if !p.Alive || p.ID == b.Owner {
				continue
			}
			if t, ok := segCircle(a, end, p.Pos, PlayerRadius+BulletRadius); ok && t < tp {
				victim, tp = p, t
			}
		}
		switch {
		case victim != nil && (!hitWall || tp <= tw):
			at := snapV(a.Lerp(end, tp))
			events = w.hit(victim, b.Owner, at, events)
		case hitWall:
			// The bullet stops at the wall (clients see it vanish there).
		default:
			b.Pos = snapV(end)
			b.Life--
			if b.Life > 0 {
				keep = append(keep, b)
			}
		}
	}
	clear(w.Bullets[len(keep):])
	w.Bullets = keep
	return events
}

func (w *World) hit(p *Player, by PlayerID, at Vec2, events []Event) []Event {
	if p.Protected() {
		return append(events, Event{Kind: EventHit, Player: p.ID, Other: by, Pos: at})
	}
	dmg := uint8(min(BulletDamage, int(p.HP)))
	p.HP -= dmg
	events = append(events, Event{Kind: EventHit, Player: p.ID, Other: by, Pos: at, Value: int32(dmg)})
	if p.HP > 0 {
		return events
	}
	p.Alive = false
	p.Timer = RespawnTicks
	p.Deaths++
	if k := w.Player(by); k != nil && k.ID != p.ID {
		k.Kills++
	}
	return append(events, Event{Kind: EventKill, Player: p.ID, Other: by, Pos: p.Pos})
}

// spawn revives p at the spawn point farthest from the other living
// players.
func (w *World) spawn(p *Player, events *[]Event) {
	spawns := w.Map.Spawns
	best, bestD := Vec2{w.Map.W / 2, w.Map.H / 2}, float32(-1)
	if len(spawns) > 0 {
		// Start the search at a point that depends on who and when, so
		// that equally good points take turns.
		start := int(mix(uint64(w.Tick)<<32|uint64(p.ID)) % uint64(len(spawns)))
		for k := range spawns {
			s := spawns[(start+k)%len(spawns)]
			d := float32(1e9)
			for i := range w.Players {
				o := &w.Players[i]
				if o.ID != p.ID && o.Alive {
					d = min(d, o.Pos.Dist(s))
				}
			}
			if d > bestD {
				best, bestD = s, d
			}
		}
	}
	p.Pos = best
	p.HP = MaxHP
	p.Alive = true
	p.Timer = ProtectTicks
	p.Cooldown = 0
	if events != nil {
		*events = append(*events, Event{Kind: EventSpawn, Player: p.ID, Pos: best})
	}
}

func (w *World) stepPickups(events []Event) []Event {
	for i := range w.Pickups {
		if w.Pickups[i] > 0 {
			w.Pickups[i]--
			continue
		}
		at := w.Map.Pickups[i]
		for j := range w.Players {
			p := &w.Players[j]
			if !p.Alive || p.HP >= MaxHP || p.Pos.Dist(at) > PickupRadius+PlayerRadius {
				continue
			}
			p.HP = uint8(min(MaxHP, int(p.HP)+HealthPackHP))
			w.Pickups[i] = HealthPackTicks
			events = append(events, Event{Kind: EventPickup, Player: p.ID, Pos: at, Value: int32(i)})
			break
		}
	}
	return events
}

func (w *World) endRound(events []Event) []Event {
	leader := NoPlayer
	if l := w.Leader(); l != nil {
		leader = l.ID
	}
	w.Phase = Intermission
	w.PhaseTicks = w.Rules.IntermissionTicks
	clear(w.Bullets)
	w.Bullets = w.Bullets[:0]
	return append(events, Event{Kind: EventRoundEnd, Player: leader, Value: int32(w.Round)})
}

func (w *World) startRound(events []Event) []Event {
	w.Round++
	w.Phase = Playing
	w.PhaseTicks = w.Rules.RoundTicks
	clear(w.Pickups)
	events = append(events, Event{Kind: EventRoundStart, Value: int32(w.Round)})
	for i := range w.Players {
		p := &w.Players[i]
		p.Kills, p.Deaths = 0, 0
		p.Alive = false // respawn everyone, away from each other
	}
	for i := range w.Players {
		w.spawn(&w.Players[i], &events)
	}
	return events
}

// mix is splitmix64's finaliser: a cheap, well-spread hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
