package proto

import (
	"errors"
	"math"

	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
)

// Delivery of each call.
var (
	// InputCtx carries Player_Input: unreliable, on its own channel, so a
	// newer input makes an older one that arrives late obsolete.
	InputCtx = rmi.Unreliable.OnChannel(1)
	// SnapshotCtx carries Host_Snapshot.
	SnapshotCtx = rmi.Unreliable.OnChannel(2)
	// BulletsCtx carries Host_Bullets.
	BulletsCtx = rmi.Unreliable.OnChannel(3)
	// EventCtx carries Player_Hello and Host_Events.
	EventCtx = rmi.Reliable
	// ChatCtx carries Player_Chat.
	ChatCtx = rmi.Reliable
)

// GameName and Version identify the arena's matches in MatchOptions.
const (
	GameName = "skein-arena"
	Version  = 1
)

// InputRedundancy is how many inputs each Player_Input carries (the newest
// and the ones before it): with an input message every second tick, the
// last three messages' worth, so two lost in a row cost nothing.
const InputRedundancy = 6

func q16(x float32) int16 {
	v := math.Round(float64(x) * sim.Snap)
	return int16(max(math.MinInt16, min(math.MaxInt16, v)))
}

func unq16(v int16) float32 { return float32(v) / sim.Snap }

// Size bounds, in bytes, of the encoded parts of a Host_Snapshot call: at
// most 40 for the call ID, the header and the array headers, 36 per player,
// 17 per bullet and 3 per health pack (TestSnapshotFits checks them).
const (
	snapFixed     = 40
	snapPerPlayer = 36
	snapPerBullet = 17
	snapPerPickup = 3
)

// snapBudget is what a snapshot may take: the largest unreliable message
// engine/sync sends to a group.
const snapBudget = sync.MaxUnreliable

// BulletsFit reports whether a snapshot of s can carry its bullets and
// still fit one datagram.
func BulletsFit(s *sim.State) bool {
	return snapFixed+snapPerPlayer*len(s.Players)+snapPerBullet*len(s.Bullets)+snapPerPickup*len(s.Pickups) <= snapBudget
}

// Snapshot holds the wire form of a sim.State, with buffers reused from one
// snapshot to the next.
type Snapshot struct {
	Head    SnapHeader
	Players []PlayerState
	Bullets []BulletState
	Pickups []uint16
}

// Encode fills w from state s, stamped with the server clock in ms.
func (w *Snapshot) Encode(s *sim.State, timeMs uint32) {
	w.Head = SnapHeader{Tick: s.Tick, Time: timeMs, Round: s.Round, Phase: uint8(s.Phase), PhaseTicks: s.PhaseTicks, NextBullet: s.NextBullet}
	if !BulletsFit(s) {
		w.Head.Flags |= BulletsApart
	}
	w.Players = w.Players[:0]
	for _, p := range s.Players {
		var flags uint8
		if p.Alive {
			flags |= 1
		}
		w.Players = append(w.Players, PlayerState{
			ID: uint32(p.ID), Slot: p.Slot, X: q16(p.Pos.X), Y: q16(p.Pos.Y), Aim: p.Aim, HP: p.HP, Flags: flags,
			Timer: p.Timer, Cooldown: p.Cooldown, Kills: p.Kills, Deaths: p.Deaths, Ack: p.Ack,
		})
	}
	w.Bullets = w.Bullets[:0]
	for _, b := range s.Bullets {
		w.Bullets = append(w.Bullets, BulletState{ID: b.ID, Slot: b.Slot, X: q16(b.Pos.X), Y: q16(b.Pos.Y), Aim: b.Aim, Life: b.Life})
	}
	w.Pickups = append(w.Pickups[:0], s.Pickups...)
}

// BulletsApart is the SnapHeader flag saying the bullets travel in
// Host_Bullets.
const BulletsApart = 1

// ErrBadSnapshot means a snapshot does not describe a valid match.
var ErrBadSnapshot = errors.New("proto: bad snapshot")

// Decode returns the sim.State a snapshot describes, without bullets (see
// DecodeBullets). It checks what the simulation relies on (player count,
// order, slots, health).
func Decode(head SnapHeader, players []PlayerState, pickups []uint16) (sim.State, error) {
	s := sim.State{Tick: head.Tick, Round: head.Round, Phase: sim.Phase(head.Phase), PhaseTicks: head.PhaseTicks, NextBullet: head.NextBullet}
	if len(players) > sim.MaxPlayers || s.Phase > sim.Intermission || len(pickups) > 64 {
		return s, ErrBadSnapshot
	}
	var used [sim.MaxPlayers]bool
	s.Players = make([]sim.Player, 0, len(players))
	var prev uint32 // the previous player's ID: IDs are nonzero and increase
	for _, p := range players {
		if int(p.Slot) >= sim.MaxPlayers || used[p.Slot] || p.ID <= prev || p.HP > sim.MaxHP {
			return s, ErrBadSnapshot
		}
		prev = p.ID
		used[p.Slot] = true
		s.Players = append(s.Players, sim.Player{
			ID: sim.PlayerID(p.ID), Slot: p.Slot, Pos: sim.V(unq16(p.X), unq16(p.Y)), Aim: p.Aim, HP: p.HP,
			Alive: p.Flags&1 != 0, Timer: p.Timer, Cooldown: p.Cooldown, Kills: p.Kills, Deaths: p.Deaths, Ack: p.Ack,
		})
	}
	s.Pickups = append([]uint16(nil), pickups...)
	return s, nil
}

// DecodeBullets appends to dst the bullets of a Host_Bullets call, their
// owners found by slot among players; bullets of a player who is not
// there (who left) are skipped, and at most sim.MaxBullets are taken.
func DecodeBullets(dst []sim.Bullet, players []sim.Player, bullets []BulletState) []sim.Bullet {
	var owner [sim.MaxPlayers]sim.PlayerID
	for _, p := range players {
		if int(p.Slot) < sim.MaxPlayers {
			owner[p.Slot] = p.ID
		}
	}
	for _, b := range bullets {
		if len(dst) >= sim.MaxBullets {
			break
		}
		if int(b.Slot) >= sim.MaxPlayers || owner[b.Slot] == sim.NoPlayer {
			continue
		}
		dst = append(dst, sim.Bullet{ID: b.ID, Owner: owner[b.Slot], Slot: b.Slot, Pos: sim.V(unq16(b.X), unq16(b.Y)), Aim: b.Aim, Life: b.Life})
	}
	return dst
}

// EncodeEvents appends the wire form of events that happened age ticks
// before the call's tick to dst.
func EncodeEvents(dst []GameEvent, age uint8, events []sim.Event) []GameEvent {
	for _, e := range events {
		dst = append(dst, GameEvent{Age: age, Kind: uint8(e.Kind), Player: uint32(e.Player), Other: uint32(e.Other), X: q16(e.Pos.X), Y: q16(e.Pos.Y), Value: e.Value})
	}
	return dst
}

// DecodeEvent returns the sim.Event of its wire form.
func DecodeEvent(e GameEvent) sim.Event {
	return sim.Event{Kind: sim.EventKind(e.Kind), Player: sim.PlayerID(e.Player), Other: sim.PlayerID(e.Other), Pos: sim.V(unq16(e.X), unq16(e.Y)), Value: e.Value}
}

// Inputs returns the sim inputs of a Player_Input call: cmds end with
// sequence number seq.
func Inputs(dst []sim.Input, seq uint32, cmds []InputCmd) []sim.Input {
	first := seq - uint32(len(cmds)) + 1
	for i, c := range cmds {
		s := first + uint32(i)
		if s == 0 || s > seq { // wrapped: a malformed call
			continue
		}
		dst = append(dst, sim.Input{Seq: s, Buttons: sim.Buttons(c.Buttons), Aim: c.Aim})
	}
	return dst
}

// EncodeOptions returns the bytes of o for the match's custom field.
func EncodeOptions(o MatchOptions) []byte {
	e := rmi.GetEncoder()
	defer rmi.PutEncoder(e)
	o.EncodeRMI(e)
	return append([]byte(nil), e.Bytes()...)
}

// ErrNotArena means a match's options are not the arena's (another game,
// or an incompatible version).
var ErrNotArena = errors.New("proto: not an arena match of this version")

// DecodeOptions reads a match's custom field.
func DecodeOptions(b []byte) (MatchOptions, error) {
	var o MatchOptions
	d := rmi.NewDecoder(b)
	o.DecodeRMI(&d)
	if err := d.Finish(); err != nil {
		return o, errors.Join(ErrNotArena, err)
	}
	if o.Game != GameName || o.Version != Version {
		return o, ErrNotArena
	}
	return o, nil
}

// Rules returns the simulation rules that o describes.
func (o MatchOptions) Rules() sim.Rules {
	return sim.Rules{RoundTicks: uint32(o.RoundSeconds) * sim.TickRate}
}
