package net

import (
	"encoding/binary"

	kcp "github.com/xtaci/kcp-go/v5"
)

// Counters of the reliable stream's send and receive paths: how many
// messages share a segment and a datagram, what made each flush, where the
// sender waited. They are read in benchmarks (BENCHMARKS.md, issue 18) and
// cost an increment under the link's lock.

// FlushCause says what made a link's KCP core write datagrams.
type FlushCause uint8

const (
	// FlushSend: Send on an idle link (nothing unacknowledged, no flush
	// pending) flushed at once.
	FlushSend FlushCause = iota
	// FlushDeferred: the timer goroutine flushed what Send queued while
	// data was in flight (one flush for every message sent meanwhile).
	FlushDeferred
	// FlushTick: the timer goroutine's periodic update (every 10 ms):
	// retransmissions on timeout, acknowledgements not sent yet.
	FlushTick
	// FlushInput: a received datagram made the core write: an
	// acknowledgement that opened the window or asked for a fast
	// retransmission, a run of acknowledgements to return (KCP's ack
	// clocking), or queued data moved in once the window opened.
	FlushInput
	// FlushOther: a close, a path change or another flush outside the
	// paths above.
	FlushOther
	// NumFlushCauses is the number of flush causes.
	NumFlushCauses
)

var flushNames = [NumFlushCauses]string{"send", "deferred", "tick", "input", "other"}

func (c FlushCause) String() string {
	if c < NumFlushCauses {
		return flushNames[c]
	}
	return "unknown"
}

// FlowStats counts how one link's reliable stream moved.
type FlowStats struct {
	// MessagesSent counts reliable messages Send took; MessagesReceived
	// those delivered to the event queue.
	MessagesSent, MessagesReceived uint64
	// Segments counts KCP data segments sent for the first time
	// (retransmissions are LinkStats.Retransmits).
	Segments uint64
	// Datagrams counts the datagrams of KCP segments (data or
	// acknowledgements) by what flushed them; Flushes the flushes that
	// wrote at least one, for the causes that mark where a flush starts
	// and ends (Send, Deferred, Tick, Input): Flushes[FlushOther] stays 0,
	// as writes outside those paths are not grouped into flushes.
	Datagrams, Flushes [NumFlushCauses]uint64
	// SendQueueFull counts Sends refused with ErrSendQueueFull.
	SendQueueFull uint64
	// WindowFull counts reliable Sends that found at least a receive
	// window (256 segments) unacknowledged or waiting: the sender was
	// ahead of the window and its message waited for acknowledgements.
	WindowFull uint64
	// Stalls counts the times delivery stopped on a full event queue
	// (the messages left waited in the stream until the queue drained).
	Stalls uint64
}

// flowCounters are a link's FlowStats, kept under link.mu. cause is what
// the flush in progress is for (output counts by it).
type flowCounters struct {
	FlowStats
	cause   FlushCause
	flushed bool // the flush in progress wrote a datagram
}

// startFlush notes that the KCP calls that follow may write for cause.
func (f *flowCounters) startFlush(c FlushCause) {
	f.cause, f.flushed = c, false
}

// endFlush ends the flush started with startFlush.
func (f *flowCounters) endFlush() {
	if f.flushed {
		f.Flushes[f.cause]++
	}
	f.cause, f.flushed = FlushOther, false
}

// countOutput counts one datagram's worth of KCP segments the core wrote,
// and returns how many of its data segments were retransmissions.
func (f *flowCounters) countOutput(buf []byte, nextSN *uint32) (retrans uint64) {
	f.Datagrams[f.cause]++
	f.flushed = true
	for len(buf) >= kcp.IKCP_OVERHEAD {
		cmd := buf[4]
		sn := binary.LittleEndian.Uint32(buf[12:])
		n := int(binary.LittleEndian.Uint32(buf[20:]))
		if cmd == kcp.IKCP_CMD_PUSH {
			if int32(sn-*nextSN) < 0 {
				retrans++
			} else {
				*nextSN = sn + 1
				f.Segments++
			}
		}
		if n > len(buf)-kcp.IKCP_OVERHEAD {
			break
		}
		buf = buf[kcp.IKCP_OVERHEAD+n:]
	}
	return retrans
}

// EventQueueStats counts what the host's event queue did: how the
// networking goroutines pushed events and how often the application's
// goroutine had to be woken for them.
type EventQueueStats struct {
	// Pushes counts the pushes that added events, Events the events they
	// added (more events per push: fewer lock round trips and wake-ups).
	Pushes, Events uint64
	// Signals counts the times Ready was given a value: at most one
	// wake-up of a waiting Next (or of a select on Ready) each. Parks
	// counts the times Next found the queue empty and waited.
	Signals, Parks uint64
	// MaxDepth is the most events that ever waited at once.
	MaxDepth int
	// Bytes is the size of the messages waiting now (their Data), against
	// Config.EventQueueBytes.
	Bytes int
	// ByteStalls counts the times a link's next reliable message did not
	// fit in the rest of Config.EventQueueBytes and waited in its stream
	// (as when the queue holds EventQueue messages); unreliable messages
	// that did not fit are dropped (DropQueueBytes).
	ByteStalls uint64
}

func (h *Host) eventQueueStats() EventQueueStats {
	s := h.events.Stats()
	return EventQueueStats{Pushes: s.Pushes, Events: s.Items, Signals: s.Signals, Parks: s.Parks, MaxDepth: s.MaxDepth,
		Bytes: h.events.Bytes(), ByteStalls: h.byteStalls.Load()}
}
