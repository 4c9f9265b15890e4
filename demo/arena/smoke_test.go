package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/demo/arena/game"
)

// sharedDir is ../shared beside the repository (or $SKEIN_SHARED).
func sharedDir(t *testing.T) string {
	if d := os.Getenv("SKEIN_SHARED"); d != "" {
		return d
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(root), "shared")
}

// TestWindowSmoke runs the real game in a window on a virtual X display:
// play now with the AI at the controls and five bots for a few seconds,
// then checks the screenshot is a game and not a blank window. Set
// ARENA_SCREENSHOT=path to keep the screenshot (docs/arena.png is a
// screenshot of the same window, with seven bots and -netpanel).
func TestWindowSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a window for several seconds")
	}
	shot := filepath.Join(sharedDir(t), "scripts", "xvfb-screenshot.sh")
	deps := filepath.Join(sharedDir(t), "scripts", "ebiten-deps.sh")
	if _, err := os.Stat(shot); err != nil {
		t.Skipf("skipping: %s not found (it runs the window on Xvfb)", shot)
	}
	if _, err := exec.LookPath("Xvfb"); err != nil {
		t.Skip("skipping: Xvfb is not installed (bash scripts/deps.sh installs it, with the GL libraries)")
	}
	if _, err := os.Stat(deps); err == nil {
		if out, err := exec.Command("bash", deps, "--check").CombinedOutput(); err != nil {
			t.Skipf("skipping: missing Ebitengine runtime packages (bash scripts/deps.sh installs them): %s", bytes.TrimSpace(out))
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "arena")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	png := filepath.Join(dir, "arena.png")
	stats := filepath.Join(dir, "stats.json")
	cmd := exec.Command("bash", shot, "-q", "-s", "1280x720x24", "-W", "Skein Arena", "-d", "8", "-t", "60", "-o", png, "--",
		bin, "-autoplay", "-mute", "-bots", "5", "-netpanel", "-exit-after", "11s", "-stats", stats, "-log", "error", "-name", "You")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("the game under Xvfb: %v\n%s", err, out.String())
	}
	t.Logf("ran for %v", time.Since(start).Round(time.Millisecond))
	if strings.Contains(out.String(), "panic") {
		t.Errorf("output mentions a panic:\n%s", out.String())
	}

	img := decode(t, png)
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 720 {
		t.Errorf("screenshot is %v, want the 1280x720 display", b)
	}
	colours, stddev := variety(img)
	t.Logf("screenshot: %d distinct colours, luminance deviation %.1f", colours, stddev)
	if colours < 500 || stddev < 8 {
		t.Errorf("the screenshot looks blank: %d colours, luminance deviation %.1f", colours, stddev)
	}
	if keep := os.Getenv("ARENA_SCREENSHOT"); keep != "" {
		b, _ := os.ReadFile(png)
		if err := os.WriteFile(keep, b, 0o644); err != nil {
			t.Error(err)
		}
	}

	var s game.Stats
	b, err := os.ReadFile(stats)
	if err != nil {
		t.Fatalf("no statistics written: %v\n%s", err, out.String())
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d frames and %d ticks in %.1f s (%.1f fps), %d players, host %v", s.Frames, s.Ticks, s.Seconds, s.FPSMean, s.Players, s.IsHost)
	if s.Players != 6 || !s.IsHost {
		t.Errorf("want 6 players with this window as host, got %d (host %v)", s.Players, s.IsHost)
	}
	if s.Ticks < 300 || s.Frames < 60 {
		t.Errorf("only %d ticks and %d frames", s.Ticks, s.Frames)
	}
	if s.BytesOut == 0 || s.BytesIn == 0 {
		t.Errorf("no traffic: %d in, %d out", s.BytesIn, s.BytesOut)
	}
}

func decode(t *testing.T, path string) image.Image {
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// variety counts distinct colours and the deviation of the luminance.
func variety(img image.Image) (int, float64) {
	seen := map[uint32]bool{}
	var sum, sum2, n float64
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
			l := 0.299*float64(r>>8) + 0.587*float64(g>>8) + 0.114*float64(bl>>8)
			sum += l
			sum2 += l * l
			n++
		}
	}
	mean := sum / n
	return len(seen), math.Sqrt(math.Max(0, sum2/n-mean*mean))
}
