package chat

import (
	"sync"
	"time"
)

// LimiterConfig configures a Limiter. Zero values take the defaults: a
// burst of 5 messages, then 1 per second, for up to 256 senders.
type LimiterConfig struct {
	// Rate is how many messages per second a sender may keep sending.
	Rate float64
	// Burst is how many messages a quiet sender may send at once.
	Burst int
	// MaxSenders bounds the senders tracked. When a new sender finds the
	// limiter full, senders with a full burst (quiet ones, as if new) are
	// forgotten; if none is, the new sender's messages are dropped.
	MaxSenders int
}

// Verdict is a Limiter's answer for one message.
type Verdict struct {
	// Allow: show the message.
	Allow bool
	// FirstDrop: the message is dropped, and it is the first of the
	// sender's since it was last allowed: show a note once (say "Bob is
	// sending too fast").
	FirstDrop bool
	// Dropped is, on an allowed message, how many of the sender's messages
	// were dropped just before it (0 most of the time).
	Dropped int
}

// Limiter rate-limits senders, each with its own token bucket, so that one
// player flooding a chat cannot drown the others (or the receiver's
// screen). K names a sender, such as a net.HostID. It is safe for
// concurrent use.
type Limiter[K comparable] struct {
	cfg     LimiterConfig
	mu      sync.Mutex
	senders map[K]*bucket
}

type bucket struct {
	tokens  float64
	last    time.Time
	dropped int
}

// NewLimiter returns a Limiter with cfg's limits.
func NewLimiter[K comparable](cfg LimiterConfig) *Limiter[K] {
	if cfg.Rate <= 0 {
		cfg.Rate = 1
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 5
	}
	if cfg.MaxSenders <= 0 {
		cfg.MaxSenders = 256
	}
	return &Limiter[K]{cfg: cfg, senders: make(map[K]*bucket)}
}

// Allow decides whether to show a message from sender that arrived at now.
func (l *Limiter[K]) Allow(sender K, now time.Time) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.senders[sender]
	if b == nil {
		if len(l.senders) >= l.cfg.MaxSenders {
			l.evictQuiet(now)
			if len(l.senders) >= l.cfg.MaxSenders {
				return Verdict{}
			}
		}
		b = &bucket{tokens: float64(l.cfg.Burst), last: now}
		l.senders[sender] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		b.dropped++
		return Verdict{FirstDrop: b.dropped == 1}
	}
	b.tokens--
	v := Verdict{Allow: true, Dropped: b.dropped}
	b.dropped = 0
	return v
}

// Forget drops what the limiter knows of sender (when it leaves).
func (l *Limiter[K]) Forget(sender K) {
	l.mu.Lock()
	delete(l.senders, sender)
	l.mu.Unlock()
}

func (l *Limiter[K]) refill(b *bucket, now time.Time) {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(float64(l.cfg.Burst), b.tokens+dt.Seconds()*l.cfg.Rate)
		b.last = now
	}
}

// evictQuiet forgets the senders whose bucket is full again (l.mu held).
func (l *Limiter[K]) evictQuiet(now time.Time) {
	for k, b := range l.senders {
		l.refill(b, now)
		if b.tokens >= float64(l.cfg.Burst) && b.dropped == 0 {
			delete(l.senders, k)
		}
	}
}
