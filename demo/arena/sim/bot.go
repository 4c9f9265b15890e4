package sim

import "math"

// Bot is a computer player's brain: each tick, Think looks at the world
// as the bot sees it and returns the bot's input. Bots see only what a
// player could (no target through walls), take a moment to react to a new
// enemy, aim with an error that shrinks as they track it, lead moving
// targets, keep their distance while strafing, walk the map by path finding
// when nobody is in sight, and go for health packs when hurt.
//
// A Bot is deterministic: the same seed and the same worlds give the same
// inputs.
type Bot struct {
	// ID is the player the bot controls.
	ID PlayerID
	// Skill from 0 (sluggish, inaccurate) to 1 (sharp); NewBot sets 0.5.
	Skill float32

	rng  uint64
	tick uint32

	target    PlayerID
	visible   bool
	lastSeen  Vec2
	lostTicks int
	prevPos   Vec2 // target position last tick, for its velocity
	tvel      Vec2 // target velocity per tick (smoothed)
	reaction  int
	aim       uint16
	aimErr    float64

	strafe      float32
	strafeTicks int

	path   []Vec2
	goal   Vec2
	repath int

	lastPos Vec2
	stuck   int
	unstick int
	escape  Vec2
}

// NewBot returns a bot for player id; seed varies its decisions.
func NewBot(id PlayerID, seed uint64) *Bot {
	return &Bot{ID: id, Skill: 0.5, rng: mix(seed ^ uint64(id)<<20), strafe: 1}
}

func (b *Bot) rand() uint64 {
	b.rng = mix(b.rng)
	return b.rng
}

// randf returns a float in [0, 1).
func (b *Bot) randf() float32 { return float32(b.rand()>>40) / (1 << 24) }

// Think returns the bot's input for the next tick (Seq left zero for the
// caller to number). w is the world as the bot knows it: the host's world,
// or on a client the last snapshot with the bot's own predicted position.
func (b *Bot) Think(w *World) Input {
	me := w.Player(b.ID)
	if me == nil {
		return Input{}
	}
	b.tick++
	if !me.Alive {
		b.target, b.visible, b.path = NoPlayer, false, nil
		return Input{Aim: b.aim}
	}
	if (b.tick+uint32(b.ID))%6 == 0 {
		b.perceive(w, me)
	}
	var tgt *Player
	if b.target != NoPlayer {
		if tgt = w.Player(b.target); tgt == nil || !tgt.Alive {
			b.target, b.visible, tgt = NoPlayer, false, nil
		}
	}
	if tgt != nil {
		v := tgt.Pos.Sub(b.prevPos)
		if v.Len() > PlayerSpeed*TickSeconds*3 { // respawned or first sight
			v = Vec2{}
		}
		b.tvel = b.tvel.Lerp(v, 0.3)
		b.prevPos = tgt.Pos
	}

	var move Vec2
	var buttons Buttons
	wantAim := b.aim
	switch {
	case tgt != nil && b.visible:
		b.lastSeen = tgt.Pos
		b.lostTicks = 0
		b.path = nil
		dist := me.Pos.Dist(tgt.Pos)
		flight := dist / (BulletSpeed * TickSeconds)
		lead := tgt.Pos.Add(b.tvel.Scale(flight * (0.5 + 0.4*b.Skill)))
		wantAim = AimFromAngle(AimAngle(AimTo(me.Pos, lead)) + b.aimErr)
		b.aimErr *= 0.95 - 0.03*float64(b.Skill)
		if b.reaction > 0 {
			b.reaction--
		} else if math.Abs(AimDiff(b.aim, wantAim)) < 0.12 && w.Phase == Playing && !tgt.Protected() {
			buttons |= Fire
		}
		// Keep a fighting distance, strafing across the line of fire.
		to := tgt.Pos.Sub(me.Pos).Norm()
		side := Vec2{-to.Y, to.X}.Scale(b.strafe)
		switch {
		case me.HP < 35 && b.packNear(w, me) != nil:
			move = b.packNear(w, me).Sub(me.Pos).Norm().Add(side.Scale(0.5))
		case dist > 430:
			move = to.Add(side.Scale(0.6))
		case dist < 200:
			move = to.Scale(-1).Add(side.Scale(0.6))
		default:
			move = side
		}
		b.strafeTicks--
		if b.strafeTicks <= 0 || w.Map.Blocked(me.Pos.Add(move.Norm().Scale(PlayerRadius+8)), PlayerRadius) {
			b.strafe = -b.strafe
			b.strafeTicks = 30 + int(b.rand()%60)
		}
	default:
		b.lostTicks++
		move = b.navigate(w, me)
		if tgt != nil && b.lostTicks < 90 {
			wantAim = AimTo(me.Pos, b.lastSeen)
		} else if move != (Vec2{}) {
			wantAim = AimTo(me.Pos, me.Pos.Add(move))
		}
	}

	// Turn towards the wanted aim at a limited rate.
	maxTurn := 0.12 + 0.1*float64(b.Skill)
	d := AimDiff(b.aim, wantAim)
	d = max(-maxTurn, min(maxTurn, d))
	b.aim = AimFromAngle(AimAngle(b.aim) + d)

	// Unstick: if walking gets nowhere, walk somewhere else for a moment.
	if b.unstick > 0 {
		b.unstick--
		move = b.escape
	} else if move != (Vec2{}) && me.Pos.Dist(b.lastPos) < 0.5 {
		b.stuck++
		if b.stuck > 20 {
			b.stuck = 0
			b.unstick = 20
			b.escape = AimDir(uint16(b.rand()))
			b.path = nil
		}
	} else {
		b.stuck = 0
	}
	b.lastPos = me.Pos
	return Input{Buttons: buttons | ButtonsToward(move), Aim: b.aim}
}

// perceive picks the target: the nearest visible enemy (the current one if
// it is about as near), preferring those that can be hurt.
func (b *Bot) perceive(w *World, me *Player) {
	const sight = 800
	var best *Player
	var bestScore float32
	for i := range w.Players {
		p := &w.Players[i]
		if p.ID == me.ID || !p.Alive {
			continue
		}
		d := me.Pos.Dist(p.Pos)
		if d > sight || !w.Map.LineOfSight(me.Pos, p.Pos) {
			continue
		}
		score := d
		if p.ID == b.target {
			score *= 0.7
		}
		if p.Protected() {
			score += 400
		}
		if best == nil || score < bestScore {
			best, bestScore = p, score
		}
	}
	if best == nil {
		b.visible = false
		return
	}
	if best.ID != b.target || !b.visible {
		// A new target (or one seen again): react, then aim off at first.
		b.reaction = int(8 + (1-b.Skill)*14 + b.randf()*10)
		b.aimErr = float64(b.randf()*2-1) * (0.15 + 0.2*float64(1-b.Skill))
		b.prevPos = best.Pos
		b.tvel = Vec2{}
	}
	b.target = best.ID
	b.visible = true
}

// packNear returns the nearest health pack that is there, within reach.
func (b *Bot) packNear(w *World, me *Player) *Vec2 {
	var best *Vec2
	bestD := float32(700)
	for i := range w.Map.Pickups {
		if i < len(w.Pickups) && w.Pickups[i] == 0 {
			if d := me.Pos.Dist(w.Map.Pickups[i]); d < bestD {
				best, bestD = &w.Map.Pickups[i], d
			}
		}
	}
	return best
}

// navigate walks towards a goal: where the target was last seen, a health
// pack when hurt, or a random open spot; and returns the direction.
func (b *Bot) navigate(w *World, me *Player) Vec2 {
	b.repath--
	if len(b.path) == 0 || b.repath <= 0 {
		switch {
		case b.target != NoPlayer && b.lostTicks < 240:
			b.goal = b.lastSeen
		case me.HP < 70 && b.packNear(w, me) != nil:
			b.goal = *b.packNear(w, me)
		default:
			if len(b.path) == 0 {
				b.goal = w.Map.RandomOpenPoint(b.rand())
			}
		}
		b.path = w.Map.Path(me.Pos, b.goal)
		b.repath = 60
		if len(b.path) == 0 {
			b.goal = w.Map.RandomOpenPoint(b.rand())
			b.target = NoPlayer
			return Vec2{}
		}
	}
	// Skip waypoints that can be reached straight (string pulling).
	for len(b.path) > 1 && w.Map.ClearPath(me.Pos, b.path[1], PlayerRadius+2) {
		b.path = b.path[1:]
	}
	next := b.path[0]
	if me.Pos.Dist(next) < 12 {
		b.path = b.path[1:]
		if len(b.path) == 0 {
			return Vec2{}
		}
		next = b.path[0]
	}
	return next.Sub(me.Pos).Norm()
}
