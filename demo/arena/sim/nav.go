package sim

// navGrid is the map's walkable cells (Cell-sized), for the bots' path
// finding.
type navGrid struct {
	w, h int
	free []bool
}

func newNavGrid(m *Map) *navGrid {
	g := &navGrid{w: int(m.W / Cell), h: int(m.H / Cell)}
	g.free = make([]bool, g.w*g.h)
	for y := range g.h {
		for x := range g.w {
			c := R(float32(x)*Cell, float32(y)*Cell, Cell, Cell)
			free := true
			for _, wall := range m.Walls {
				if wall.Overlaps(c) {
					free = false
					break
				}
			}
			g.free[y*g.w+x] = free
		}
	}
	return g
}

func (g *navGrid) cellOf(p Vec2) (int, int) {
	x, y := int(p.X/Cell), int(p.Y/Cell)
	return min(max(x, 0), g.w-1), min(max(y, 0), g.h-1)
}

func (g *navGrid) ok(x, y int) bool {
	return x >= 0 && y >= 0 && x < g.w && y < g.h && g.free[y*g.w+x]
}

func cellCenter(x, y int) Vec2 { return Vec2{(float32(x) + 0.5) * Cell, (float32(y) + 0.5) * Cell} }

// Path returns the centres of the cells on a shortest walk from from to to
// (8-connected, no corner cutting), excluding the start and ending at to's
// cell (empty when they share a cell), or nil when to cannot be reached.
func (m *Map) Path(from, to Vec2) []Vec2 {
	g := m.nav
	if g == nil {
		g = newNavGrid(m)
		m.nav = g
	}
	sx, sy := g.cellOf(from)
	tx, ty := g.cellOf(to)
	if !g.ok(tx, ty) {
		return nil
	}
	prev := make([]int32, g.w*g.h)
	for i := range prev {
		prev[i] = -1
	}
	start, goal := sy*g.w+sx, ty*g.w+tx
	prev[start] = int32(start)
	queue := []int{start}
	dirs := [8][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {1, -1}, {-1, 1}, {-1, -1}}
	for len(queue) > 0 && prev[goal] < 0 {
		c := queue[0]
		queue = queue[1:]
		cx, cy := c%g.w, c/g.w
		for _, d := range dirs {
			nx, ny := cx+d[0], cy+d[1]
			if !g.ok(nx, ny) {
				continue
			}
			if d[0] != 0 && d[1] != 0 && (!g.ok(cx+d[0], cy) || !g.ok(cx, cy+d[1])) {
				continue // no cutting corners
			}
			n := ny*g.w + nx
			if prev[n] >= 0 {
				continue
			}
			prev[n] = int32(c)
			queue = append(queue, n)
		}
	}
	if prev[goal] < 0 {
		return nil
	}
	rev := []Vec2{} // empty, not nil, when from and to share a cell
	for c := goal; c != start; c = int(prev[c]) {
		rev = append(rev, cellCenter(c%g.w, c/g.w))
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

// ClearPath reports whether a player of radius r can walk straight from a
// to b without touching a wall.
func (m *Map) ClearPath(a, b Vec2, r float32) bool {
	for _, w := range m.Walls {
		if _, ok := segRect(a, b, w.Inset(-r)); ok {
			return false
		}
	}
	return true
}

// RandomOpenPoint returns the centre of a walkable cell chosen by n.
func (m *Map) RandomOpenPoint(n uint64) Vec2 {
	g := m.nav
	if g == nil {
		g = newNavGrid(m)
		m.nav = g
	}
	free := 0
	for _, f := range g.free {
		if f {
			free++
		}
	}
	k := int(n % uint64(free))
	for i, f := range g.free {
		if f {
			if k == 0 {
				return cellCenter(i%g.w, i/g.w)
			}
			k--
		}
	}
	return Vec2{m.W / 2, m.H / 2}
}
