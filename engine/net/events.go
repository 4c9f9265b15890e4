package net

import (
	"context"
	"sync"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventConnected: a link to Peer is up (for a client, Peer is ServerID
	// once Dial succeeds; for a server, a client finished its handshake).
	EventConnected EventKind = iota + 1
	// EventDisconnected: the link to Peer is gone; Err says why (ErrTimeout,
	// ErrClosedByPeer, ErrKicked, ErrShutdown, ErrClosedLocally).
	EventDisconnected
	// EventMessage: Data arrived from Peer.
	EventMessage
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventMessage:
		return "message"
	}
	return "unknown"
}

// Event is something that happened on the network, handed to the
// application on its own goroutine (FrameMove, Poll or Next).
type Event struct {
	Kind     EventKind
	Peer     HostID
	Delivery Delivery  // how a message came (EventMessage)
	Data     []byte    // the message; the application owns it
	Relayed  bool      // the message came through the server's relay
	Received time.Time // when the networking goroutine received it
	Err      error     // why the link went down (EventDisconnected)
}

// eventQueue is the bounded hand-over from the networking goroutines to the
// application. Messages count against the limit; connect and disconnect
// events are never refused (there are at most two per link).
type eventQueue struct {
	mu       sync.Mutex
	buf      []Event
	head     int
	messages int
	limit    int
	ready    chan struct{} // one token when the queue went non-empty
	drained  func()        // called (outside the lock) when room frees up
}

func newEventQueue(limit int, drained func()) *eventQueue {
	return &eventQueue{limit: limit, ready: make(chan struct{}, 1), drained: drained}
}

// room reports how many more messages fit.
func (q *eventQueue) room() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limit - q.messages
}

// push adds events. Messages beyond the limit are refused: push returns how
// many of evs it took (control events are always taken).
func (q *eventQueue) push(evs ...Event) int {
	if len(evs) == 0 {
		return 0
	}
	q.mu.Lock()
	taken := 0
	for _, e := range evs {
		if e.Kind == EventMessage {
			if q.messages >= q.limit {
				break
			}
			q.messages++
		}
		q.buf = append(q.buf, e)
		taken++
	}
	q.mu.Unlock()
	if taken > 0 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return taken
}

// pop removes the oldest event.
func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	if q.head == len(q.buf) {
		q.mu.Unlock()
		return Event{}, false
	}
	e := q.buf[q.head]
	q.buf[q.head] = Event{}
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.buf) {
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	wake := false
	if e.Kind == EventMessage {
		// Wake stalled links when the queue falls to half its limit.
		wake = q.messages == q.limit/2+1
		q.messages--
	}
	more := q.head < len(q.buf)
	q.mu.Unlock()
	if more {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	if wake && q.drained != nil {
		q.drained()
	}
	return e, true
}

// Poll returns the oldest waiting event, if any, without blocking.
func (h *Host) Poll() (Event, bool) { return h.events.pop() }

// Ready returns a channel that has a value when events may be waiting: select
// on it in a loop that also does other work, then drain with Poll.
func (h *Host) Ready() <-chan struct{} { return h.events.ready }

// FrameMove hands every waiting event to fn, on the caller's goroutine, and
// returns how many it handled. Call it once per game frame. fn may call any
// Host method.
func (h *Host) FrameMove(fn func(Event)) int {
	n := 0
	for {
		e, ok := h.events.pop()
		if !ok {
			return n
		}
		fn(e)
		n++
	}
}

// Next blocks until an event arrives, the context ends or the host closes.
func (h *Host) Next(ctx context.Context) (Event, error) {
	for {
		if e, ok := h.events.pop(); ok {
			return e, nil
		}
		select {
		case <-h.events.ready:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-h.done:
			if e, ok := h.events.pop(); ok {
				return e, nil
			}
			return Event{}, ErrHostClosed
		}
	}
}
