package sim

import "math"

// Rect is an axis-aligned rectangle.
type Rect struct{ Min, Max Vec2 }

// R returns the rectangle at (x, y) of size w×h.
func R(x, y, w, h float32) Rect { return Rect{Vec2{x, y}, Vec2{x + w, y + h}} }

// W returns the width of r.
func (r Rect) W() float32 { return r.Max.X - r.Min.X }

// H returns the height of r.
func (r Rect) H() float32 { return r.Max.Y - r.Min.Y }

// Center returns the centre of r.
func (r Rect) Center() Vec2 { return r.Min.Add(r.Max).Scale(0.5) }

// Inset returns r shrunk by d on every side (grown when d < 0).
func (r Rect) Inset(d float32) Rect {
	return Rect{Vec2{r.Min.X + d, r.Min.Y + d}, Vec2{r.Max.X - d, r.Max.Y - d}}
}

// Contains reports whether p is inside r (edges excluded).
func (r Rect) Contains(p Vec2) bool {
	return p.X > r.Min.X && p.X < r.Max.X && p.Y > r.Min.Y && p.Y < r.Max.Y
}

// Overlaps reports whether r and o overlap (touching edges do not).
func (r Rect) Overlaps(o Rect) bool {
	return r.Min.X < o.Max.X && o.Min.X < r.Max.X && r.Min.Y < o.Max.Y && o.Min.Y < r.Max.Y
}

// Map is the static arena: its size, the walls (which block players and
// bullets), the spawn points and the health pack spots.
type Map struct {
	Name    string
	W, H    float32
	Walls   []Rect
	Spawns  []Vec2
	Pickups []Vec2
	nav     *navGrid
}

// Cell is the size of the map's layout grid.
const Cell = 64

// DefaultMap returns the arena: 30×20 cells of 64 units, with cover laid
// out point-symmetrically so that no spawn is better than another.
func DefaultMap() *Map {
	m := &Map{Name: "Foundry", W: 30 * Cell, H: 20 * Cell}
	// One half of the cover, in cells (x, y, w, h); the other half is the
	// same turned half a turn about the centre.
	half := [][4]float32{
		{4, 3, 3, 1}, {4, 4, 1, 2}, // L in the top-left
		{10, 2, 2, 1},                // crates by the top wall
		{2, 9, 1, 2},                 // post by the left wall
		{8, 7, 1, 3},                 // pillar
		{11, 12, 3, 1},               // low wall below the centre-left
		{5, 14, 1, 1}, {6, 15, 1, 1}, // staggered crates
		{14, 4, 2, 1},  // top-centre cover
		{19, 6, 1, 2},  // upper right-centre post
		{24, 16, 1, 1}, // crate near the bottom right
	}
	for _, c := range half {
		x, y, w, h := c[0], c[1], c[2], c[3]
		m.Walls = append(m.Walls, R(x*Cell, y*Cell, w*Cell, h*Cell))
		m.Walls = append(m.Walls, R((30-x-w)*Cell, (20-y-h)*Cell, w*Cell, h*Cell))
	}
	// The centre piece, symmetric on its own.
	m.Walls = append(m.Walls, R(14*Cell, 9*Cell, 2*Cell, 2*Cell))
	spawnCells := [][2]float32{
		{1.5, 1.5}, {7.5, 1.5}, {1.5, 6.5}, {12.5, 6.5}, {5.5, 10.5}, {3.5, 17.5}, {10.5, 17.5}, {16.5, 14.5},
	}
	for _, c := range spawnCells {
		m.Spawns = append(m.Spawns, Vec2{c[0] * Cell, c[1] * Cell}, Vec2{(30 - c[0]) * Cell, (20 - c[1]) * Cell})
	}
	for _, c := range [][2]float32{{9.5, 4.5}, {3.5, 13.5}} {
		m.Pickups = append(m.Pickups, Vec2{c[0] * Cell, c[1] * Cell}, Vec2{(30 - c[0]) * Cell, (20 - c[1]) * Cell})
	}
	m.nav = newNavGrid(m)
	return m
}

// Pit returns a small arena of 20×12 cells for duels and quick matches,
// where nobody is ever far from a fight.
func Pit() *Map {
	m := &Map{Name: "Pit", W: 20 * Cell, H: 12 * Cell}
	half := [][4]float32{
		{3, 2, 2, 1}, // top-left crates
		{3, 3, 1, 1},
		{8, 3, 1, 2},  // left of centre
		{14, 1, 1, 2}, // top-right post
		{2, 7, 1, 1},  // low crate
	}
	for _, c := range half {
		x, y, w, h := c[0], c[1], c[2], c[3]
		m.Walls = append(m.Walls, R(x*Cell, y*Cell, w*Cell, h*Cell))
		m.Walls = append(m.Walls, R((20-x-w)*Cell, (12-y-h)*Cell, w*Cell, h*Cell))
	}
	for _, c := range [][2]float32{{1.5, 1.5}, {1.5, 5.5}, {6.5, 1.5}, {10.5, 1.5}, {6.5, 9.5}, {11.5, 5.5}} {
		m.Spawns = append(m.Spawns, Vec2{c[0] * Cell, c[1] * Cell}, Vec2{(20 - c[0]) * Cell, (12 - c[1]) * Cell})
	}
	m.Pickups = append(m.Pickups, Vec2{10 * Cell, 1 * Cell}, Vec2{10 * Cell, 11 * Cell})
	m.nav = newNavGrid(m)
	return m
}

// Maps lists the maps by name; the first is the default.
var Maps = []string{"Foundry", "Pit"}

// MapByName returns a new copy of the map called name, or the default map
// (Foundry) for an unknown name.
func MapByName(name string) *Map {
	if name == "Pit" {
		return Pit()
	}
	return DefaultMap()
}

// Bounds returns the playable area.
func (m *Map) Bounds() Rect { return Rect{Max: Vec2{m.W, m.H}} }

// Blocked reports whether a player of radius r at p overlaps a wall or
// leaves the arena. Players collide as squares of side 2r (see MoveCircle).
func (m *Map) Blocked(p Vec2, r float32) bool {
	if p.X < r || p.Y < r || p.X > m.W-r || p.Y > m.H-r {
		return true
	}
	for _, w := range m.Walls {
		if boxOverlap(p, r, w) {
			return true
		}
	}
	return false
}

// boxOverlap reports whether the square of half-size r centred on p
// overlaps w (touching does not count).
func boxOverlap(p Vec2, r float32, w Rect) bool {
	return p.X > w.Min.X-r && p.X < w.Max.X+r && p.Y > w.Min.Y-r && p.Y < w.Max.Y+r
}

// MoveCircle moves a player of radius r at p by d, sliding along walls and
// the arena's edges, and returns where it ends. Against walls a player is a
// square of side 2r: each axis moves on its own (x, then y) and stops
// exactly at the wall, which makes it slide along walls without snagging
// and keeps prediction and the host in step.
func (m *Map) MoveCircle(p Vec2, r float32, d Vec2) Vec2 {
	p.X += d.X
	if d.X != 0 {
		for _, w := range m.Walls {
			if boxOverlap(p, r, w) {
				if d.X > 0 {
					p.X = w.Min.X - r
				} else {
					p.X = w.Max.X + r
				}
			}
		}
	}
	p.X = min(max(p.X, r), m.W-r)
	p.Y += d.Y
	if d.Y != 0 {
		for _, w := range m.Walls {
			if boxOverlap(p, r, w) {
				if d.Y > 0 {
					p.Y = w.Min.Y - r
				} else {
					p.Y = w.Max.Y + r
				}
			}
		}
	}
	p.Y = min(max(p.Y, r), m.H-r)
	return p
}

// segRect returns the fraction t in [0, 1] of the segment a→b where it
// first enters rectangle w, and whether it does (slab method).
func segRect(a, b Vec2, w Rect) (float32, bool) {
	d := b.Sub(a)
	t0, t1 := float32(0), float32(1)
	for axis := 0; axis < 2; axis++ {
		var p, dv, lo, hi float32
		if axis == 0 {
			p, dv, lo, hi = a.X, d.X, w.Min.X, w.Max.X
		} else {
			p, dv, lo, hi = a.Y, d.Y, w.Min.Y, w.Max.Y
		}
		if dv == 0 {
			if p <= lo || p >= hi {
				return 0, false
			}
			continue
		}
		ta, tb := (lo-p)/dv, (hi-p)/dv
		if ta > tb {
			ta, tb = tb, ta
		}
		t0, t1 = max(t0, ta), min(t1, tb)
		if t0 > t1 {
			return 0, false
		}
	}
	return t0, true
}

// segCircle returns the fraction t in [0, 1] of the segment a→b where it
// first touches the circle (c, r), and whether it does.
func segCircle(a, b, c Vec2, r float32) (float32, bool) {
	d := b.Sub(a)
	f := a.Sub(c)
	A := d.Dot(d)
	B := 2 * f.Dot(d)
	C := f.Dot(f) - r*r
	if C <= 0 {
		return 0, true // starts inside
	}
	if A == 0 {
		return 0, false
	}
	disc := B*B - 4*A*C
	if disc < 0 {
		return 0, false
	}
	t := (-B - float32(math.Sqrt(float64(disc)))) / (2 * A)
	if t < 0 || t > 1 {
		return 0, false
	}
	return t, true
}

// SegmentHitsWall returns the fraction of the segment a→b travelled before
// it meets a wall or the arena's edge, and whether it does.
func (m *Map) SegmentHitsWall(a, b Vec2) (float32, bool) {
	best, hit := float32(1), false
	for _, w := range m.Walls {
		if t, ok := segRect(a, b, w); ok && t <= best {
			best, hit = t, true
		}
	}
	// The arena's edges.
	d := b.Sub(a)
	edge := func(p, dv, lim float32) {
		if dv == 0 {
			return
		}
		t := (lim - p) / dv
		if t >= 0 && t <= best {
			best, hit = t, true
		}
	}
	if b.X < 0 {
		edge(a.X, d.X, 0)
	}
	if b.X > m.W {
		edge(a.X, d.X, m.W)
	}
	if b.Y < 0 {
		edge(a.Y, d.Y, 0)
	}
	if b.Y > m.H {
		edge(a.Y, d.Y, m.H)
	}
	return best, hit
}

// LineOfSight reports whether the straight line a→b crosses no wall.
func (m *Map) LineOfSight(a, b Vec2) bool {
	for _, w := range m.Walls {
		if _, ok := segRect(a, b, w); ok {
			return false
		}
	}
	return true
}
