package game

import (
	"bytes"
	"fmt"
	"image/color"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/text/v2"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/skein-dev/skein/demo/assets"
)

// res holds the loaded sprites and fonts.
type res struct {
	body, detail, shadow, bullet, glow, ring, health, floor, wall, crosshair *ebiten.Image
	white                                                                    *ebiten.Image

	regular, bold, mono *text.GoTextFaceSource
	small, normal, big  *text.GoTextFace
	title, huge         *text.GoTextFace
	monoSmall           *text.GoTextFace
}

func loadRes() (*res, error) {
	r := &res{}
	for name, dst := range map[string]**ebiten.Image{
		"body": &r.body, "detail": &r.detail, "shadow": &r.shadow, "bullet": &r.bullet, "glow": &r.glow,
		"ring": &r.ring, "health": &r.health, "floor": &r.floor, "wall": &r.wall, "crosshair": &r.crosshair,
	} {
		img, err := assets.Image(name)
		if err != nil {
			return nil, fmt.Errorf("asset %s: %w", name, err)
		}
		*dst = ebiten.NewImageFromImage(img)
	}
	r.white = ebiten.NewImage(4, 4)
	r.white.Fill(color.White)
	var err error
	if r.regular, err = text.NewGoTextFaceSource(bytes.NewReader(goregular.TTF)); err != nil {
		return nil, err
	}
	if r.bold, err = text.NewGoTextFaceSource(bytes.NewReader(gobold.TTF)); err != nil {
		return nil, err
	}
	if r.mono, err = text.NewGoTextFaceSource(bytes.NewReader(gomono.TTF)); err != nil {
		return nil, err
	}
	r.small = &text.GoTextFace{Source: r.regular, Size: 13}
	r.normal = &text.GoTextFace{Source: r.regular, Size: 16}
	r.big = &text.GoTextFace{Source: r.bold, Size: 22}
	r.title = &text.GoTextFace{Source: r.bold, Size: 34}
	r.huge = &text.GoTextFace{Source: r.bold, Size: 64}
	r.monoSmall = &text.GoTextFace{Source: r.mono, Size: 13}
	return r, nil
}

// Palette.
var (
	colBG      = color.RGBA{12, 14, 20, 255}
	colPanel   = color.RGBA{16, 19, 28, 225}
	colPanelHi = color.RGBA{30, 36, 52, 240}
	colLine    = color.RGBA{70, 84, 112, 255}
	colText    = color.RGBA{225, 232, 245, 255}
	colDim     = color.RGBA{140, 152, 175, 255}
	colAccent  = color.RGBA{255, 196, 60, 255}
	colGood    = color.RGBA{110, 235, 140, 255}
	colWarn    = color.RGBA{255, 110, 90, 255}
	colNet     = color.RGBA{110, 200, 255, 255}
)

// slotColors are the players' colours, by slot.
var slotColors = [16]color.RGBA{
	{255, 196, 60, 255},  // amber
	{70, 210, 255, 255},  // cyan
	{255, 90, 200, 255},  // magenta
	{140, 235, 80, 255},  // lime
	{255, 130, 50, 255},  // orange
	{165, 125, 255, 255}, // violet
	{255, 85, 85, 255},   // red
	{50, 230, 180, 255},  // teal
	{255, 160, 200, 255}, // pink
	{235, 240, 250, 255}, // white
	{90, 145, 255, 255},  // blue
	{160, 255, 210, 255}, // mint
	{255, 130, 110, 255}, // coral
	{205, 175, 255, 255}, // lavender
	{200, 225, 70, 255},  // chartreuse
	{150, 205, 255, 255}, // sky
}

func slotColor(slot uint8) color.RGBA { return slotColors[int(slot)%len(slotColors)] }

// scale returns c's channels as a ColorScale, times alpha a.
func scaleOf(c color.RGBA, a float32) ebiten.ColorScale {
	var s ebiten.ColorScale
	s.Scale(float32(c.R)/255*a, float32(c.G)/255*a, float32(c.B)/255*a, a)
	return s
}
