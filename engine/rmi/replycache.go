package rmi

import "github.com/skein-dev/skein/engine/net"

// The callee's half of request/response calls: the reply window of each
// peer, which answers a retried request with the response it already got
// instead of running its handler twice.

// replySlot is what a callee knows of request seq.
type replySlot struct {
	seq     uint32
	state   uint8 // slotEmpty, slotRunning, slotDeferred, slotAnswered, slotDropped
	replays int   // times frame was sent again
	frame   []byte
	later   *Later // the Later of a slotDeferred request
}

const (
	slotEmpty    = iota // not seen
	slotRunning         // its handler is running
	slotDeferred        // its handler called CallInfo.Defer: a Later answers it
	slotAnswered        // ran; frame is its response
	slotDropped         // ran; its response was dropped for ReplyCacheBytes
)

// What serveBegin tells the Dispatcher to do with a request.
const (
	serveRun    = iota // run the handler, answer into the Encoder, then serveEnd
	serveReplay        // send the Encoder's frame (a cached response or StatusStale)
	serveNone          // send nothing: its handler is running, or its response was replayed MaxReplays times
)

// maxSlack is how much more capacity than length a response buffer may have
// and still move as it is into the reply cache rather than be copied (the
// cache counts capacity against ReplyCacheBytes, so slack costs room, not
// unbounded memory).
const maxSlack = 256

// serveBegin looks request seq from peer up in the peer's reply window and
// returns what to do with it, and an Encoder for the response (nil for
// serveNone). For serveRun, the request is marked running, the window moves
// on if it is the newest, and the handler's response must be passed to
// serveEnd; for serveReplay, the Encoder holds the response to send again
// and goes back with putEncoder.
func (r *Requests) serveBegin(from net.HostID, seq uint32) (*Encoder, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.linkLocked(from)
	if l.ring == nil {
		l.ring = new([ReplyWindow]replySlot)
		l.high = seq - 1
	}
	if d := seq - l.high; int32(d) > 0 {
		// The newest request: forget those that leave the window.
		for i := uint32(1); i <= min(d, ReplyWindow); i++ {
			r.clearSlotLocked(l, &l.ring[(l.high+i)%ReplyWindow])
		}
		l.high = seq
	} else if l.high-seq >= ReplyWindow {
		r.stats.Stale++
		return r.staleLocked(seq), serveReplay
	}
	sl := &l.ring[seq%ReplyWindow]
	if sl.seq == seq {
		switch sl.state {
		case slotRunning, slotDeferred:
			r.stats.Busy++
			return nil, serveNone
		case slotAnswered:
			if sl.replays >= r.cfg.MaxReplays {
				r.stats.ReplayDrops++
				return nil, serveNone
			}
			sl.replays++
			r.stats.Replayed++
			e := r.encoderLocked()
			e.buf = append(e.buf, sl.frame...)
			return e, serveReplay
		case slotDropped:
			r.stats.Stale++
			return r.staleLocked(seq), serveReplay
		}
	}
	r.clearSlotLocked(l, sl)
	sl.seq, sl.state = seq, slotRunning
	r.stats.Served++
	return r.encoderLocked(), serveRun
}

// staleLocked returns an Encoder holding a StatusStale response to seq.
func (r *Requests) staleLocked(seq uint32) *Encoder {
	e := r.encoderLocked()
	e.buf = append(e.buf, 0, 0, byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq), byte(StatusStale))
	return e
}

// serveEnd records the response to request seq from peer (in e, from
// serveBegin), for retries, dropping the oldest responses beyond
// ReplyCacheBytes, and takes e back. The buffer moves into the cache rather
// than being copied when it is not much larger than the response. Nothing
// is recorded if the peer's link went down, or the window moved past seq,
// while the handler ran.
func (r *Requests) serveEnd(from net.HostID, seq uint32, e *Encoder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.putEncoderLocked(e)
	r.recordLocked(from, seq, e, true)
}

// recordLocked records the response in e; with own, e's buffer may move
// into the cache (and e gets a spare one).
func (r *Requests) recordLocked(from net.HostID, seq uint32, e *Encoder, own bool) {
	l := r.findLocked(from)
	if l == nil || l.ring == nil {
		return
	}
	sl := &l.ring[seq%ReplyWindow]
	if sl.seq != seq || (sl.state != slotRunning && sl.state != slotDeferred) {
		return
	}
	if len(e.buf) == ResponseHeaderSize && Status(e.buf[ResponseHeaderSize-1]) == StatusRateLimited {
		// A refusal for the caller's rate says nothing of the request:
		// forget it, so that a retry after the limit is served (the seq
		// stays: a Later or handler still deciding sees it answered).
		if sl.later != nil {
			sl.later.answered.Store(true)
		}
		*sl = replySlot{seq: seq}
		return
	}
	if sl.later != nil { // the handler answered: its Later may not
		sl.later.answered.Store(true)
		sl.later = nil
	}
	sl.state = slotAnswered
	if own && cap(e.buf)-len(e.buf) <= maxSlack {
		sl.frame = e.buf
		e.buf = r.takeSpareLocked(nil)
	} else {
		sl.frame = r.takeSpareLocked(e.buf)
	}
	l.bytes += cap(sl.frame)
	for i := uint32(ReplyWindow - 1); l.bytes > r.cfg.ReplyCacheBytes && i > 0; i-- {
		old := &l.ring[(l.high-i)%ReplyWindow]
		if old.state == slotAnswered && old.seq == l.high-i {
			l.bytes -= cap(old.frame)
			r.putSpareLocked(old.frame)
			old.frame, old.state = nil, slotDropped
		}
	}
}

// clearSlotLocked forgets a request: its link went down, or the window
// moved past it. A Later still waiting to answer it answers nothing: no
// caller waits for it any more, and a client that restarted numbers its
// requests from 1 again, so the answer could match one of those.
func (r *Requests) clearSlotLocked(l *reqLink, sl *replySlot) {
	if sl.later != nil {
		sl.later.answered.Store(true)
	}
	if sl.state == slotAnswered {
		l.bytes -= cap(sl.frame)
		r.putSpareLocked(sl.frame)
	}
	*sl = replySlot{}
}

// encoderLocked returns an empty Encoder for a response: the serving side
// keeps its own rather than using the pool, whose shared half is slow when
// a request's Encoder is still out (a request served on the goroutine that
// sent it, as on a loopback transport or a host answering itself).
func (r *Requests) encoderLocked() *Encoder {
	if n := len(r.encs); n > 0 {
		e := r.encs[n-1]
		r.encs = r.encs[:n-1]
		return e
	}
	return &Encoder{buf: make([]byte, 0, 256)}
}

// putEncoderLocked takes back an Encoder from encoderLocked.
func (r *Requests) putEncoderLocked(e *Encoder) {
	if cap(e.buf) <= maxPooledBuffer && len(r.encs) < 16 {
		e.Reset()
		r.encs = append(r.encs, e)
	}
}

// putEncoder is putEncoderLocked for a caller without the lock.
func (r *Requests) putEncoder(e *Encoder) {
	r.mu.Lock()
	r.putEncoderLocked(e)
	r.mu.Unlock()
}
