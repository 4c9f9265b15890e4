package netplay

import (
	"slices"
	"testing"

	"github.com/skein-dev/skein/demo/arena/sim"
)

// TestChatter plays 300 short rounds: a bot greets at most once, says at
// most two lines a round, speaks up at some round ends and not at others,
// and waits a human moment before each line.
func TestChatter(t *testing.T) {
	w := sim.NewWorld(sim.DefaultMap(), sim.Rules{})
	if _, err := w.AddPlayer(1); err != nil {
		t.Fatal(err)
	}
	const rounds, roundTicks, pauseTicks = 300, 20 * sim.TickRate, 8 * sim.TickRate
	total, greets := 0, 0
	for seed := range uint64(20) {
		c := NewChatter(seed)
		var said []string
		var lastEnd, tick int
		w.Round, w.Phase = 1, sim.Playing
		perRound := map[uint16]int{}
		for r := range rounds {
			w.Round = uint16(r + 1)
			for range roundTicks {
				tick++
				c.step(w, 1, func(l string) {
					said = append(said, l)
					perRound[w.Round]++
					if r > 0 && tick-lastEnd < sim.TickRate {
						t.Errorf("a line %d ticks after the round ended", tick-lastEnd)
					}
				})
			}
			w.Phase = sim.Intermission
			lastEnd = tick
			for range pauseTicks {
				tick++
				c.step(w, 1, func(l string) {
					said = append(said, l)
					perRound[w.Round]++
					if tick-lastEnd < sim.TickRate {
						t.Errorf("gg %d ticks after the round ended", tick-lastEnd)
					}
				})
			}
			w.Phase = sim.Playing
		}
		for rnd, n := range perRound {
			if n > 2 {
				t.Errorf("seed %d: %d lines in round %d", seed, n, rnd)
			}
		}
		for i, l := range said {
			if slices.Contains(greetings, l) {
				if i != 0 {
					t.Errorf("seed %d: greeting %q as line %d", seed, l, i)
				}
				greets++
				continue
			}
			if !slices.Contains(ggs, l) && !slices.Contains(winnerGGs, l) {
				t.Errorf("seed %d: said %q", seed, l)
			}
			total++
		}
	}
	// About ggChance of round ends, give or take.
	if frac := float64(total) / (20 * rounds); frac < ggChance-0.1 || frac > ggChance+0.1 {
		t.Errorf("gg after %.0f%% of rounds, want about %.0f%%", frac*100, ggChance*100)
	}
	if greets == 0 || greets == 20 {
		t.Errorf("%d of 20 bots greeted: want some", greets)
	}
}
