package game

import (
	"bytes"
	"io"
	"os"
	"path/filepath"

	"github.com/hajimehoshi/ebiten/v2/audio"
	"github.com/hajimehoshi/ebiten/v2/audio/wav"
	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/assets"
)

// sounds plays the game's short sound effects.
type sounds struct {
	ctx   *audio.Context
	pcm   map[string][]byte
	on    bool
	frame map[string]int // last frame each sound started, to limit repeats
	count map[string]int
	tick  int
}

const sampleRate = 44100

// newSounds prepares the sounds. Audio is only started when the machine
// seems to have a sound device (a PulseAudio server or ALSA devices):
// Ebitengine stops the game if it cannot open one.
func newSounds(on bool, log hclog.Logger) *sounds {
	s := &sounds{pcm: map[string][]byte{}, frame: map[string]int{}, count: map[string]int{}}
	if !on || !haveAudioDevice() {
		if on {
			log.Info("no sound device found: sound is off")
		}
		return s
	}
	s.ctx = audio.NewContext(sampleRate)
	for _, name := range []string{"shoot", "hit", "kill", "pickup", "spawn", "round"} {
		b, err := assets.Sound(name)
		if err != nil {
			continue
		}
		st, err := wav.DecodeF32(bytes.NewReader(b))
		if err != nil {
			continue
		}
		pcm, err := io.ReadAll(st)
		if err != nil {
			continue
		}
		s.pcm[name] = pcm
	}
	s.on = true
	return s
}

func haveAudioDevice() bool {
	if os.Getenv("PULSE_SERVER") != "" {
		return true
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		// G703 (path traversal) does not apply: a stat of a fixed name
		// under the user's own $XDG_RUNTIME_DIR; nothing is read or written.
		if _, err := os.Stat(filepath.Join(rt, "pulse", "native")); err == nil { //nolint:gosec // see above
			return true
		}
	}
	m, _ := filepath.Glob("/dev/snd/pcmC*D*p")
	return len(m) > 0
}

// toggle turns sound on and off (when there is a device).
func (s *sounds) toggle() {
	if s.ctx != nil {
		s.on = !s.on
	}
}

// enabled reports whether sound is playing.
func (s *sounds) enabled() bool { return s.ctx != nil && s.on }

// newTick starts a tick: each sound may start a few times per tick.
func (s *sounds) newTick() {
	s.tick++
	clear(s.count)
}

func (s *sounds) play(name string, vol float64) {
	if s == nil || !s.enabled() || vol < 0.02 {
		return
	}
	if s.count[name] >= 2 {
		return
	}
	s.count[name]++
	pcm := s.pcm[name]
	if pcm == nil {
		return
	}
	p := s.ctx.NewPlayerF32FromBytes(pcm)
	p.SetVolume(vol)
	p.Play()
}
