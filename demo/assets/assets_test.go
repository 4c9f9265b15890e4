package assets_test

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/skein-dev/skein/demo/assets"
)

func TestEmbedded(t *testing.T) {
	for _, name := range []string{"body", "detail", "shadow", "bullet", "glow", "ring", "health", "floor", "wall", "crosshair", "icon"} {
		img, err := assets.Image(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 8 || b.Dy() < 8 {
			t.Errorf("%s is %v", name, b)
		}
	}
	for _, name := range []string{"shoot", "hit", "kill", "pickup", "spawn", "round"} {
		b, err := assets.Sound(name)
		if err != nil || !bytes.HasPrefix(b, []byte("RIFF")) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestFresh checks the committed files are what the generator draws.
func TestFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	cmd := exec.Command("go", "run", "./gen", "-check", "-dir", ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("assets are stale (run: go run ./demo/assets/gen): %v", err)
	}
}
