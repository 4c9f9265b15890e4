package sim

// Buttons are the controls held during one tick.
type Buttons uint8

// The buttons.
const (
	Up Buttons = 1 << iota
	Down
	Left
	Right
	Fire
)

// Has reports whether every button of b2 is held in b.
func (b Buttons) Has(b2 Buttons) bool { return b&b2 == b2 }

// Move returns the direction the movement buttons ask for: zero, or a unit
// vector along one of eight directions.
func (b Buttons) Move() Vec2 {
	var d Vec2
	if b.Has(Up) {
		d.Y--
	}
	if b.Has(Down) {
		d.Y++
	}
	if b.Has(Left) {
		d.X--
	}
	if b.Has(Right) {
		d.X++
	}
	if d.X != 0 && d.Y != 0 {
		const s = 0.70710677 // 1/√2
		d = d.Scale(s)
	}
	return d
}

// ButtonsToward returns the movement buttons closest to direction d (none
// when d is nearly zero).
func ButtonsToward(d Vec2) Buttons {
	l := d.Len()
	if l < 1e-3 {
		return 0
	}
	d = d.Scale(1 / l)
	var b Buttons
	const t = 0.38268343 // sin(22.5°): eight sectors
	if d.Y < -t {
		b |= Up
	}
	if d.Y > t {
		b |= Down
	}
	if d.X < -t {
		b |= Left
	}
	if d.X > t {
		b |= Right
	}
	return b
}

// Input is one tick of one player's controls. Seq numbers a player's inputs
// from 1; the host acknowledges the last one it applied (Player.Ack) so the
// player can replay the others on top of the host's state.
type Input struct {
	Seq     uint32
	Buttons Buttons
	Aim     uint16
}
