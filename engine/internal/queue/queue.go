// Package queue is the bounded hand-over queue between Skein's networking
// goroutines and the application's goroutine. Drain and Wait are the
// application's side of it: engine/net's and engine/sync's FrameMove and
// Next are each a call to them.
package queue

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
)

// Queue is a FIFO of T. Items for which Counted returns true count against
// Limit (messages), and, with SetByteLimit, their sizes against a byte
// limit; others (connect and disconnect events) are always taken, since
// there are only a few per link. Producers ask Room and RoomBytes before
// taking work that would add counted items, so the limits are targets the
// queue can overshoot by the producers' in-flight batches, never an
// unbounded backlog.
type Queue[T any] struct {
	mu        sync.Mutex
	buf       []T
	head      int
	counted   int
	limit     int
	bytes     int // the sizes of the counted items waiting
	byteLimit int // 0: none
	size      func(T) int
	isCount   func(T) bool
	ready     chan struct{}
	drained   func()
	onPush    func()

	stats   Stats         // guarded by mu, but Signals and Parks
	signals atomic.Uint64 // Stats.Signals
	parks   atomic.Uint64 // Stats.Parks
}

// Stats counts what a queue did: how producers pushed and how often the
// consumer had to be woken.
type Stats struct {
	// Pushes counts producer calls that added items (Push, TryPush),
	// Items the items they added.
	Pushes, Items uint64
	// Signals counts the times the Ready channel was given a value (a
	// consumer parked in Wait or selecting on Ready wakes once per
	// signal); Parks the times Wait found the queue empty and blocked.
	Signals, Parks uint64
	// MaxDepth is the most items that ever waited at once.
	MaxDepth int
}

// Stats returns a snapshot of the queue's counters.
func (q *Queue[T]) Stats() Stats {
	q.mu.Lock()
	s := q.stats
	q.mu.Unlock()
	s.Signals, s.Parks = q.signals.Load(), q.parks.Load()
	return s
}

// notePushLocked counts a push of n items.
func (q *Queue[T]) notePushLocked(n int) {
	q.stats.Pushes++
	q.stats.Items += uint64(n)
	q.stats.MaxDepth = max(q.stats.MaxDepth, len(q.buf)-q.head)
}

// New returns a queue with the given limit on counted items. drained, if not
// nil, is called (outside the lock) when the counted items fall to half the
// limit, so that producers that stopped can resume.
func New[T any](limit int, counted func(T) bool, drained func()) *Queue[T] {
	return &Queue[T]{limit: limit, isCount: counted, ready: make(chan struct{}, 1), drained: drained}
}

// SetPushHook has fn called (outside the lock) after every push that
// added items. Call it before the queue is shared.
func (q *Queue[T]) SetPushHook(fn func()) { q.onPush = fn }

// SetByteLimit bounds the total size (as size measures it) of the counted
// items waiting to limit: TryPush refuses an item that would go past it,
// and drained is also called when the size falls to half of it. Call it
// before the queue is shared. A producer that batches (Push) must ask
// RoomBytes first; with limit at least twice the largest item, an item
// always fits once the size is down to half.
func (q *Queue[T]) SetByteLimit(limit int, size func(T) int) {
	q.byteLimit, q.size = limit, size
}

// Room reports how many more counted items fit.
func (q *Queue[T]) Room() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limit - q.counted
}

// RoomBytes reports how many more bytes of counted items fit (math.MaxInt
// without a byte limit; at most 0 when full).
func (q *Queue[T]) RoomBytes() int {
	if q.byteLimit <= 0 {
		return math.MaxInt
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.byteLimit - q.bytes
}

// Space reports Room and RoomBytes together, under one lock.
func (q *Queue[T]) Space() (items, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	bytes = math.MaxInt
	if q.byteLimit > 0 {
		bytes = q.byteLimit - q.bytes
	}
	return q.limit - q.counted, bytes
}

// Bytes reports the total size of the counted items waiting (0 without a
// byte limit).
func (q *Queue[T]) Bytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// sizeOf is the size of counted item it (0 without a byte limit).
func (q *Queue[T]) sizeOf(it T) int {
	if q.byteLimit <= 0 || q.size == nil {
		return 0
	}
	return q.size(it)
}

// Len reports how many items wait.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf) - q.head
}

// Push appends items.
func (q *Queue[T]) Push(items ...T) {
	if len(items) == 0 {
		return
	}
	q.mu.Lock()
	for _, it := range items {
		if q.isCount(it) {
			q.counted++
			q.bytes += q.sizeOf(it)
		}
		q.buf = append(q.buf, it)
	}
	q.notePushLocked(len(items))
	q.mu.Unlock()
	q.pushed()
}

func (q *Queue[T]) pushed() {
	q.signal()
	if q.onPush != nil {
		q.onPush()
	}
}

func (q *Queue[T]) signal() {
	select {
	case q.ready <- struct{}{}:
		q.signals.Add(1)
	default:
	}
}

// PushResult is what TryPush did.
type PushResult uint8

const (
	// Pushed: the item was appended.
	Pushed PushResult = iota
	// Full: refused, the queue holds Limit counted items.
	Full
	// OverBytes: refused, the item would take the counted items' size
	// past the byte limit (SetByteLimit).
	OverBytes
)

// TryPush appends a counted item if there is room for it, under one lock.
func (q *Queue[T]) TryPush(it T) PushResult {
	q.mu.Lock()
	if q.counted >= q.limit {
		q.mu.Unlock()
		return Full
	}
	n := q.sizeOf(it)
	if q.byteLimit > 0 && q.bytes+n > q.byteLimit {
		q.mu.Unlock()
		return OverBytes
	}
	q.counted++
	q.bytes += n
	q.buf = append(q.buf, it)
	q.notePushLocked(1)
	q.mu.Unlock()
	q.pushed()
	return Pushed
}

// Pop removes the oldest item.
func (q *Queue[T]) Pop() (T, bool) {
	var zero T
	q.mu.Lock()
	if q.head == len(q.buf) {
		q.mu.Unlock()
		return zero, false
	}
	it := q.buf[q.head]
	q.buf[q.head] = zero
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.buf) {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	wake := false
	if q.isCount(it) {
		wake = q.counted == q.limit/2+1
		q.counted--
		if n := q.sizeOf(it); n > 0 {
			// Crossing half the byte limit downwards: a producer that
			// stopped for bytes may go on.
			half := q.byteLimit / 2
			wake = wake || (q.bytes > half && q.bytes-n <= half)
			q.bytes -= n
		}
	}
	more := q.head < len(q.buf)
	q.mu.Unlock()
	if more {
		q.signal()
	}
	if wake && q.drained != nil {
		q.drained()
	}
	return it, true
}

// Ready has a value when items may be waiting.
func (q *Queue[T]) Ready() <-chan struct{} { return q.ready }

// Drain hands every waiting item to fn, oldest first, on the caller's
// goroutine, and returns how many it handled. Items pushed while it runs
// (fn's own included) are handled too. It is the engine's FrameMove.
func (q *Queue[T]) Drain(fn func(T)) int {
	n := 0
	for {
		it, ok := q.Pop()
		if !ok {
			return n
		}
		fn(it)
		n++
	}
}

// Wait blocks until an item arrives and returns it. It returns ctx.Err()
// when ctx ends first, and closed when done is closed first, unless an
// item is still waiting then: every item pushed before the owner closed
// is still handed out. It is the engine's Next.
func (q *Queue[T]) Wait(ctx context.Context, done <-chan struct{}, closed error) (T, error) {
	for {
		if it, ok := q.Pop(); ok {
			return it, nil
		}
		q.parks.Add(1)
		select {
		case <-q.ready:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		case <-done:
			if it, ok := q.Pop(); ok {
				return it, nil
			}
			var zero T
			return zero, closed
		}
	}
}
