package net

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The reader baton: whoever waits for the host's events reads its socket.
//
// The host's reader goroutine reads the socket and pushes events for the
// application; a Next waiting on an empty queue is then woken by it: two
// goroutines and a hand-off between them for every message, where a raw UDP
// socket's reader is woken once. So the right to read the host's socket is
// a baton. The reader goroutine holds it while nobody waits; a Next that
// finds the queue empty takes it (the reader goroutine's blocked read is
// interrupted with a read deadline in the past) and reads the socket
// itself, handling each datagram on its own goroutine exactly as the
// reader goroutine would, until an event is there for it. It then keeps the
// baton, idle, for its next call: an application calling Next in a loop
// reads its own socket, and the reader goroutine sleeps. If the application
// stays away for a whole tick of the timer goroutine (10 ms; or calls Poll,
// FrameMove, Ready, Dial or Shutdown, which do not read), the baton goes
// back to the reader goroutine.
//
// Exactly one goroutine reads the socket at a time (the holder); the read
// buffers and scratch space go with the baton. Everything else stays: the
// bounded event queue, the locks, the datagram handling. A holder blocked
// in a read is interrupted (read deadline in the past) when someone else
// pushes an event (the timer goroutine, another conn's reader), when its
// context ends, and when the reader goroutine's turn comes; a stale
// interruption only costs a retried read.
//
// The reader goroutine, idle while a Next holds the baton, is the one that
// hears the holder's context end: a Next with a context it has not seen
// hands that context's Done channel over (watch), and the reader
// goroutine's wait selects on it. context.AfterFunc would do the same at
// five allocations per new context (its registration, the parent's child
// set, the callback), paid by every Next loop that gives each wait its own
// timeout; the hand-over allocates nothing (TestAllocsPerMessage). As the
// reader goroutine takes one context after another, in order, a context
// that ends after its Next returned no longer kicks the next Next's read.
//
// Only the host's own socket, and only a conn with batched reads and read
// deadlines (ListenUDP's), has a baton; on any other the reader goroutine
// always reads.

// batonConn is a conn the baton can be passed on: batched reads and an
// interruptible read.
type batonConn interface {
	BatchReader
	SetReadDeadline(t time.Time) error
}

// Who holds the baton.
const (
	batonLoop = iota // the reader goroutine
	batonNext        // a Next, reading or handling what it read
	batonIdle        // a Next took it and returned; the application keeps it
)

type baton struct {
	conn batonConn // nil: no baton

	mu     sync.Mutex
	owner  int
	want   bool   // a Next waits for the reader goroutine to give it up
	gen    uint64 // counts Next's takings, for the timer's idle check
	tickAt uint64 // gen at the timer's last check

	toNext      chan struct{} // the reader goroutine gave the baton to the waiting Next
	toLoop      chan struct{} // the baton is back with the reader goroutine
	reading     atomic.Bool   // a Next holding it is in (or about to enter) a read
	loopReading atomic.Bool   // the reader goroutine is in (or about to enter) one
	held        atomic.Bool   // owner is not batonLoop (a cheap check)

	// What goes with the baton: the read buffers and scratch space, and
	// the context whose end kicks the holder's read (the last one handed
	// to the reader goroutine, kept from one Next to the next with the
	// same context).
	msgs     []Message
	rx       *rxScratch
	ctx      context.Context
	watching chan (<-chan struct{}) // to the reader goroutine: the holder's ctx.Done()

	// Counters (BatonStats).
	takes, kicks, returns atomic.Uint64
}

func (b *baton) init(conn PacketConn) {
	bc, ok := conn.(batonConn)
	if !ok {
		return
	}
	if _, isUDP := conn.(*udpConn); !isUDP {
		return // a deadline on another conn may not interrupt its batch read
	}
	b.conn = bc
	b.toNext = make(chan struct{}, 1)
	b.toLoop = make(chan struct{}, 1)
	b.watching = make(chan (<-chan struct{}))
	b.msgs = newReadBatch()
	b.rx = new(rxScratch)
}

// kickLoop interrupts the reader goroutine's read, if it is in one: a
// Next asked for the baton.
func (b *baton) kickLoop() { b.kickIf(&b.loopReading) }

// kick interrupts a Next's read, if one is in one: an event arrived from
// another goroutine, or its context ended. It is the event queue's push
// hook.
func (b *baton) kick() { b.kickIf(&b.reading) }

// kickIf interrupts the read of the goroutine whose reading flag is set.
func (b *baton) kickIf(reading *atomic.Bool) {
	if reading.Load() {
		b.kicks.Add(1)
		_ = b.conn.SetReadDeadline(time.Now())
	}
}

// isDeadline reports whether err is a read interrupted by kick.
func isDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// readHeld reads one batch with the baton held, and handles what arrived.
// It reports whether the conn is closed. A read interrupted by a kick
// returns false with nothing handled. flag is the holder's reading flag,
// set by the caller; readHeld clears it.
func (h *Host) readHeld(flag *atomic.Bool) (closed bool) {
	b := &h.bt
	n, err := b.conn.ReadBatch(b.msgs)
	flag.Store(false)
	if err != nil {
		if isDeadline(err) {
			_ = b.conn.SetReadDeadline(time.Time{})
			return false
		}
		return h.readFailed(err)
	}
	h.handleBatch(b.msgs[:n], h.conn, b.rx)
	return false
}

// handleBatch handles the datagrams of one batched read, in order.
func (h *Host) handleBatch(msgs []Message, conn PacketConn, rx *rxScratch) {
	now := time.Now()
	for i := range msgs {
		m := &msgs[i]
		h.traffic.in(m.N)
		if m.Truncated {
			h.drops.add(DropOversize)
			continue
		}
		h.demux(m.Buf[:m.N], m.Addr, now, rx, conn)
	}
}

// batonLoop is the reader goroutine's loop when the host's conn has a
// baton: it reads while it holds the baton, gives it to a Next that asks,
// and waits for it to come back.
func (h *Host) batonLoop() {
	b := &h.bt
	// The holder's context's Done, until it is closed (then nil).
	var ctxDone <-chan struct{}
	for {
		b.mu.Lock()
		if b.want {
			b.want = false
			b.owner = batonNext
			b.held.Store(true)
			b.takes.Add(1)
			b.mu.Unlock()
			b.toNext <- struct{}{}
		} else {
			b.mu.Unlock()
		}
		if b.held.Load() {
			select {
			case <-b.toLoop:
			case ctxDone = <-b.watching:
			case <-ctxDone:
				ctxDone = nil
				b.kick()
			case <-h.done:
				return
			}
			continue
		}
		b.loopReading.Store(true)
		if b.wanted() {
			b.loopReading.Store(false)
			continue
		}
		if h.readHeld(&b.loopReading) {
			return
		}
	}
}

// wanted reports whether a Next asked for the baton.
func (b *baton) wanted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.want
}

// giveBack returns an idle baton to the reader goroutine: the application
// stopped calling Next (the timer's check), or called something that
// needs the socket read while it does not.
func (b *baton) giveBack() {
	if b.conn == nil || !b.held.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.owner != batonIdle {
		return
	}
	b.toLoopLocked()
}

func (b *baton) toLoopLocked() {
	b.owner = batonLoop
	b.held.Store(false)
	b.returns.Add(1)
	select {
	case b.toLoop <- struct{}{}:
	default:
	}
}

// tick is the timer goroutine's check: an idle baton the application has
// not taken since the last tick goes back to the reader goroutine.
func (b *baton) tick() {
	if b.conn == nil || !b.held.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.owner == batonIdle && b.gen == b.tickAt {
		b.toLoopLocked()
	}
	b.tickAt = b.gen
}

// next is Next with a baton: see the top of this file.
func (h *Host) next(ctx context.Context) (Event, error) {
	b := &h.bt
	for {
		if e, ok := h.events.Pop(); ok {
			return e, nil
		}
		b.mu.Lock()
		switch b.owner {
		case batonIdle:
			b.owner = batonNext
			b.gen++
			b.mu.Unlock()
			return h.readAsNext(ctx)
		case batonLoop:
			if b.want {
				b.mu.Unlock()
				break // another Next asked already: wait for events
			}
			b.want = true
			b.mu.Unlock()
			b.kickLoop()
			select {
			case <-b.toNext:
				b.mu.Lock()
				b.gen++
				b.mu.Unlock()
				return h.readAsNext(ctx)
			case <-h.events.Ready():
				if !h.cancelWant() {
					return h.readAsNext(ctx) // the baton came anyway
				}
				continue
			case <-ctx.Done():
				if !h.cancelWant() {
					h.releaseNext(true)
				}
				return Event{}, ctx.Err()
			case <-h.done:
				if !h.cancelWant() {
					h.releaseNext(true)
				}
				return h.closedNext()
			}
		default: // another Next holds it
			b.mu.Unlock()
		}
		select {
		case <-h.events.Ready():
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-h.done:
			return h.closedNext()
		}
	}
}

// cancelWant withdraws a Next's request for the baton. It reports false
// when the reader goroutine had already given it: the caller holds it
// (batonNext) and must read or release it.
func (h *Host) cancelWant() bool {
	b := &h.bt
	b.mu.Lock()
	if b.want {
		b.want = false
		b.mu.Unlock()
		return true
	}
	b.mu.Unlock()
	<-b.toNext // given: take the token it sent
	return false
}

// releaseNext ends a Next's use of the baton: the application keeps it
// idle for its next call, or (toLoop) it goes back to the reader
// goroutine.
func (h *Host) releaseNext(toLoop bool) {
	b := &h.bt
	b.mu.Lock()
	defer b.mu.Unlock()
	if toLoop {
		b.toLoopLocked()
		return
	}
	b.owner = batonIdle
}

// closedNext is what Next returns once the host is closed: the events
// still waiting, then ErrHostClosed.
func (h *Host) closedNext() (Event, error) {
	if e, ok := h.events.Pop(); ok {
		return e, nil
	}
	return Event{}, ErrHostClosed
}

// readAsNext reads the socket on Next's goroutine, baton held, until an
// event is there, ctx ends or the host closes.
func (h *Host) readAsNext(ctx context.Context) (Event, error) {
	b := &h.bt
	for {
		if e, ok := h.events.Pop(); ok {
			h.releaseNext(false)
			return e, nil
		}
		if err := ctx.Err(); err != nil {
			h.releaseNext(true)
			return Event{}, err
		}
		select {
		case <-h.done:
			h.releaseNext(true)
			return h.closedNext()
		default:
		}
		h.watch(ctx)
		b.reading.Store(true)
		// Checked again now that pushers and ctx see reading: an event
		// pushed before is here; one pushed after kicks the read.
		if h.events.Len() > 0 || ctx.Err() != nil {
			b.reading.Store(false)
			continue
		}
		if h.readHeld(&b.reading) {
			h.releaseNext(true)
			return h.closedNext()
		}
	}
}

// watch has ctx's end kick the holder's read: the reader goroutine,
// waiting for the baton to come back, takes ctx's Done channel (see the
// top of this file). Call it with the baton held.
func (h *Host) watch(ctx context.Context) {
	b := &h.bt
	if ctx == b.ctx {
		return
	}
	// The reader goroutine is in (or on its way to) that wait while a
	// Next holds the baton, so the hand-over does not block for long; it
	// has returned once the host is closed. A context that never ends
	// (nil Done) is handed over too, once: the reader goroutine then
	// stops watching the one before it.
	select {
	case b.watching <- ctx.Done():
		b.ctx = ctx
	case <-h.done:
	}
}

// BatonStats counts the reader baton's passes (see Host.Next).
type BatonStats struct {
	// Takes counts the times a Next took the baton from the reader
	// goroutine; Returns the times it went back (the application stayed
	// away a tick, called Poll or FrameMove, or a Next ended without an
	// event); Kicks the reads interrupted to pass it or to deliver an
	// event another goroutine pushed.
	Takes, Returns, Kicks uint64
}

func (b *baton) stats() BatonStats {
	return BatonStats{Takes: b.takes.Load(), Returns: b.returns.Load(), Kicks: b.kicks.Load()}
}
