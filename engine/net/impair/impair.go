// Package impair wraps a Skein PacketConn and makes what it sends worse:
// it drops a fraction of the outgoing datagrams and delays the others by a
// fixed latency plus random jitter, so that a game or a test can watch the
// engine recover from a bad network on a good one.
//
// Only outgoing datagrams are impaired; reads pass through untouched. Wrap
// both ends of a link to impair both directions. Delayed datagrams wait in
// a bounded queue (a full queue drops, like a router's buffer) and one
// goroutine per Conn sends them when they are due; with jitter larger than
// the spacing between datagrams they may leave out of order, as on a real
// network. Close stops that goroutine and drops what is still queued.
//
//	raw, _ := net.ListenUDP("127.0.0.1:0")
//	conn := impair.Wrap(raw)
//	conn.SetConditions(0.05, 80*time.Millisecond, 20*time.Millisecond)
//	client, _ := sync.NewClient(conn, sync.ClientConfig{}) // engine/sync
package impair

import (
	"container/heap"
	"math/rand/v2"
	stdnet "net"
	"net/netip"
	"sync"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// DefaultQueueLimit is how many delayed datagrams a Conn holds unless
// WithQueueLimit says otherwise: at 1200 bytes each, about 1.2 MB.
const DefaultQueueLimit = 1024

// Option configures a Conn at Wrap.
type Option func(*Conn)

// WithQueueLimit bounds the delayed datagrams waiting to be sent; beyond
// it, new datagrams are dropped and counted in Stats.Overflow. Values below
// 1 mean DefaultQueueLimit.
func WithQueueLimit(n int) Option {
	return func(c *Conn) {
		if n >= 1 {
			c.limit = n
		}
	}
}

// WithSeed makes the loss and jitter draws reproducible (tests). Without
// it the Conn seeds itself randomly.
func WithSeed(seed uint64) Option {
	return func(c *Conn) { c.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// Conditions are the impairments a Conn applies to what it sends.
type Conditions struct {
	// Loss is the probability (0 to 1) that a datagram is dropped.
	Loss float64
	// Delay is added to every datagram that is not dropped.
	Delay time.Duration
	// Jitter widens the delay by a uniform random amount in
	// [-Jitter, +Jitter] (never below zero in total).
	Jitter time.Duration
}

// Stats counts what a Conn did with the datagrams it was given.
type Stats struct {
	// Sent counts datagrams written to the wrapped conn.
	Sent uint64
	// Lost counts datagrams dropped by the Loss draw.
	Lost uint64
	// Overflow counts datagrams dropped because the queue was full.
	Overflow uint64
	// Failed counts delayed datagrams (counted in Sent) that the wrapped
	// conn refused when their time came. WriteTo had already reported
	// them sent: to the caller they are lost, as on a real network.
	Failed uint64
	// Queued is the number of datagrams waiting now.
	Queued int
}

// Conn is a PacketConn that impairs outgoing datagrams. Its methods are
// safe for concurrent use. The zero value is not usable: call Wrap.
type Conn struct {
	inner net.PacketConn
	limit int

	mu      sync.Mutex // guards everything below; never held while writing
	rng     *rand.Rand
	cond    Conditions
	pending pendingHeap
	seq     uint64
	sending int // datagrams taken off the queue and being written
	stats   Stats
	closed  bool

	wake chan struct{} // a datagram was queued (capacity 1)
	done chan struct{} // closed by Close
	exit chan struct{} // closed when the sender goroutine returns
	once sync.Once
}

var _ net.PacketConn = (*Conn)(nil)

// Wrap returns a Conn that sends through conn, with no impairment until
// SetConditions. The Conn owns conn from now on: Close closes it. Wrap
// starts the one goroutine that sends delayed datagrams; it ends at Close.
func Wrap(conn net.PacketConn, opts ...Option) *Conn {
	c := &Conn{
		inner: conn,
		limit: DefaultQueueLimit,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		exit:  make(chan struct{}),
	}
	for _, o := range opts {
		o(c)
	}
	if c.rng == nil {
		c.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	go c.run()
	return c
}

// SetConditions sets the loss probability (clamped to 0..1), the added
// delay and the jitter for datagrams sent from now on. Datagrams already
// queued keep the time they were given. Zero for all three turns the
// impairment off.
func (c *Conn) SetConditions(loss float64, delay, jitter time.Duration) {
	loss = min(max(loss, 0), 1)
	c.mu.Lock()
	c.cond = Conditions{Loss: loss, Delay: max(delay, 0), Jitter: max(jitter, 0)}
	c.mu.Unlock()
}

// Conditions returns the current conditions.
func (c *Conn) Conditions() Conditions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cond
}

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Queued = len(c.pending)
	return s
}

// ReadFrom reads from the wrapped conn, unimpaired.
func (c *Conn) ReadFrom(b []byte) (int, netip.AddrPort, error) { return c.inner.ReadFrom(b) }

// LocalAddr returns the wrapped conn's address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.inner.LocalAddr() }

// Unwrap returns the conn c wraps (net.IsUDPSocket looks through it).
func (c *Conn) Unwrap() net.PacketConn { return c.inner }

// WriteTo sends b to addr, or drops it, or queues a copy to send later, as
// the conditions say. It never blocks on the queue: a datagram that finds
// the queue full is dropped (counted in Stats.Overflow) and WriteTo still
// reports success, as a kernel socket does. After Close it returns an
// error that satisfies errors.Is(err, net.ErrClosed).
func (c *Conn) WriteTo(b []byte, addr netip.AddrPort) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, stdnet.ErrClosed
	}
	cond := c.cond
	if cond.Loss > 0 && c.rng.Float64() < cond.Loss {
		c.stats.Lost++
		c.mu.Unlock()
		return len(b), nil
	}
	d := cond.Delay
	if cond.Jitter > 0 {
		d += time.Duration(c.rng.Int64N(int64(2*cond.Jitter)+1)) - cond.Jitter
		d = max(d, 0)
	}
	if d == 0 && len(c.pending) == 0 && c.sending == 0 {
		// Nothing to wait for and nothing queued ahead: send now.
		c.stats.Sent++
		c.mu.Unlock()
		return c.inner.WriteTo(b, addr)
	}
	if len(c.pending) >= c.limit {
		c.stats.Overflow++
		c.mu.Unlock()
		return len(b), nil
	}
	c.seq++
	heap.Push(&c.pending, datagram{due: time.Now().Add(d), seq: c.seq, to: addr, b: append(getBuf(), b...)})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// Close stops the sender goroutine, drops the queued datagrams and closes
// the wrapped conn. It is safe to call more than once.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.done)
		<-c.exit
		c.mu.Lock()
		for _, p := range c.pending {
			putBuf(p.b)
		}
		c.pending = nil
		c.mu.Unlock()
		err = c.inner.Close()
	})
	return err
}

// run sends queued datagrams when they are due, until Close.
func (c *Conn) run() {
	defer close(c.exit)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []datagram
	for {
		c.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(c.pending) > 0 && !c.pending[0].due.After(now) {
			due = append(due, heap.Pop(&c.pending).(datagram))
		}
		c.stats.Sent += uint64(len(due))
		c.sending = len(due)
		var wait time.Duration = -1
		if len(c.pending) > 0 {
			wait = c.pending[0].due.Sub(now)
		}
		c.mu.Unlock()

		// Send outside the lock.
		failed := 0
		for i := range due {
			if _, err := c.inner.WriteTo(due[i].b, due[i].to); err != nil {
				failed++
			}
			putBuf(due[i].b)
			due[i] = datagram{}
		}
		if len(due) > 0 {
			c.mu.Lock()
			c.sending = 0
			c.stats.Failed += uint64(failed)
			c.mu.Unlock()
			continue // more may have become due while sending
		}

		var tc <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-c.done:
			return
		case <-c.wake:
		case <-tc:
		}
		timer.Stop()
	}
}

// datagram is a delayed datagram.
type datagram struct {
	due time.Time
	seq uint64 // order of arrival: equal due times leave in order
	to  netip.AddrPort
	b   []byte
}

// pendingHeap orders datagrams by due time, then arrival.
type pendingHeap []datagram

func (h pendingHeap) Len() int { return len(h) }
func (h pendingHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h pendingHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)   { *h = append(*h, x.(datagram)) }
func (h *pendingHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = datagram{}
	*h = old[:n-1]
	return x
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, net.MaxDatagram); return &b }}

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) < net.MaxDatagram || cap(b) > 4*net.MaxDatagram {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}
