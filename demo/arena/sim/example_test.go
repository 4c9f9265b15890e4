package sim_test

import (
	"fmt"

	"github.com/skein-dev/skein/demo/arena/sim"
)

// A match between two bots, stepped for ten seconds of game time: what a
// host does at sim.TickRate, with inputs from its players instead.
func Example() {
	w := sim.NewWorld(sim.Pit(), sim.Rules{})
	bots := []*sim.Bot{sim.NewBot(1001, 1), sim.NewBot(1002, 2)}
	for _, b := range bots {
		w.AddPlayer(b.ID)
	}
	inputs := map[sim.PlayerID][]sim.Input{}
	var events []sim.Event
	hits := 0
	for tick := range 10 * sim.TickRate {
		for _, b := range bots {
			in := b.Think(w)
			in.Seq = uint32(tick + 1)
			inputs[b.ID] = append(inputs[b.ID][:0], in)
		}
		events = w.Step(inputs, events)
		for _, e := range events {
			if e.Kind == sim.EventHit {
				hits++
			}
		}
	}
	fmt.Println("tick", w.Tick, "players", len(w.Players), "hits > 0:", hits > 0)
	// Output: tick 600 players 2 hits > 0: true
}
