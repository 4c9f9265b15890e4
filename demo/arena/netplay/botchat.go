package netplay

import (
	"math/rand/v2"

	"github.com/skein-dev/skein/demo/arena/sim"
)

// Chatter is a bot's small talk in the match chat: now and then a greeting
// when it joins, and "gg" when a round ends, each after a pause a person
// would take to type it. A Chatter says at most one line per occasion and
// never more than two a round, far below the chat's rate limit.
type Chatter struct {
	rng     *rand.Rand
	ticks   int
	joined  bool
	phase   sim.Phase
	line    string // waiting to be said at tick due
	due     int
	perRnd  int    // lines said this round
	lastRnd uint16 // round of perRnd
}

// Chance of speaking up on each occasion.
const (
	greetChance = 0.3
	ggChance    = 0.35
)

var (
	greetings = []string{"hi", "hey all", "glhf", "hello!", "o/", "gl hf everyone"}
	ggs       = []string{"gg", "gg wp", "gg!", "ggs", "nice round", "close one", "gg, again?"}
	winnerGGs = []string{"gg", "gg wp", "that went well", "gg :)"}
)

// NewChatter returns a chatter whose choices follow seed.
func NewChatter(seed uint64) *Chatter {
	return &Chatter{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Step runs one tick of s's small talk (none outside a match); call it
// after s.Tick.
func (c *Chatter) Step(s *Session) {
	w := s.World()
	if w == nil {
		return
	}
	c.step(w, sim.PlayerID(s.ID()), func(line string) { _ = s.Say(line) })
}

// step decides on w, the world as player me sees it, and calls say when a
// line is due.
func (c *Chatter) step(w *sim.World, me sim.PlayerID, say func(string)) {
	c.ticks++
	if w.Round != c.lastRnd {
		c.lastRnd, c.perRnd = w.Round, 0
	}
	switch {
	case !c.joined:
		c.joined, c.phase = true, w.Phase
		if c.rng.Float64() < greetChance {
			c.plan(greetings, 1, 4)
		}
	case c.phase == sim.Playing && w.Phase == sim.Intermission:
		if c.rng.Float64() < ggChance {
			lines := ggs
			if r := w.Ranking(); len(r) > 0 && r[0] == me {
				lines = winnerGGs
			}
			c.plan(lines, 1, 5)
		}
	}
	c.phase = w.Phase
	if c.line != "" && c.ticks >= c.due {
		if c.perRnd < 2 {
			say(c.line)
			c.perRnd++
		}
		c.line = ""
	}
}

// plan picks a line from lines, to say in lo to hi seconds.
func (c *Chatter) plan(lines []string, lo, hi float64) {
	if c.line != "" {
		return
	}
	c.line = lines[c.rng.IntN(len(lines))]
	c.due = c.ticks + int((lo+c.rng.Float64()*(hi-lo))*sim.TickRate)
}
