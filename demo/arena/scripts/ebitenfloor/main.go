// Command ebitenfloor measures what any Ebitengine frame costs on this
// machine: it fills its 1280×720 window once per frame, as the arena draws
// its map, and prints the frames per second after ten seconds. Under Xvfb
// with software GL that floor, not the game's drawing, bounds the arena's
// frame rate (see BENCHMARKS.md, "The arena demo").
//
//	xvfb-run -s "-screen 0 1280x720x24" go run ./demo/arena/scripts/ebitenfloor
package main

import (
	"flag"
	"fmt"
	"image/color"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
)

type floor struct {
	frames int
	start  time.Time
	d      time.Duration
}

func (f *floor) Update() error {
	if f.start.IsZero() {
		f.start = time.Now()
	}
	if time.Since(f.start) >= f.d {
		fmt.Printf("ebitenfloor: %.1f frames per second over %v\n", float64(f.frames)/time.Since(f.start).Seconds(), f.d)
		return ebiten.Termination
	}
	return nil
}

func (f *floor) Draw(screen *ebiten.Image) {
	f.frames++
	screen.Fill(color.RGBA{20, 24, 32, 255})
}

func (f *floor) Layout(w, h int) (int, int) { return w, h }

func main() {
	d := flag.Duration("d", 10*time.Second, "how long to measure")
	w := flag.Int("w", 1280, "window width")
	h := flag.Int("h", 720, "window height")
	flag.Parse()
	ebiten.SetWindowSize(*w, *h)
	ebiten.SetWindowTitle("Skein Arena floor")
	ebiten.SetScreenClearedEveryFrame(false)
	if err := ebiten.RunGame(&floor{d: *d}); err != nil {
		fmt.Println(err)
	}
}
