package netplay

import (
	"testing"

	"github.com/skein-dev/skein/demo/arena/sim"
)

func TestInputQueue(t *testing.T) {
	var q inputQueue
	seq := uint32(0)
	push := func(n int) {
		for range n {
			seq++
			q.push(sim.Input{Seq: seq})
		}
	}
	take := func() int { return len(q.take(nil)) }

	// One input per tick: one applied per tick.
	for range 10 {
		push(1)
		if n := take(); n != 1 {
			t.Fatalf("steady: took %d", n)
		}
	}
	// A stall, then a burst: caught up over a few ticks, at most what the
	// stall saved.
	for range 6 {
		if n := take(); n != 0 {
			t.Fatalf("stall: took %d", n)
		}
	}
	push(12)
	total := 0
	for range 8 {
		total += take()
	}
	if total != 12 {
		t.Errorf("after the stall applied %d of 12 inputs in 8 ticks", total)
	}
	// A cheat sending three inputs a tick moves at one input a tick.
	applied := 0
	for range 120 {
		push(3)
		applied += take()
	}
	if applied > 120+maxCredit {
		t.Errorf("applied %d inputs in 120 ticks", applied)
	}
	// Old and repeated inputs are not queued again.
	before := len(q.q)
	q.push(sim.Input{Seq: 1})
	q.push(sim.Input{Seq: seq})
	if len(q.q) != before {
		t.Error("an old input was queued")
	}
	if len(q.q) > maxQueued {
		t.Errorf("queue grew to %d", len(q.q))
	}
}
