package portmap

import (
	"net/netip"
	"sync"
	"time"
)

// epochSlack is the rounding an epoch check forgives: the gateway counts
// whole seconds, and a datagram spends some time on the way.
const epochSlack = 2

// epochClock follows a gateway's epoch (PCP's Epoch Time, NAT-PMP's
// Seconds Since Start of Epoch), which every answer and announcement
// carries and which a gateway resets when it loses its mappings (RFC 6887
// §8.5, RFC 6886 §3.6). Safe for concurrent use.
type epochClock struct {
	mu     sync.Mutex
	gw     netip.Addr
	have   bool
	server uint32    // the epoch last seen
	client time.Time // when it was seen (monotonic)
}

// observe records the epoch gw sent, seen at now, and reports whether it
// shows that the gateway lost its state since the last one: it went back
// by more than epochSlack seconds, or advanced by less than 7/8 of the
// time that passed here, minus epochSlack (RFC 6886 §3.6's conservative
// estimate; RFC 6887 §8.5 asks the same within 1/16). A gateway that
// advances faster than this host's clock is not suspected: this host's
// monotonic clock stops while it sleeps. The first epoch from a gateway
// is only recorded.
func (c *epochClock) observe(gw netip.Addr, epoch uint32, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	prevServer, prevClient, had := c.server, c.client, c.have && c.gw == gw
	c.gw, c.have, c.server, c.client = gw, true, epoch, now
	if !had {
		return false
	}
	serverDelta := float64(int64(epoch) - int64(prevServer))
	if serverDelta < -epochSlack {
		return true
	}
	clientDelta := now.Sub(prevClient).Seconds()
	return serverDelta+epochSlack < clientDelta*7/8
}
