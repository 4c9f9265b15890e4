package game

import (
	"fmt"
	"image/color"
	"math"

	"github.com/hajimehoshi/ebiten/v2"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/demo/arena/sim"
)

// camera maps world units to screen pixels: (x, y) is the world point at
// the centre of a w×h screen.
type camera struct{ x, y, scale, w, h float64 }

func (c *camera) toScreen(p sim.Vec2) (float64, float64) {
	return (float64(p.X)-c.x)*c.scale + math.Round(c.w/2), (float64(p.Y)-c.y)*c.scale + math.Round(c.h/2)
}

func (c *camera) toWorld(sx, sy float64) sim.Vec2 {
	return sim.V(float32((sx-math.Round(c.w/2))/c.scale+c.x), float32((sy-math.Round(c.h/2))/c.scale+c.y))
}

// margin is the border of wall blocks drawn around the arena.
const margin = 64

// clamp keeps the view inside the arena and its border.
func (c *camera) clamp(m *sim.Map) {
	hw, hh := c.w/2/c.scale, c.h/2/c.scale
	fit := func(v, lo, hi, half float64) float64 {
		if hi-lo < 2*half {
			return (lo + hi) / 2
		}
		return math.Min(math.Max(v, lo+half), hi-half)
	}
	c.x = fit(c.x, -margin, float64(m.W)+margin, hw)
	c.y = fit(c.y, -margin, float64(m.H)+margin, hh)
}

// viewOfWorld fills v from a local world (the menu's demo match).
func viewOfWorld(v *netplay.View, w *sim.World) {
	*v = netplay.View{InMatch: true, Ready: true, Map: w.Map, IsHost: true, Tick: w.Tick, Round: w.Round, Phase: w.Phase, PhaseTicks: w.PhaseTicks,
		Players: append(v.Players[:0], w.Players...), Bullets: append(v.Bullets[:0], w.Bullets...), Pickups: append(v.Pickups[:0], w.Pickups...)}
}

// worldRenderer draws a match: the baked map, players, bullets, health
// packs and the particles of hits, kills and shots.
type worldRenderer struct {
	res    *res
	snd    *sounds
	m      *sim.Map
	bg     *ebiten.Image
	parts  []particle
	floats []floater
	seen   map[uint16]seenBullet
	now    map[uint16]seenBullet
	flash  map[sim.PlayerID]int // frame of the last hit
	frame  int
	me     sim.PlayerID
	listen sim.Vec2 // where the sounds are heard from
	shake  float64
}

type seenBullet struct {
	pos  sim.Vec2
	aim  uint16
	slot uint8
	life uint8
}

type particle struct {
	x, y, vx, vy float64
	life, max    float64
	size, grow   float64
	drag         float64
	c            color.RGBA
	img          *ebiten.Image
	rot, spin    float64
}

type floater struct {
	x, y  float64
	text  string
	c     color.RGBA
	life  float64
	big   bool
	world bool
}

const maxParticles = 900

func newWorldRenderer(r *res, m *sim.Map, snd *sounds) *worldRenderer {
	return &worldRenderer{res: r, snd: snd, m: m, seen: map[uint16]seenBullet{}, now: map[uint16]seenBullet{}, flash: map[sim.PlayerID]int{}}
}

// bake draws the floor, the walls and the border once.
func (wr *worldRenderer) bake() {
	m := wr.m
	W, H := int(m.W)+2*margin, int(m.H)+2*margin
	bg := ebiten.NewImage(W, H)
	bg.Fill(color.RGBA{10, 12, 17, 255})
	for y := 0; y < int(m.H); y += 128 {
		for x := 0; x < int(m.W); x += 128 {
			op := &ebiten.DrawImageOptions{}
			op.GeoM.Translate(float64(x+margin), float64(y+margin))
			bg.DrawImage(wr.res.floor, op)
		}
	}
	// A darker band along the arena's edge.
	for i := range 24 {
		a := uint8(90 - i*90/24)
		c := color.RGBA{0, 0, 0, a}
		fillRect(bg, rect{float64(margin + i), float64(margin + i), float64(int(m.W) - 2*i), 1}, c)
		fillRect(bg, rect{float64(margin + i), float64(margin + int(m.H) - 1 - i), float64(int(m.W) - 2*i), 1}, c)
		fillRect(bg, rect{float64(margin + i), float64(margin + i), 1, float64(int(m.H) - 2*i)}, c)
		fillRect(bg, rect{float64(margin + int(m.W) - 1 - i), float64(margin + i), 1, float64(int(m.H) - 2*i)}, c)
	}
	walls := append([]sim.Rect(nil), m.Walls...)
	// The border: a ring of blocks around the arena.
	walls = append(walls, sim.R(-margin, -margin, m.W+2*margin, margin), sim.R(-margin, m.H, m.W+2*margin, margin),
		sim.R(-margin, 0, margin, m.H), sim.R(m.W, 0, margin, m.H))
	// Shadows first, then the blocks.
	for _, w := range m.Walls {
		for d := 1; d <= 14; d++ {
			fillRect(bg, rect{float64(w.Min.X) + margin + float64(d), float64(w.Min.Y) + margin + float64(d)*1.3, float64(w.W()), float64(w.H())}, color.RGBA{0, 0, 0, 14})
		}
	}
	for i, w := range walls {
		for y := w.Min.Y; y < w.Max.Y; y += sim.Cell {
			for x := w.Min.X; x < w.Max.X; x += sim.Cell {
				op := &ebiten.DrawImageOptions{}
				op.GeoM.Translate(float64(x)+margin, float64(y)+margin)
				if i >= len(m.Walls) {
					op.ColorScale.Scale(0.55, 0.6, 0.7, 1) // the border is darker
				}
				bg.DrawImage(wr.res.wall, op)
			}
		}
	}
	wr.bg = bg
}

func (wr *worldRenderer) add(p particle) {
	if len(wr.parts) >= maxParticles {
		return
	}
	if p.img == nil {
		p.img = wr.res.glow
	}
	p.max = p.life
	wr.parts = append(wr.parts, p)
}

// burst throws n particles from (x, y).
func (wr *worldRenderer) burst(x, y float64, n int, c color.RGBA, speed, life, size float64, dir, spread float64) {
	for i := range n {
		k := float64(wr.frame*31+i*17) * 0.618
		a := dir + (math.Mod(k, 1)-0.5)*spread
		v := speed * (0.4 + 0.6*math.Mod(k*7.3, 1))
		wr.add(particle{x: x, y: y, vx: math.Cos(a) * v, vy: math.Sin(a) * v, life: life * (0.6 + 0.4*math.Mod(k*3.1, 1)), size: size, drag: 0.9, c: c})
	}
}

// playAt plays a sound at world position p, quieter with distance.
func (wr *worldRenderer) playAt(name string, p sim.Vec2, vol float64) {
	if wr.snd == nil {
		return
	}
	d := float64(p.Dist(wr.listen))
	wr.snd.play(name, vol*math.Max(0, 1-d/1400))
}

// effect shows one match event.
func (wr *worldRenderer) effect(e sim.Event, v *netplay.View) {
	x, y := float64(e.Pos.X), float64(e.Pos.Y)
	switch e.Kind {
	case sim.EventHit:
		c := colText
		if p := findPlayer(v, e.Player); p != nil {
			c = slotColor(p.Slot)
		}
		dir := 0.0
		if a := findPlayer(v, e.Other); a != nil {
			dir = math.Atan2(y-float64(a.Pos.Y), x-float64(a.Pos.X))
		}
		if e.Value == 0 { // absorbed by spawn protection
			wr.burst(x, y, 6, color.RGBA{200, 230, 255, 255}, 120, 0.25, 0.35, dir+math.Pi, 2.5)
			return
		}
		wr.burst(x, y, 10, c, 260, 0.35, 0.3, dir, 1.2)
		wr.burst(x, y, 4, color.RGBA{255, 255, 255, 255}, 160, 0.2, 0.25, dir, 1.6)
		wr.flash[e.Player] = wr.frame
		wr.floats = append(wr.floats, floater{x: x, y: y - 20, text: fmt.Sprint(-int(e.Value)), c: c, life: 0.8, world: true})
		wr.playAt("hit", e.Pos, 0.5)
		if e.Player == wr.me {
			wr.shake = math.Max(wr.shake, 5)
		}
	case sim.EventKill:
		c := colText
		if p := findPlayer(v, e.Player); p != nil {
			c = slotColor(p.Slot)
		}
		wr.burst(x, y, 36, c, 380, 0.8, 0.45, 0, 2*math.Pi)
		wr.burst(x, y, 14, color.RGBA{255, 240, 200, 255}, 200, 0.5, 0.6, 0, 2*math.Pi)
		wr.add(particle{x: x, y: y, life: 0.35, size: 3.2, grow: 6, c: c})
		wr.add(particle{x: x, y: y, life: 0.45, size: 0.5, grow: 2.6, c: color.RGBA{255, 255, 255, 255}, img: wr.res.ring})
		wr.playAt("kill", e.Pos, 0.8)
		if e.Player == wr.me {
			wr.shake = 14
		}
	case sim.EventSpawn:
		c := colText
		if p := findPlayer(v, e.Player); p != nil {
			c = slotColor(p.Slot)
		}
		wr.add(particle{x: x, y: y, life: 0.6, size: 2.2, grow: -3, c: c, img: wr.res.ring})
		wr.burst(x, y, 12, c, 90, 0.6, 0.3, 0, 2*math.Pi)
		if e.Player == wr.me {
			wr.playAt("spawn", e.Pos, 0.6)
		}
	case sim.EventPickup:
		wr.burst(x, y, 18, colGood, 140, 0.6, 0.35, -math.Pi/2, 2*math.Pi)
		wr.floats = append(wr.floats, floater{x: x, y: y - 24, text: fmt.Sprintf("+%d", sim.HealthPackHP), c: colGood, life: 1, world: true})
		wr.playAt("pickup", e.Pos, 0.7)
	case sim.EventRoundEnd, sim.EventRoundStart:
		// Nothing in the world: the HUD's banner and clock show rounds.
	}
}

func findPlayer(v *netplay.View, id sim.PlayerID) *sim.Player {
	for i := range v.Players {
		if v.Players[i].ID == id {
			return &v.Players[i]
		}
	}
	return nil
}

// update advances the particles and notices bullets that appeared (a shot)
// or vanished (an impact).
func (wr *worldRenderer) update(v *netplay.View, g *Game, sound bool) {
	wr.frame++
	clear(wr.now)
	for _, b := range v.Bullets {
		wr.now[b.ID] = seenBullet{pos: b.Pos, aim: b.Aim, slot: b.Slot, life: b.Life}
		if _, ok := wr.seen[b.ID]; !ok && b.Life > sim.BulletLife-12 {
			// A new shot: muzzle flash at the gun.
			d := sim.AimDir(b.Aim)
			var from sim.Vec2
			if p := findPlayer(v, b.Owner); p != nil {
				from = p.Pos.Add(d.Scale(sim.PlayerRadius + 12))
			} else {
				from = b.Pos
			}
			c := slotColor(b.Slot)
			wr.add(particle{x: float64(from.X), y: float64(from.Y), life: 0.08, size: 1.1, c: c})
			wr.burst(float64(from.X), float64(from.Y), 3, color.RGBA{255, 250, 220, 255}, 220, 0.12, 0.18, sim.AimAngle(b.Aim), 0.7)
			if sound {
				vol := 0.25
				if b.Owner == wr.me {
					vol = 0.4
				}
				wr.playAt("shoot", from, vol)
			}
		}
	}
	for id, b := range wr.seen {
		if _, ok := wr.now[id]; !ok && b.life > 2 {
			// It hit something: sparks where it was, a little further on.
			p := b.pos.Add(sim.AimDir(b.aim).Scale(8))
			wr.burst(float64(p.X), float64(p.Y), 5, slotColor(b.slot), 150, 0.25, 0.22, sim.AimAngle(b.aim)+math.Pi, 2.2)
		}
	}
	wr.seen, wr.now = wr.now, wr.seen

	const dt = 1.0 / sim.TickRate
	keep := wr.parts[:0]
	for _, p := range wr.parts {
		p.life -= dt
		if p.life <= 0 {
			continue
		}
		p.x += p.vx * dt
		p.y += p.vy * dt
		p.vx *= p.drag
		p.vy *= p.drag
		p.size += p.grow * dt
		p.rot += p.spin * dt
		keep = append(keep, p)
	}
	wr.parts = keep
	fk := wr.floats[:0]
	for _, f := range wr.floats {
		f.life -= dt
		f.y -= 30 * dt
		if f.life > 0 {
			fk = append(fk, f)
		}
	}
	wr.floats = fk
	wr.shake *= 0.85
}

// draw draws the world as seen by cam.
func (wr *worldRenderer) draw(dst *ebiten.Image, v *netplay.View, cam *camera, g *Game) {
	if wr.bg == nil {
		wr.bake()
	}
	c := *cam
	if wr.shake > 0.5 {
		c.x += math.Sin(float64(wr.frame)*1.7) * wr.shake / c.scale
		c.y += math.Cos(float64(wr.frame)*2.3) * wr.shake / c.scale
	}
	s := c.scale
	filter := ebiten.FilterLinear
	// Keep the view on whole pixels; at zoom 1 the map then needs no
	// filtering, which halves its cost in software GL.
	c.x = math.Round(c.x*s) / s
	c.y = math.Round(c.y*s) / s
	bgFilter := filter
	if math.Abs(s-1) < 1e-3 {
		bgFilter = ebiten.FilterNearest
	}

	// The map.
	op := &ebiten.DrawImageOptions{Filter: bgFilter, Blend: ebiten.BlendCopy} // opaque: no need to read what is under
	op.GeoM.Translate(-margin, -margin)
	op.GeoM.Translate(-c.x, -c.y)
	op.GeoM.Scale(s, s)
	op.GeoM.Translate(math.Round(c.w/2), math.Round(c.h/2))
	dst.DrawImage(wr.bg, op)

	// Health packs.
	for i, at := range wr.m.Pickups {
		x, y := c.toScreen(at)
		up := i < len(v.Pickups) && v.Pickups[i] == 0
		bob := math.Sin(float64(wr.frame)/20+float64(i)) * 3
		op := &ebiten.DrawImageOptions{Filter: filter}
		op.GeoM.Translate(-24, -24)
		if up {
			op.GeoM.Scale(s, s)
			op.GeoM.Translate(x, y+bob*s)
		} else {
			op.GeoM.Scale(s*0.7, s*0.7)
			op.GeoM.Translate(x, y)
			op.ColorScale.Scale(0.25, 0.25, 0.25, 0.35)
		}
		dst.DrawImage(wr.res.health, op)
	}

	// Shadows, then bodies.
	for i := range v.Players {
		p := &v.Players[i]
		if !p.Alive {
			continue
		}
		x, y := c.toScreen(p.Pos)
		op := &ebiten.DrawImageOptions{Filter: filter}
		op.GeoM.Translate(-32, -32)
		op.GeoM.Scale(s*0.95, s*0.95)
		op.GeoM.Translate(x+4*s, y+6*s)
		dst.DrawImage(wr.res.shadow, op)
	}
	for i := range v.Players {
		p := &v.Players[i]
		if !p.Alive {
			continue
		}
		x, y := c.toScreen(p.Pos)
		col := slotColor(p.Slot)
		op := &ebiten.DrawImageOptions{Filter: filter}
		op.GeoM.Translate(-32, -32)
		op.GeoM.Rotate(sim.AimAngle(p.Aim))
		op.GeoM.Scale(s, s)
		op.GeoM.Translate(x, y)
		op.ColorScale = scaleOf(col, 1)
		if p.Protected() && (wr.frame/4)%2 == 0 {
			op.ColorScale.ScaleAlpha(0.6)
		}
		dst.DrawImage(wr.res.body, op)
		op.ColorScale = ebiten.ColorScale{}
		dst.DrawImage(wr.res.detail, op)
		if f, ok := wr.flash[p.ID]; ok && wr.frame-f < 6 {
			op.ColorScale.Scale(1, 1, 1, 0.7*float32(6-(wr.frame-f))/6)
			op.Blend = ebiten.BlendLighter
			dst.DrawImage(wr.res.body, op)
		}
	}

	// Light: bullets, protection rings, particles (additive).
	for _, b := range v.Bullets {
		x, y := c.toScreen(b.Pos)
		col := slotColor(b.Slot)
		op := &ebiten.DrawImageOptions{Filter: filter, Blend: ebiten.BlendLighter}
		op.GeoM.Translate(-16, -16)
		op.GeoM.Scale(s*1.1, s*1.1)
		op.GeoM.Translate(x, y)
		op.ColorScale = scaleOf(col, 0.35)
		dst.DrawImage(wr.res.glow, op)
		op = &ebiten.DrawImageOptions{Filter: filter, Blend: ebiten.BlendLighter}
		op.GeoM.Translate(-26, -6)
		op.GeoM.Rotate(sim.AimAngle(b.Aim))
		op.GeoM.Scale(s, s)
		op.GeoM.Translate(x, y)
		op.ColorScale = scaleOf(col, 1)
		dst.DrawImage(wr.res.bullet, op)
	}
	for i := range v.Players {
		p := &v.Players[i]
		if !p.Protected() {
			continue
		}
		x, y := c.toScreen(p.Pos)
		op := &ebiten.DrawImageOptions{Filter: filter, Blend: ebiten.BlendLighter}
		op.GeoM.Translate(-32, -32)
		op.GeoM.Rotate(float64(wr.frame) / 30)
		op.GeoM.Scale(s*1.05, s*1.05)
		op.GeoM.Translate(x, y)
		op.ColorScale = scaleOf(slotColor(p.Slot), 0.5+0.3*float32(math.Sin(float64(wr.frame)/6)))
		dst.DrawImage(wr.res.ring, op)
	}
	for _, p := range wr.parts {
		x, y := c.toScreen(sim.V(float32(p.x), float32(p.y)))
		if x < -100 || y < -100 || x > c.w+100 || y > c.h+100 {
			continue
		}
		b := p.img.Bounds()
		op := &ebiten.DrawImageOptions{Filter: filter, Blend: ebiten.BlendLighter}
		op.GeoM.Translate(-float64(b.Dx())/2, -float64(b.Dy())/2)
		op.GeoM.Rotate(p.rot)
		sz := math.Max(p.size, 0.01) * s
		op.GeoM.Scale(sz, sz)
		op.GeoM.Translate(x, y)
		op.ColorScale = scaleOf(p.c, float32(p.life/p.max))
		dst.DrawImage(p.img, op)
	}
}

// drawLabels draws names and health bars over the players (screen space).
func (wr *worldRenderer) drawLabels(dst *ebiten.Image, v *netplay.View, cam *camera, name func(sim.PlayerID) string) {
	for i := range v.Players {
		p := &v.Players[i]
		if !p.Alive {
			continue
		}
		x, y := cam.toScreen(p.Pos)
		top := y - 30*cam.scale - 22
		col := slotColor(p.Slot)
		if p.ID != v.Me {
			drawTextShadow(dst, name(p.ID), wr.res.small, x, top-4, col, center)
		}
		// Health bar.
		w := 40.0
		fillRect(dst, rect{x - w/2 - 1, top + 14, w + 2, 6}, color.RGBA{0, 0, 0, 170})
		f := float64(p.HP) / sim.MaxHP
		hc := colGood
		if f < 0.35 {
			hc = colWarn
		} else if f < 0.65 {
			hc = colAccent
		}
		fillRect(dst, rect{x - w/2, top + 15, w * f, 4}, hc)
	}
	for _, f := range wr.floats {
		x, y := f.x, f.y
		if f.world {
			x, y = cam.toScreen(sim.V(float32(f.x), float32(f.y)))
		}
		a := math.Min(1, f.life*2)
		c := f.c
		c.A = uint8(255 * a)
		face := wr.res.normal
		if f.big {
			face = wr.res.big
		}
		drawTextShadow(dst, f.text, face, x, y, c, center)
	}
}
