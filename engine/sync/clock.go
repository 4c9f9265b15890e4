package sync

import (
	stdsync "sync"
	"time"
)

// clock estimates the server's clock from request/response pairs, keeping
// the sample with the lowest round trip among the last clockSamples (the
// NTP clock filter: the fastest exchange is the least skewed by queueing).
type clock struct {
	mu      stdsync.Mutex
	samples [clockSamples]clockSample
	n       int
	best    clockSample
	valid   bool
}

const clockSamples = 8

type clockSample struct {
	offset time.Duration // server clock − local clock
	rtt    time.Duration
}

// add records an exchange: the request left at t1 (local), the server's
// clock read t2 when answering, and the answer arrived at t3 (local).
func (c *clock) add(t1, t2, t3 time.Duration) {
	rtt := t3 - t1
	if rtt < 0 {
		return
	}
	s := clockSample{offset: t2 + rtt/2 - t3, rtt: rtt}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples[c.n%clockSamples] = s
	c.n++
	best := c.samples[0]
	for _, x := range c.samples[:min(c.n, clockSamples)] {
		if x.rtt < best.rtt {
			best = x
		}
	}
	c.best, c.valid = best, true
}

func (c *clock) get() (clockSample, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.best, c.valid
}
