// Command gen draws the arena's sprites and synthesizes its sounds, and
// writes them into demo/assets (PNG and WAV files, committed). Everything
// is computed from code, so the assets belong to the project and the same
// run gives the same bytes:
//
//	go run ./demo/assets/gen            # rewrite the files
//	go run ./demo/assets/gen -check     # exit 1 if a file is stale
//
// Shapes are drawn from signed distance functions with one pixel of
// anti-aliasing; sounds are short sums of oscillators and noise with
// envelopes.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("dir", "demo/assets", "assets directory")
	check := flag.Bool("check", false, "report stale files instead of writing them")
	flag.Parse()
	files := Files()
	stale := 0
	for name, data := range files {
		path := filepath.Join(*dir, name)
		old, err := os.ReadFile(path)
		if err == nil && bytes.Equal(old, data) {
			continue
		}
		if *check {
			fmt.Fprintf(os.Stderr, "stale: %s\n", path)
			stale++
			continue
		}
		// The assets are committed to the repository: readable by all, like
		// the rest of the checkout.
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { //nolint:gosec // see above
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil { //nolint:gosec // committed assets, see above
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", path)
	}
	if stale > 0 {
		os.Exit(1)
	}
}

// Files returns every asset file by its path under demo/assets.
func Files() map[string][]byte {
	out := map[string][]byte{}
	for name, img := range map[string]*canvas{
		"images/body.png":      body(),
		"images/detail.png":    detail(),
		"images/shadow.png":    shadow(),
		"images/bullet.png":    bullet(),
		"images/glow.png":      glow(),
		"images/ring.png":      ring(),
		"images/health.png":    health(),
		"images/floor.png":     floor(),
		"images/wall.png":      wall(),
		"images/crosshair.png": crosshair(),
		"images/icon.png":      icon(),
	} {
		out[name] = img.png()
	}
	for name, s := range map[string][]float64{
		"sounds/shoot.wav":  shootSound(),
		"sounds/hit.wav":    hitSound(),
		"sounds/kill.wav":   killSound(),
		"sounds/pickup.wav": pickupSound(),
		"sounds/spawn.wav":  spawnSound(),
		"sounds/round.wav":  roundSound(),
	} {
		out[name] = wav(s)
	}
	return out
}

// ---------------------------------------------------------------- drawing

// canvas is a premultiplied RGBA float image.
type canvas struct {
	w, h int
	px   []rgba
}

type rgba struct{ r, g, b, a float64 }

func newCanvas(w, h int) *canvas { return &canvas{w: w, h: h, px: make([]rgba, w*h)} }

// col returns an opaque colour from 0-255 components.
func col(r, g, b float64) rgba { return rgba{r / 255, g / 255, b / 255, 1} }

func (c rgba) alpha(a float64) rgba { return rgba{c.r, c.g, c.b, c.a * a} }

func (c rgba) mix(d rgba, t float64) rgba {
	return rgba{c.r + (d.r-c.r)*t, c.g + (d.g-c.g)*t, c.b + (d.b-c.b)*t, c.a + (d.a-c.a)*t}
}

// over composites straight colour src with coverage cov over the pixel.
func (cv *canvas) over(x, y int, src rgba, cov float64) {
	a := src.a * cov
	if a <= 0 {
		return
	}
	p := &cv.px[y*cv.w+x]
	p.r = src.r*a + p.r*(1-a)
	p.g = src.g*a + p.g*(1-a)
	p.b = src.b*a + p.b*(1-a)
	p.a = a + p.a*(1-a)
}

// add adds light (for glows).
func (cv *canvas) add(x, y int, src rgba, cov float64) {
	a := src.a * cov
	p := &cv.px[y*cv.w+x]
	p.r = math.Min(1, p.r+src.r*a)
	p.g = math.Min(1, p.g+src.g*a)
	p.b = math.Min(1, p.b+src.b*a)
	p.a = math.Min(1, p.a+a)
}

// shade fills with colour f(x, y) where sdf(x, y) < 0, anti-aliased.
func (cv *canvas) shade(sdf func(x, y float64) float64, f func(x, y float64) rgba) {
	for y := 0; y < cv.h; y++ {
		for x := 0; x < cv.w; x++ {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			d := sdf(fx, fy)
			cov := clamp(0.5-d, 0, 1)
			if cov > 0 {
				cv.over(x, y, f(fx, fy), cov)
			}
		}
	}
}

func (cv *canvas) fill(sdf func(x, y float64) float64, c rgba) {
	cv.shade(sdf, func(float64, float64) rgba { return c })
}

// stroke draws the outline of sdf, width w.
func (cv *canvas) stroke(sdf func(x, y float64) float64, w float64, c rgba) {
	cv.fill(func(x, y float64) float64 { return math.Abs(sdf(x, y)) - w/2 }, c)
}

func (cv *canvas) png() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, cv.w, cv.h))
	for i, p := range cv.px {
		var c color.NRGBA
		if p.a > 0 {
			c = color.NRGBA{q8(p.r / p.a), q8(p.g / p.a), q8(p.b / p.a), q8(p.a)}
		}
		img.SetNRGBA(i%cv.w, i/cv.w, c)
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func q8(v float64) uint8 { return uint8(math.Round(clamp(v, 0, 1) * 255)) }

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func smooth(e0, e1, x float64) float64 {
	t := clamp((x-e0)/(e1-e0), 0, 1)
	return t * t * (3 - 2*t)
}

// Signed distance functions.

func circle(cx, cy, r float64) func(x, y float64) float64 {
	return func(x, y float64) float64 { return math.Hypot(x-cx, y-cy) - r }
}

func roundRect(x0, y0, x1, y1, r float64) func(x, y float64) float64 {
	cx, cy := (x0+x1)/2, (y0+y1)/2
	hw, hh := (x1-x0)/2-r, (y1-y0)/2-r
	return func(x, y float64) float64 {
		dx, dy := math.Abs(x-cx)-hw, math.Abs(y-cy)-hh
		out := math.Hypot(math.Max(dx, 0), math.Max(dy, 0))
		return out + math.Min(math.Max(dx, dy), 0) - r
	}
}

func union(a, b func(x, y float64) float64) func(x, y float64) float64 {
	return func(x, y float64) float64 { return math.Min(a(x, y), b(x, y)) }
}

func subtract(a, b func(x, y float64) float64) func(x, y float64) float64 {
	return func(x, y float64) float64 { return math.Max(a(x, y), -b(x, y)) }
}

// noise is a deterministic value noise in [0, 1].
func noise(x, y float64, seed uint32) float64 {
	xi, yi := math.Floor(x), math.Floor(y)
	fx, fy := x-xi, y-yi
	h := func(i, j float64) float64 {
		n := uint32(int32(i))*374761393 + uint32(int32(j))*668265263 + seed*2246822519
		n = (n ^ (n >> 13)) * 1274126177
		return float64(n^(n>>16)) / 4294967295
	}
	sx, sy := fx*fx*(3-2*fx), fy*fy*(3-2*fy)
	a := h(xi, yi) + (h(xi+1, yi)-h(xi, yi))*sx
	b := h(xi, yi+1) + (h(xi+1, yi+1)-h(xi, yi+1))*sx
	return a + (b-a)*sy
}

// tileNoise is value noise that wraps every period units.
func tileNoise(x, y, period float64, seed uint32) float64 {
	wrap := func(v float64) float64 { return math.Mod(math.Mod(v, period)+period, period) }
	xi, yi := math.Floor(x), math.Floor(y)
	fx, fy := x-xi, y-yi
	h := func(i, j float64) float64 { return noise(wrap(i), wrap(j), seed) }
	sx, sy := fx*fx*(3-2*fx), fy*fy*(3-2*fy)
	a := h(xi, yi) + (h(xi+1, yi)-h(xi, yi))*sx
	b := h(xi, yi+1) + (h(xi+1, yi+1)-h(xi, yi+1))*sx
	return a + (b-a)*sy
}

// ---------------------------------------------------------------- sprites

// The player faces +x. body is drawn in greys and tinted with the
// player's colour at run time; detail goes on top untinted.
const ps = 64 // player sprite size

func body() *canvas {
	c := newCanvas(ps, ps)
	m := ps / 2.0
	// Shoulder pods, left and right of the direction of travel.
	for _, sy := range []float64{-1, 1} {
		pod := roundRect(m-12, m+sy*17-6, m+8, m+sy*17+6, 5)
		c.shade(pod, func(x, y float64) rgba {
			return col(150, 150, 150).mix(col(230, 230, 230), smooth(m+sy*17+6, m+sy*17-6, y))
		})
	}
	// The hull: a circle lit from the top-left.
	c.shade(circle(m, m, 17), func(x, y float64) rgba {
		l := clamp(1-math.Hypot(x-(m-6), y-(m-7))/28, 0, 1)
		return col(120, 120, 120).mix(col(255, 255, 255), l)
	})
	// An inner plate.
	c.shade(circle(m-1, m, 10), func(x, y float64) rgba {
		l := clamp(1-math.Hypot(x-(m-5), y-(m-5))/18, 0, 1)
		return col(175, 175, 175).mix(col(245, 245, 245), l)
	})
	return c
}

func detail() *canvas {
	c := newCanvas(ps, ps)
	m := ps / 2.0
	dark := rgba{0.05, 0.06, 0.09, 1}
	// Outlines of the pods and hull.
	for _, sy := range []float64{-1, 1} {
		c.stroke(roundRect(m-12, m+sy*17-6, m+8, m+sy*17+6, 5), 1.6, dark.alpha(0.85))
	}
	c.stroke(circle(m, m, 17), 2, dark.alpha(0.9))
	c.stroke(circle(m-1, m, 10), 1.2, dark.alpha(0.35))
	// The gun: a barrel from the hull to the front.
	barrel := roundRect(m+4, m-3.5, m+29, m+3.5, 2)
	c.shade(barrel, func(x, y float64) rgba { return col(60, 66, 80).mix(col(150, 158, 175), smooth(m+3.5, m-3.5, y)) })
	c.stroke(barrel, 1.2, dark)
	c.fill(roundRect(m+25, m-4.5, m+30, m+4.5, 1.5), col(40, 44, 54))
	// The visor: a glowing slit looking forward.
	c.shade(roundRect(m+5, m-7, m+11, m+7, 3), func(x, y float64) rgba {
		return col(150, 240, 255).mix(col(255, 255, 255), smooth(3, 0, math.Abs(y-m)))
	})
	return c
}

func shadow() *canvas {
	c := newCanvas(ps, ps)
	m := ps / 2.0
	c.shade(circle(m, m, 30), func(x, y float64) rgba {
		d := math.Hypot(x-m, y-m) / 30
		return rgba{0, 0, 0, 0.55 * smooth(1, 0.35, d)}
	})
	return c
}

func bullet() *canvas {
	c := newCanvas(32, 12)
	for y := 0; y < c.h; y++ {
		for x := 0; x < c.w; x++ {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			// A capsule along x, brightest at the front.
			dx := math.Max(math.Max(6-fx, fx-26), 0)
			d := math.Hypot(dx, fy-6)
			glow := smooth(6, 0, d) * (0.35 + 0.65*fx/32)
			core := smooth(2.2, 1.2, d) * smooth(4, 14, fx)
			c.add(x, y, rgba{1, 1, 1, 1}, math.Min(1, glow*0.8+core))
		}
	}
	return c
}

func glow() *canvas {
	c := newCanvas(32, 32)
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			d := math.Hypot(float64(x)+0.5-16, float64(y)+0.5-16) / 16
			a := math.Pow(clamp(1-d, 0, 1), 2)
			c.over(x, y, rgba{1, 1, 1, a}, 1)
		}
	}
	return c
}

func ring() *canvas {
	c := newCanvas(ps, ps)
	m := ps / 2.0
	for y := 0; y < ps; y++ {
		for x := 0; x < ps; x++ {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			d := math.Abs(math.Hypot(fx-m, fy-m) - 26)
			a := smooth(5, 0, d)*0.5 + smooth(1.6, 0.6, d)*0.5
			// Six segments, with gaps.
			ang := math.Atan2(fy-m, fx-m)
			seg := math.Mod(ang/(2*math.Pi)*6+6.5, 1)
			a *= smooth(0.02, 0.1, seg) * smooth(0.98, 0.9, seg)
			c.over(x, y, rgba{1, 1, 1, a}, 1)
		}
	}
	return c
}

func health() *canvas {
	c := newCanvas(48, 48)
	m := 24.0
	for y := 0; y < 48; y++ {
		for x := 0; x < 48; x++ {
			d := math.Hypot(float64(x)+0.5-m, float64(y)+0.5-m) / 24
			c.over(x, y, rgba{0.3, 1, 0.55, 0.45 * math.Pow(clamp(1-d, 0, 1), 2)}, 1)
		}
	}
	box := roundRect(m-12, m-12, m+12, m+12, 5)
	c.shade(box, func(x, y float64) rgba { return col(225, 240, 232).mix(col(255, 255, 255), smooth(m+12, m-12, y)) })
	c.stroke(box, 1.6, col(30, 70, 45))
	cross := union(roundRect(m-3.2, m-8.5, m+3.2, m+8.5, 1), roundRect(m-8.5, m-3.2, m+8.5, m+3.2, 1))
	c.shade(cross, func(x, y float64) rgba { return col(30, 190, 90).mix(col(70, 230, 120), smooth(m+8, m-8, y)) })
	return c
}

// floor is a 128×128 tile: four metal panels with seams, bolts, wear.
func floor() *canvas {
	const n = 128
	c := newCanvas(n, n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			v := 0.55*tileNoise(fx/16, fy/16, n/16, 1) + 0.3*tileNoise(fx/5, fy/5, math.Round(n/5.0), 2) + 0.15*tileNoise(fx/2, fy/2, n/2, 3)
			base := col(27, 31, 40).mix(col(36, 41, 53), v)
			// Panel seams every 64 units, with a lit edge below/right.
			px, py := math.Mod(fx, 64), math.Mod(fy, 64)
			seam := math.Min(px, py)
			if seam < 1.2 {
				base = col(14, 16, 22)
			} else if seam < 2.4 {
				base = base.mix(col(52, 58, 74), 0.6)
			}
			c.over(x, y, base, 1)
		}
	}
	// Bolts near each panel's corners.
	for _, ox := range []float64{0, 64} {
		for _, oy := range []float64{0, 64} {
			for _, b := range [][2]float64{{7, 7}, {57, 7}, {7, 57}, {57, 57}} {
				bx, by := ox+b[0], oy+b[1]
				c.fill(circle(bx+0.6, by+0.8, 2.4), rgba{0, 0, 0, 0.4})
				c.shade(circle(bx, by, 2.2), func(x, y float64) rgba {
					return col(60, 66, 82).mix(col(110, 118, 138), smooth(by+2, by-2, y))
				})
			}
		}
	}
	return c
}

// wall is a 64×64 block: a bevelled metal crate seen from above.
func wall() *canvas {
	const n = 64
	c := newCanvas(n, n)
	c.shade(roundRect(0, 0, n, n, 3), func(x, y float64) rgba {
		v := noise(x/6, y/6, 9)*0.6 + noise(x/2, y/2, 10)*0.4
		base := col(68, 76, 96).mix(col(84, 93, 116), v)
		// Bevel: lighter top-left edges, darker bottom-right.
		e := math.Min(math.Min(x, y), math.Min(n-x, n-y))
		switch {
		case e < 5 && (x < y) == (x < n-y): // left or top
			base = base.mix(col(140, 152, 182), 0.55*smooth(5, 0, e))
		case e < 5:
			base = base.mix(col(24, 27, 36), 0.6*smooth(5, 0, e))
		}
		return base
	})
	// An inset panel with a cross brace.
	inner := roundRect(12, 12, n-12, n-12, 2)
	c.stroke(inner, 2, rgba{0.04, 0.05, 0.08, 0.6})
	c.fill(func(x, y float64) float64 {
		d1 := math.Abs((x-y)/math.Sqrt2) - 2
		d2 := math.Abs((x+y-n)/math.Sqrt2) - 2
		return math.Max(math.Min(d1, d2), inner(x, y))
	}, rgba{0.04, 0.05, 0.08, 0.35})
	// Corner rivets.
	for _, p := range [][2]float64{{7, 7}, {n - 7, 7}, {7, n - 7}, {n - 7, n - 7}} {
		c.shade(circle(p[0], p[1], 2.3), func(x, y float64) rgba {
			return col(70, 78, 98).mix(col(170, 180, 205), smooth(p[1]+2, p[1]-2, y))
		})
	}
	// A thin neon trim on the top edge.
	c.fill(roundRect(14, 3, n-14, 5, 1), rgba{0.4, 0.85, 1, 0.55})
	return c
}

func crosshair() *canvas {
	c := newCanvas(32, 32)
	m := 16.0
	shape := subtract(circle(m, m, 9), circle(m, m, 7))
	cut := union(roundRect(m-2, 0, m+2, 32, 0), roundRect(0, m-2, 32, m+2, 0))
	c.fill(func(x, y float64) float64 { return subtract(shape, cut)(x, y) - 1 }, rgba{0, 0, 0, 0.6})
	c.fill(subtract(shape, cut), rgba{1, 1, 1, 1})
	for _, t := range [][4]float64{{m - 1, 2, m + 1, 8}, {m - 1, 24, m + 1, 30}, {2, m - 1, 8, m + 1}, {24, m - 1, 30, m + 1}} {
		c.fill(roundRect(t[0]-1, t[1]-1, t[2]+1, t[3]+1, 1), rgba{0, 0, 0, 0.6})
		c.fill(roundRect(t[0], t[1], t[2], t[3], 0.5), rgba{1, 1, 1, 1})
	}
	c.fill(circle(m, m, 1.3), rgba{1, 0.3, 0.3, 1})
	return c
}

// icon is the window icon: a player in the first slot's colour.
func icon() *canvas {
	b, d := body(), detail()
	c := newCanvas(ps, ps)
	tint := col(255, 196, 60)
	for i := range c.px {
		p := b.px[i]
		c.px[i] = rgba{p.r * tint.r, p.g * tint.g, p.b * tint.b, p.a}
		q := d.px[i]
		a := q.a
		c.px[i] = rgba{q.r + c.px[i].r*(1-a), q.g + c.px[i].g*(1-a), q.b + c.px[i].b*(1-a), a + c.px[i].a*(1-a)}
	}
	return c
}

// ---------------------------------------------------------------- sounds

const rate = 44100

// rng is a small deterministic noise source.
type rng uint32

func (r *rng) next() float64 {
	*r ^= *r << 13
	*r ^= *r >> 17
	*r ^= *r << 5
	return float64(*r)/float64(1<<31) - 1
}

func samples(d float64) []float64 { return make([]float64, int(d*rate)) }

func env(t, attack, decay float64) float64 {
	if t < attack {
		return t / attack
	}
	return math.Exp(-(t - attack) / decay)
}

func shootSound() []float64 {
	s := samples(0.16)
	r := rng(7)
	ph := 0.0
	lp := 0.0
	for i := range s {
		t := float64(i) / rate
		f := 1400*math.Exp(-t*28) + 180
		ph += f / rate
		sq := math.Copysign(1, math.Sin(2*math.Pi*ph))
		lp += (r.next() - lp) * 0.35
		s[i] = (0.35*sq + 0.4*lp*math.Exp(-t*60)) * env(t, 0.002, 0.045)
	}
	return s
}

func hitSound() []float64 {
	s := samples(0.14)
	r := rng(11)
	ph, lp := 0.0, 0.0
	for i := range s {
		t := float64(i) / rate
		ph += (220*math.Exp(-t*18) + 60) / rate
		lp += (r.next() - lp) * 0.2
		s[i] = (0.6*math.Sin(2*math.Pi*ph) + 0.5*lp) * env(t, 0.001, 0.035)
	}
	return s
}

func killSound() []float64 {
	s := samples(0.6)
	r := rng(13)
	ph, lp, lp2 := 0.0, 0.0, 0.0
	for i := range s {
		t := float64(i) / rate
		ph += (120*math.Exp(-t*5) + 35) / rate
		lp += (r.next() - lp) * (0.25 * math.Exp(-t*4))
		lp2 += (lp - lp2) * 0.3
		s[i] = (0.55*math.Sin(2*math.Pi*ph)*env(t, 0.002, 0.12) + 1.4*lp2*env(t, 0.004, 0.18))
	}
	return s
}

func pickupSound() []float64 {
	s := samples(0.32)
	notes := []float64{523.25, 659.25, 783.99, 1046.5}
	ph := 0.0
	for i := range s {
		t := float64(i) / rate
		k := min(int(t/0.06), len(notes)-1)
		ph += notes[k] / rate
		tri := 2*math.Abs(2*(ph-math.Floor(ph+0.5))) - 1
		s[i] = 0.35 * tri * env(t-float64(k)*0.06, 0.003, 0.09) * smooth(0.32, 0.22, t)
	}
	return s
}

func spawnSound() []float64 {
	s := samples(0.45)
	r := rng(17)
	ph, lp := 0.0, 0.0
	for i := range s {
		t := float64(i) / rate
		ph += (200 + 900*t) / rate
		lp += (r.next() - lp) * (0.05 + 0.3*t)
		s[i] = (0.25*math.Sin(2*math.Pi*ph) + 0.35*lp) * smooth(0, 0.15, t) * smooth(0.45, 0.25, t)
	}
	return s
}

func roundSound() []float64 {
	s := samples(1.2)
	for i := range s {
		t := float64(i) / rate
		v := 0.0
		for k, f := range []float64{392, 493.88, 587.33} {
			v += math.Sin(2*math.Pi*f*t) * env(t-float64(k)*0.12, 0.01, 0.45) * 0.22
		}
		s[i] = v
	}
	return s
}

// wav encodes mono float samples as 16-bit PCM WAV.
func wav(s []float64) []byte {
	n := len(s) * 2
	le := binary.LittleEndian
	b := make([]byte, 0, 44+n)
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, uint32(36+n))
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, 1) // PCM
	b = le.AppendUint16(b, 1) // mono
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*2))
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(n))
	for _, v := range s {
		b = le.AppendUint16(b, uint16(int16(math.Round(clamp(v, -1, 1)*32000))))
	}
	return b
}
