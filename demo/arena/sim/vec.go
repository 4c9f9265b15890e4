package sim

import "math"

// Vec2 is a 2D vector in world units.
type Vec2 struct{ X, Y float32 }

// V returns the vector (x, y).
func V(x, y float32) Vec2 { return Vec2{x, y} }

// Add returns v+w.
func (v Vec2) Add(w Vec2) Vec2 { return Vec2{v.X + w.X, v.Y + w.Y} }

// Sub returns v-w.
func (v Vec2) Sub(w Vec2) Vec2 { return Vec2{v.X - w.X, v.Y - w.Y} }

// Scale returns v*k.
func (v Vec2) Scale(k float32) Vec2 { return Vec2{v.X * k, v.Y * k} }

// Dot returns the dot product of v and w.
func (v Vec2) Dot(w Vec2) float32 { return v.X*w.X + v.Y*w.Y }

// Len returns the length of v.
func (v Vec2) Len() float32 { return float32(math.Sqrt(float64(v.X*v.X + v.Y*v.Y))) }

// Len2 returns the squared length of v.
func (v Vec2) Len2() float32 { return v.X*v.X + v.Y*v.Y }

// Dist returns the distance between v and w.
func (v Vec2) Dist(w Vec2) float32 { return v.Sub(w).Len() }

// Norm returns v scaled to length 1 (the zero vector stays zero).
func (v Vec2) Norm() Vec2 {
	l := v.Len()
	if l == 0 {
		return Vec2{}
	}
	return Vec2{v.X / l, v.Y / l}
}

// Lerp returns the point a fraction t of the way from v to w.
func (v Vec2) Lerp(w Vec2, t float32) Vec2 {
	return Vec2{v.X + (w.X-v.X)*t, v.Y + (w.Y-v.Y)*t}
}

// Snap is the grid positions are kept on: 1/Snap world units, so that a
// position fits an int16 on the wire (Snap * 2047 > arena size) and
// survives the trip exactly.
const Snap = 16

// snap rounds x to the 1/Snap grid.
func snap(x float32) float32 { return float32(math.Round(float64(x)*Snap)) / Snap }

func snapV(v Vec2) Vec2 { return Vec2{snap(v.X), snap(v.Y)} }

// Aim angles: a full turn is 65536 steps.

// AimFromAngle converts an angle in radians to an aim.
func AimFromAngle(rad float64) uint16 {
	t := rad / (2 * math.Pi)
	t -= math.Floor(t)
	return uint16(int(math.Round(t*65536)) & 0xffff)
}

// AimAngle converts an aim to radians in [0, 2π).
func AimAngle(a uint16) float64 { return float64(a) * (2 * math.Pi / 65536) }

// AimDir returns the unit vector an aim points along.
func AimDir(a uint16) Vec2 {
	s, c := math.Sincos(AimAngle(a))
	return Vec2{float32(c), float32(s)}
}

// AimTo returns the aim from one point towards another.
func AimTo(from, to Vec2) uint16 {
	d := to.Sub(from)
	return AimFromAngle(math.Atan2(float64(d.Y), float64(d.X)))
}

// AimDiff returns the signed difference b-a in radians, in (-π, π].
func AimDiff(a, b uint16) float64 { return float64(int16(b-a)) * (2 * math.Pi / 65536) }
