package game

import (
	"image/color"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/inpututil"
	"github.com/hajimehoshi/ebiten/v2/text/v2"
	"github.com/hajimehoshi/ebiten/v2/vector"
)

// Small immediate-mode widgets: each frame, Update asks whether a button
// was clicked and Draw draws it.

type rect struct{ x, y, w, h float64 }

func (r rect) in(x, y float64) bool { return x >= r.x && y >= r.y && x < r.x+r.w && y < r.y+r.h }

func mouse() (float64, float64) {
	x, y := ebiten.CursorPosition()
	return float64(x), float64(y)
}

func clicked(r rect) bool {
	return inpututil.IsMouseButtonJustPressed(ebiten.MouseButtonLeft) && r.in(mouse())
}

func hovered(r rect) bool { return r.in(mouse()) }

func fillRect(dst *ebiten.Image, r rect, c color.Color) {
	vector.FillRect(dst, float32(r.x), float32(r.y), float32(r.w), float32(r.h), c, false)
}

func strokeRect(dst *ebiten.Image, r rect, w float32, c color.Color) {
	vector.StrokeRect(dst, float32(r.x), float32(r.y), float32(r.w), float32(r.h), w, c, false)
}

// panel draws a translucent panel with a thin border.
func panel(dst *ebiten.Image, r rect) {
	fillRect(dst, r, colPanel)
	strokeRect(dst, r, 1, color.RGBA{60, 72, 98, 200})
}

// align says where text goes relative to its point.
type align int

const (
	left align = iota
	center
	right
)

// drawText draws s with its top at y.
func drawText(dst *ebiten.Image, s string, face text.Face, x, y float64, c color.Color, a align) {
	op := &text.DrawOptions{}
	op.GeoM.Translate(x, y)
	op.ColorScale.ScaleWithColor(c)
	switch a {
	case left:
		// The default: text starts at x.
	case center:
		op.PrimaryAlign = text.AlignCenter
	case right:
		op.PrimaryAlign = text.AlignEnd
	}
	text.Draw(dst, s, face, op)
}

// drawTextShadow draws s with a dark drop shadow, for text over the game.
func drawTextShadow(dst *ebiten.Image, s string, face text.Face, x, y float64, c color.Color, a align) {
	drawText(dst, s, face, x+1.5, y+1.5, color.RGBA{0, 0, 0, 170}, a)
	drawText(dst, s, face, x, y, c, a)
}

func textWidth(s string, face text.Face) float64 {
	w, _ := text.Measure(s, face, 0)
	return w
}

// button draws a button and reports a click on it.
func (g *Game) button(dst *ebiten.Image, r rect, label string, primary, enabled bool) {
	bg := colPanelHi
	border := colLine
	fg := colText
	switch {
	case !enabled:
		fg = colDim
		bg = color.RGBA{24, 28, 40, 230}
	case primary && hovered(r):
		bg, border, fg = color.RGBA{255, 210, 90, 255}, colAccent, color.RGBA{20, 16, 8, 255}
	case primary:
		bg, border, fg = colAccent, colAccent, color.RGBA{20, 16, 8, 255}
	case hovered(r):
		bg, border = color.RGBA{44, 54, 78, 250}, colNet
	}
	fillRect(dst, r, bg)
	strokeRect(dst, r, 1.5, border)
	face := g.res.normal
	if primary {
		face = g.res.big
	}
	_, h := text.Measure(label, face, 0)
	drawText(dst, label, face, r.x+r.w/2, r.y+(r.h-h)/2, fg, center)
}

// field is a one-line text input.
type field struct {
	label string
	value string
	max   int
	focus bool
}

func (f *field) update(r rect) {
	if inpututil.IsMouseButtonJustPressed(ebiten.MouseButtonLeft) {
		f.focus = r.in(mouse())
	}
	if !f.focus {
		return
	}
	for _, c := range ebiten.AppendInputChars(nil) {
		if len([]rune(f.value)) < f.max && c >= 32 {
			f.value += string(c)
		}
	}
	if repeat(ebiten.KeyBackspace) && len(f.value) > 0 {
		rs := []rune(f.value)
		f.value = string(rs[:len(rs)-1])
	}
}

// repeat reports a key press, repeating while held.
func repeat(k ebiten.Key) bool {
	d := inpututil.KeyPressDuration(k)
	return d == 1 || d > 24 && d%4 == 0
}

func (g *Game) drawField(dst *ebiten.Image, f *field, r rect) {
	drawText(dst, f.label, g.res.small, r.x, r.y-18, colDim, left)
	bg := color.RGBA{10, 12, 18, 240}
	border := colLine
	if f.focus {
		border = colNet
	}
	fillRect(dst, r, bg)
	strokeRect(dst, r, 1.5, border)
	v := f.value
	if f.focus && (g.frame/30)%2 == 0 {
		v += "|"
	}
	_, h := text.Measure("Ag", g.res.normal, 0)
	drawText(dst, v, g.res.normal, r.x+10, r.y+(r.h-h)/2, colText, left)
}
