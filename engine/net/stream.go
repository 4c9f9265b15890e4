package net

import (
	"encoding/binary"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// The reliable stream's framing (docs/PROTOCOL.md, "KCP"): the messages of
// a link's reliable stream are one byte stream, each message a uvarint
// length and its bytes, carried in KCP messages of at most one segment
// each. Small messages sent while data is in flight share segments: a
// sender under load puts 15 or so 64-byte messages in a segment where it
// would otherwise send one segment each, so that the 256-segment receive
// window carries that many more messages per round trip, and the KCP cores
// do a fifteenth of the work. An idle link still sends each message at
// once, alone.
//
// Sender: Send appends the framed message to the link's pending bytes
// (pend). On an idle link they go to KCP and are flushed at once. Under
// load, every full segment's worth goes to KCP as soon as it is complete,
// and the rest waits in pend for the next flush: the deferred flush the
// timer goroutine does soon after (when the window has room), the arrival
// of an acknowledgement (which opens the window: handleKCPFrameLocked), or
// the 10 ms update.
//
// Receiver: pumpLocked takes KCP messages into the link's reassembly
// buffer (rx) only while it holds no complete message and the event queue
// has room, so a full queue still closes the window (the stalled path), and
// rx holds at most one message being reassembled and one segment.

// kcpMSS is the payload of one KCP segment: the most a KCP message of the
// stream carries.
const kcpMSS = kcpMTU - kcp.IKCP_OVERHEAD

// maxStreamHeader is the longest length prefix: a uvarint of MaxReliable.
const maxStreamHeader = 3

// rxKeep is the capacity of a reassembly or pending buffer kept once it
// is empty; a larger one (a big message went through) is let go.
const rxKeep = 4 * kcpMSS

// streamFrameSize is the size of an n-byte message on the stream.
func streamFrameSize(n int) int {
	h := 1
	for v := n >> 7; v > 0; v >>= 7 {
		h++
	}
	return h + n
}

// pendSegmentsLocked is how many segments the pending bytes will take.
func (l *link) pendSegmentsLocked() int {
	return (len(l.pend) + kcpMSS - 1) / kcpMSS
}

// waitingLocked is the reliable segments waiting or in flight: in KCP, and
// those the pending bytes will make.
func (l *link) waitingLocked() int {
	return l.kcp.WaitSnd() + l.pendSegmentsLocked()
}

// appendPendLocked appends a message (head then body) to the pending
// bytes, framed, and gives every complete segment's worth to KCP.
func (l *link) appendPendLocked(n int, head, body []byte) {
	l.pend = binary.AppendUvarint(l.pend, uint64(n))
	l.pend = append(append(l.pend, head...), body...)
	if len(l.pend) >= kcpMSS {
		l.movePendLocked(false)
	}
}

// movePendLocked gives the pending bytes to KCP, one KCP message per
// segment: all of them, or (all false) only the complete segments.
func (l *link) movePendLocked(all bool) {
	p := l.pend
	for len(p) >= kcpMSS || (all && len(p) > 0) {
		k := min(len(p), kcpMSS)
		l.kcp.Send(p[:k])
		p = p[k:]
	}
	switch {
	case len(p) == 0 && cap(l.pend) > rxKeep:
		l.pend = nil
	case len(p) < len(l.pend):
		l.pend = append(l.pend[:0], p...)
	}
}

// flushLocked gives KCP all the pending bytes and flushes it, counted as
// a flush for cause.
func (l *link) flushLocked(cause FlushCause) {
	l.movePendLocked(true)
	l.flow.startFlush(cause)
	kcpFlush(l.kcp, kcpFlushFull)
	l.flow.endFlush()
}

// streamState is what the reassembly buffer holds next.
type streamState uint8

const (
	streamMore   streamState = iota // no complete message yet
	streamMsg                       // a complete message
	streamBroken                    // a length no sender writes: the stream cannot be read on
)

// nextStreamMessage reads the message at the start of b: its bytes and the
// length of b it took.
func nextStreamMessage(b []byte) (msg []byte, used int, st streamState) {
	n, h := binary.Uvarint(b)
	switch {
	case h == 0:
		return nil, 0, streamMore
	case h < 0 || n > MaxReliable || h > maxStreamHeader:
		return nil, 0, streamBroken
	case uint64(len(b)-h) < n:
		return nil, 0, streamMore
	}
	return b[h : h+int(n)], h + int(n), streamMsg
}

// shedBrokenStream is why a link whose stream pumpLocked cannot read on
// is shed.
const shedBrokenStream = "a reliable stream that cannot be read"

// pumpBatch is how many events pumpLocked gathers before one push.
const pumpBatch = 64

// pumpLocked moves complete reliable messages from the stream to the event
// queue, in pushes of up to pumpBatch (one lock and one wake-up each),
// while the queue has room; it leaves the rest in KCP (whose window then
// closes, slowing the sender) and marks the link stalled. An empty
// message, or an empty KCP message (which no sender writes), is counted as
// DropMalformed and never delivered. It reports false when the stream
// cannot be read on (a length over MaxReliable, a KCP message over one
// segment): the caller sheds the link. scratch is the calling goroutine's
// reusable event slice.
func (l *link) pumpLocked(now time.Time, relayed bool, scratch *[]Event) (ok bool) {
	h := l.h
	room, roomBytes := h.events.Space()
	evs := (*scratch)[:0]
	defer func() { *scratch = h.pushEvents(evs) }()
	for {
		msg, used, st := nextStreamMessage(l.rx[l.rxOff:])
		switch st {
		case streamBroken:
			return false
		case streamMsg:
			if len(msg) == 0 {
				l.rxOff += used
				h.dropOn(l, DropMalformed)
				continue
			}
			if room <= 0 || len(msg) > roomBytes {
				if room > 0 {
					h.byteStalls.Add(1)
				}
				l.stallLocked()
				// The application may have made room since room was read
				// above: the queue's drained callback then found no
				// stalled link to wake. Now that this one is listed, look
				// again, or it waits for the next housekeeping pass.
				if r, rb := h.events.Space(); r > 0 && len(msg) <= rb {
					h.sched.wakeResume()
				}
				return true
			}
			data := make([]byte, len(msg))
			copy(data, msg)
			l.rxOff += used
			room--
			roomBytes -= len(msg)
			l.flow.MessagesReceived++
			evs = append(evs, Event{Kind: EventMessage, Peer: l.id, Delivery: Reliable, Data: data, Relayed: relayed, Received: now, User: l.user})
			if len(evs) == pumpBatch {
				evs = h.pushEvents(evs)
			}
			continue
		case streamMore:
			// No complete message: take the next KCP message, below.
		}
		n := l.kcp.PeekSize()
		switch {
		case n < 0:
			l.compactRxLocked()
			l.stalled = false
			return true
		case n == 0:
			l.kcp.Recv(nil)
			h.dropOn(l, DropMalformed)
			continue
		case n > kcpMSS:
			return false
		}
		l.compactRxLocked()
		at := len(l.rx)
		l.rx = append(l.rx, make([]byte, n)...)
		if l.kcp.Recv(l.rx[at:]) < 0 {
			l.rx = l.rx[:at]
			return true
		}
	}
}

// pushEvents pushes evs to the event queue in one push, and returns evs
// emptied (its events cleared, so that their data can be collected) for
// the next batch.
func (h *Host) pushEvents(evs []Event) []Event {
	h.events.Push(evs...)
	clear(evs)
	return evs[:0]
}

// stallLocked marks the link stalled: its messages wait for room in the
// event queue (sched.resumeStalled).
func (l *link) stallLocked() {
	if !l.stalled {
		l.flow.Stalls++
		l.stalled = true
		l.h.sched.addStalled(l)
	}
}

// compactRxLocked drops the reassembly buffer's bytes already read, and
// lets go of a large buffer once it is empty.
func (l *link) compactRxLocked() {
	switch {
	case l.rxOff < len(l.rx):
		if l.rxOff > 0 {
			n := copy(l.rx, l.rx[l.rxOff:])
			l.rx = l.rx[:n]
		}
	case cap(l.rx) > rxKeep:
		l.rx = nil
	default:
		l.rx = l.rx[:0]
	}
	l.rxOff = 0
}

// drainedLocked reports whether no complete reliable message is left in
// the stream.
func (l *link) drainedLocked() bool {
	if _, _, st := nextStreamMessage(l.rx[l.rxOff:]); st == streamMsg {
		return false
	}
	return l.kcp.PeekSize() < 0
}
