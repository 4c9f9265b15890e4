package rmi

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// Request and response frames. A request is an ordinary frame with a
// sequence number between the call ID and the arguments; a response uses the
// reserved call ID 0:
//
//	request:  | call ID u16 | seq u32 | msgpack array of arguments |
//	response: | 0 u16       | seq u32 | status u8 | msgpack array of results (status OK only) |
//
// All integers are big endian. The sequence number is chosen by the caller,
// per destination, from 1 and increasing; a retry repeats it.
const (
	// RequestHeaderSize is the call ID and sequence number of a request.
	RequestHeaderSize = HeaderSize + 4
	// ResponseHeaderSize is the ID 0, sequence number and status of a response.
	ResponseHeaderSize = HeaderSize + 5
	// ResponseID is the call ID of every response frame.
	ResponseID CallID = 0
)

// StartRequest returns a pooled Encoder holding the header of a request
// frame for call id (its sequence number is filled in when it is sent) and
// the msgpack array header for nargs arguments. Encode the arguments, then
// pass it to (*Proxy).Request.
func StartRequest(id CallID, nargs int) *Encoder {
	e := GetEncoder()
	e.buf = append(e.buf, byte(id>>8), byte(id), 0, 0, 0, 0)
	e.EncodeArrayLen(nargs)
	return e
}

// ReplyFunc decodes the results of a response and calls the caller's typed
// callback done with them, or with err when the request failed (err is then
// non-nil and results empty). It returns an error wrapping ErrDecode if the
// results do not decode (done is then called with that error). rmigen
// generates one per request; it must not keep results.
type ReplyFunc func(done any, results []byte, err error) error

// RequestConfig sets the limits of a Requests. The zero value of each field
// is its documented default.
type RequestConfig struct {
	// Timeout ends a request that got no response with ErrTimeout
	// (default 5s). Timeouts are found by Tick, and counted from the Tick
	// before the request.
	Timeout time.Duration
	// Retry is how long an unreliable request waits for its response before
	// Tick sends it again, with the same sequence number (default 200ms).
	// Reliable requests are not retried: the transport retransmits them.
	Retry time.Duration
	// MaxOutstanding bounds the requests waiting for a response, per
	// destination (default 64); a request over it fails with
	// ErrTooManyRequests and is not sent.
	MaxOutstanding int
	// ReplyCacheBytes bounds the bytes of the responses kept per peer to
	// answer retried requests (the last ReplyWindow sequence numbers;
	// default 256 KiB). Over it the oldest are dropped, and a retry of one
	// of those is answered StatusStale instead of running twice.
	ReplyCacheBytes int
}

func (c RequestConfig) withDefaults() RequestConfig {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Retry <= 0 {
		c.Retry = 200 * time.Millisecond
	}
	if c.MaxOutstanding <= 0 {
		c.MaxOutstanding = 64
	}
	if c.ReplyCacheBytes <= 0 {
		c.ReplyCacheBytes = 256 << 10
	}
	return c
}

// RequestStats counts what a Requests did.
type RequestStats struct {
	// Sent counts requests sent (first sends, not retries).
	Sent uint64
	// Retried counts requests sent again by Tick.
	Retried uint64
	// Completed counts pending calls that ended with a response.
	Completed uint64
	// TimedOut counts pending calls ended by their timeout.
	TimedOut uint64
	// LinkLost counts pending calls ended by the loss of their link.
	LinkLost uint64
	// Refused counts requests refused with ErrTooManyRequests.
	Refused uint64
	// Unmatched counts responses that matched no pending call (a duplicate
	// answer to a retried request, or one that came after its timeout).
	Unmatched uint64
	// Served counts requests whose handler ran.
	Served uint64
	// Replayed counts retried requests answered from the reply cache,
	// without running the handler.
	Replayed uint64
	// Stale counts requests answered StatusStale: older than the reply
	// window, or whose cached response was dropped for ReplyCacheBytes.
	Stale uint64
}

// Requests carries request/response calls: it numbers the requests a proxy
// sends, keeps them pending until their response, a timeout or the loss of
// the link, retries unreliable ones, and on the receiving side remembers
// recent responses so that a retried request is answered again without
// running its handler twice.
//
// Make one per host: NewRequests(host, cfg). Use it as the Sender of the
// proxies that make requests (it forwards one-way calls to the host), and
// give it to the Dispatcher (Dispatcher.SetRequests) that receives the
// host's messages. On the goroutine that drains the host's events, call
// Dispatcher.DispatchEvent for every event (responses complete pending calls
// there, and a disconnection ends the link's) and Tick once a frame (it
// retries and times out). Callbacks of pending calls run there, on that
// goroutine, never with a lock held. Proxies may be used from any goroutine.
type Requests struct {
	sender  Sender
	csender ContextSender
	cfg     RequestConfig

	mu    sync.Mutex
	links map[net.HostID]*reqLink
	free  []*pending // recycled pending calls
	spare [][]byte   // recycled reply buffers

	// clock is the time of the last Tick (UnixNano), from which new
	// requests count their timeout and retry: reading the clock for every
	// request cost a fifth of a round trip.
	clock atomic.Int64

	// Used by Tick only (the dispatching goroutine).
	due     []*pending
	resends []resend

	sent, retried, completed, timedOut, linkLost, refused, unmatched, served, replayed, stale atomic.Uint64
}

type resend struct {
	to    net.HostID
	how   Context
	frame []byte
}

// ReplyWindow is the span of sequence numbers a callee remembers per peer:
// it knows which of the last ReplyWindow requests (up to the highest
// sequence number it has seen) it ran, and keeps their responses. A caller
// never has requests outstanding whose sequence numbers span more (a new
// request fails with ErrTooManyRequests until the oldest ends), so a retry
// always finds its response, or finds that it has not run yet: no handler
// runs twice.
const ReplyWindow = 256

// reqLink is the request state of one peer: its pending calls (as a caller)
// and the requests it made recently (as a callee).
type reqLink struct {
	nextSeq uint32
	oldest  uint32 // a lower bound of the oldest pending seq (caller)
	pending map[uint32]*pending

	high  uint32                  // highest request seq seen (callee)
	ring  *[ReplyWindow]replySlot // by seq % ReplyWindow; nil before the first request
	bytes int                     // bytes of the responses in ring
}

// replySlot is what a callee knows of request seq.
type replySlot struct {
	seq   uint32
	state uint8 // slotEmpty, slotAnswered, slotDropped
	frame []byte
}

const (
	slotEmpty    = iota // not seen
	slotAnswered        // ran; frame is its response
	slotDropped         // ran; its response was dropped for ReplyCacheBytes
)

type pending struct {
	to       net.HostID
	seq      uint32
	name     string
	how      Context
	frame    []byte // kept for retries of unreliable requests
	deadline int64  // UnixNano
	retryAt  int64
	reply    ReplyFunc
	done     any
}

// NewRequests returns a Requests that sends through s (a *net.Host).
func NewRequests(s Sender, cfg RequestConfig) *Requests {
	r := &Requests{sender: s, cfg: cfg.withDefaults(), links: map[net.HostID]*reqLink{}}
	r.csender, _ = s.(ContextSender)
	r.clock.Store(time.Now().UnixNano())
	return r
}

// Send forwards a one-way call to the Sender, so that a Requests can be the
// Sender of a proxy that has both kinds of call.
func (r *Requests) Send(to net.HostID, d net.Delivery, data []byte) error {
	return r.sender.Send(to, d, data)
}

func (r *Requests) send(to net.HostID, how Context, frame []byte) error {
	if r.csender != nil {
		return r.csender.SendContext(to, how, frame)
	}
	return r.sender.Send(to, how.Delivery(), frame)
}

// Stats returns r's counters.
func (r *Requests) Stats() RequestStats {
	return RequestStats{
		Sent: r.sent.Load(), Retried: r.retried.Load(), Completed: r.completed.Load(),
		TimedOut: r.timedOut.Load(), LinkLost: r.linkLost.Load(), Refused: r.refused.Load(),
		Unmatched: r.unmatched.Load(), Served: r.served.Load(), Replayed: r.replayed.Load(), Stale: r.stale.Load(),
	}
}

// Outstanding returns the number of requests to to that wait for a response.
func (r *Requests) Outstanding(to net.HostID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.links[to]; l != nil {
		return len(l.pending)
	}
	return 0
}

func (r *Requests) linkLocked(id net.HostID) *reqLink {
	l := r.links[id]
	if l == nil {
		l = &reqLink{nextSeq: 1, pending: map[uint32]*pending{}}
		r.links[id] = l
	}
	return l
}

// Pending is a request waiting for its response. Its callback runs once,
// when the response comes, the request times out or its link is lost,
// unless Cancel ends it first.
type Pending struct {
	r   *Requests
	to  net.HostID
	seq uint32
}

// Seq returns the request's sequence number.
func (p Pending) Seq() uint32 { return p.seq }

// Cancel ends the request without calling its callback and reports whether
// it did; false means the callback has run or is about to. A response that
// comes later is counted as unmatched.
func (p Pending) Cancel() bool {
	if p.r == nil {
		return false
	}
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	l := p.r.links[p.to]
	if l == nil {
		return false
	}
	pc, ok := l.pending[p.seq]
	if !ok {
		return false
	}
	delete(l.pending, p.seq)
	p.r.recycleLocked(pc)
	return true
}

func (r *Requests) recycleLocked(p *pending) {
	frame := p.frame[:0]
	*p = pending{frame: frame}
	r.free = append(r.free, p)
}

// Request sends the request frame in e (from StartRequest) to host to the
// way how says, and keeps it pending: reply decodes the response and calls
// done. name ("Global.Method") labels errors. It releases e. On failure
// (ErrTooManyRequests, ErrEncode, ErrSend) nothing stays pending and done is
// not called.
func (p *Proxy) Request(to net.HostID, how Context, e *Encoder, name string, reply ReplyFunc, done any) (Pending, error) {
	r, _ := p.sender.(*Requests)
	id, _, _ := ParseHeader(e.buf)
	fail := func(err error) (Pending, error) {
		PutEncoder(e)
		p.errors.Add(1)
		return Pending{}, &CallError{ID: id, Name: name, Peer: to, Sending: true, Err: err}
	}
	switch {
	case r == nil:
		return fail(ErrNoRequests)
	case e.Err() != nil:
		return fail(e.Err())
	}
	now := r.clock.Load()
	r.mu.Lock()
	l := r.linkLocked(to)
	if len(l.pending) >= r.cfg.MaxOutstanding {
		r.mu.Unlock()
		r.refused.Add(1)
		return fail(ErrTooManyRequests)
	}
	seq := l.nextSeq
	if len(l.pending) == 0 {
		l.oldest = seq
	} else if seq-l.oldest >= ReplyWindow {
		l.oldest = oldestPending(l, seq)
		if seq-l.oldest >= ReplyWindow {
			r.mu.Unlock()
			r.refused.Add(1)
			return fail(ErrTooManyRequests)
		}
	}
	l.nextSeq++
	if l.nextSeq == 0 {
		l.nextSeq = 1
	}
	e.buf[2], e.buf[3], e.buf[4], e.buf[5] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	var pc *pending
	if n := len(r.free); n > 0 {
		pc, r.free = r.free[n-1], r.free[:n-1]
	} else {
		pc = new(pending)
	}
	pc.to, pc.seq, pc.name, pc.how, pc.reply, pc.done = to, seq, name, how, reply, done
	pc.deadline = now + int64(r.cfg.Timeout)
	if !how.Reliable {
		pc.frame = append(pc.frame[:0], e.buf...)
		pc.retryAt = now + int64(r.cfg.Retry)
	}
	l.pending[seq] = pc
	r.mu.Unlock()

	if err := r.send(to, how, e.buf); err != nil {
		(Pending{r, to, seq}).Cancel()
		return fail(fmt.Errorf("%w: %w", ErrSend, err))
	}
	PutEncoder(e)
	r.sent.Add(1)
	return Pending{r, to, seq}, nil
}

// Tick retries the unreliable requests whose response is late and ends
// those past their timeout, calling their callbacks with ErrTimeout. Call it
// once a frame on the goroutine that dispatches events. Requests made
// between two Ticks count their timeout and retry interval from the first:
// a request's timeout is between Timeout and Timeout plus a frame.
func (r *Requests) Tick(t time.Time) {
	now := t.UnixNano()
	if now > r.clock.Load() {
		r.clock.Store(now)
	}
	r.due, r.resends = r.due[:0], r.resends[:0]
	r.mu.Lock()
	for _, l := range r.links {
		for seq, pc := range l.pending {
			switch {
			case now >= pc.deadline:
				delete(l.pending, seq)
				r.due = append(r.due, pc)
			case !pc.how.Reliable && now >= pc.retryAt:
				pc.retryAt = now + int64(r.cfg.Retry)
				// Copy: a Cancel from another goroutine may recycle pc.
				r.resends = append(r.resends, resend{pc.to, pc.how, r.takeSpareLocked(pc.frame)})
			}
		}
	}
	r.mu.Unlock()
	for _, rs := range r.resends {
		if r.send(rs.to, rs.how, rs.frame) == nil {
			r.retried.Add(1)
		}
	}
	r.mu.Lock()
	for _, rs := range r.resends {
		r.putSpareLocked(rs.frame)
	}
	r.mu.Unlock()
	r.finish(r.due, StatusTimeout, &r.timedOut)
}

// finish ends pending calls (already removed from their link) with status s
// and recycles them.
func (r *Requests) finish(ps []*pending, s Status, count *atomic.Uint64) {
	for _, pc := range ps {
		count.Add(1)
		_ = pc.reply(pc.done, nil, &StatusError{Status: s})
	}
	if len(ps) == 0 {
		return
	}
	r.mu.Lock()
	for _, pc := range ps {
		r.recycleLocked(pc)
	}
	r.mu.Unlock()
}

func (r *Requests) takeSpareLocked(b []byte) []byte {
	var s []byte
	if n := len(r.spare); n > 0 {
		s, r.spare = r.spare[n-1], r.spare[:n-1]
	}
	return append(s[:0], b...)
}

// LinkDown ends every request pending on peer with ErrLinkLost and forgets
// the peer's reply cache. Dispatcher.DispatchEvent calls it for an
// EventDisconnected.
func (r *Requests) LinkDown(peer net.HostID) {
	r.mu.Lock()
	l := r.links[peer]
	delete(r.links, peer)
	var ps []*pending
	if l != nil {
		for _, pc := range l.pending {
			ps = append(ps, pc)
		}
		if l.ring != nil {
			for i := range l.ring {
				r.clearSlotLocked(l, &l.ring[i])
			}
		}
	}
	r.mu.Unlock()
	r.finish(ps, StatusLinkLost, &r.linkLost)
}

// complete ends the pending call answered by a response frame's body (after
// the ID). It returns the ReplyFunc's error (a malformed response), and
// whether the response matched a pending call.
func (r *Requests) complete(from net.HostID, body []byte) (matched bool, err error) {
	if len(body) < ResponseHeaderSize-HeaderSize {
		return false, fmt.Errorf("%w: response of %d bytes, shorter than its header", ErrDecode, len(body))
	}
	seq := uint32(body[0])<<24 | uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3])
	status := Status(body[4])
	results := body[5:]
	r.mu.Lock()
	l := r.links[from]
	var pc *pending
	if l != nil {
		pc = l.pending[seq]
	}
	if pc == nil {
		r.mu.Unlock()
		r.unmatched.Add(1)
		return false, nil
	}
	// Recycle first, so that the response takes one lock: the callback
	// only needs reply and done.
	delete(l.pending, seq)
	reply, done := pc.reply, pc.done
	r.recycleLocked(pc)
	r.mu.Unlock()
	r.completed.Add(1)
	switch {
	case !status.onWire():
		err = fmt.Errorf("%w: response status %d is not a wire status", ErrDecode, status)
		_ = reply(done, nil, err)
	case status != StatusOK && len(results) != 0:
		err = fmt.Errorf("%w: %d bytes after a %v status", ErrDecode, len(results), status)
		_ = reply(done, nil, err)
	case status != StatusOK:
		_ = reply(done, nil, &StatusError{Status: status})
	default:
		err = reply(done, results, nil)
	}
	return true, err
}

// oldestPending returns the oldest pending seq of l (serial order), or seq.
func oldestPending(l *reqLink, seq uint32) uint32 {
	oldest := seq
	for s := range l.pending {
		if int32(s-oldest) < 0 {
			oldest = s
		}
	}
	return oldest
}

// cached returns the response to a retried request from peer appended to
// buf: its cached frame, or a StatusStale response if the request is older
// than the window or its response was dropped. It returns nil for a request
// that has not run, which the caller then runs and remembers.
func (r *Requests) cached(from net.HostID, seq uint32, buf []byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.links[from]
	if l == nil || l.ring == nil || int32(seq-l.high) > 0 {
		return nil
	}
	if l.high-seq >= ReplyWindow {
		r.stale.Add(1)
		return append(buf, 0, 0, byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq), byte(StatusStale))
	}
	sl := &l.ring[seq%ReplyWindow]
	switch {
	case sl.seq != seq || sl.state == slotEmpty:
		return nil
	case sl.state == slotAnswered:
		r.replayed.Add(1)
		return append(buf, sl.frame...)
	}
	r.stale.Add(1)
	return append(buf, 0, 0, byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq), byte(StatusStale))
}

// remember records that request seq from peer ran and answered frame,
// moving the window forward if seq is the newest, and dropping the oldest
// responses beyond ReplyCacheBytes.
func (r *Requests) remember(from net.HostID, seq uint32, frame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.linkLocked(from)
	if l.ring == nil {
		l.ring = new([ReplyWindow]replySlot)
		l.high = seq - 1
	}
	if d := seq - l.high; int32(d) > 0 {
		// Forget the requests that leave the window.
		for i := uint32(1); i <= min(d, ReplyWindow); i++ {
			r.clearSlotLocked(l, &l.ring[(l.high+i)%ReplyWindow])
		}
		l.high = seq
	} else if l.high-seq >= ReplyWindow {
		return // cannot happen: cached answered it StatusStale
	}
	sl := &l.ring[seq%ReplyWindow]
	r.clearSlotLocked(l, sl)
	sl.seq, sl.state = seq, slotAnswered
	sl.frame = r.takeSpareLocked(frame)
	l.bytes += len(frame)
	for i := uint32(ReplyWindow - 1); l.bytes > r.cfg.ReplyCacheBytes && i > 0; i-- {
		old := &l.ring[(l.high-i)%ReplyWindow]
		if old.state == slotAnswered && old.seq == l.high-i {
			l.bytes -= len(old.frame)
			r.putSpareLocked(old.frame)
			old.frame, old.state = nil, slotDropped
		}
	}
}

func (r *Requests) clearSlotLocked(l *reqLink, sl *replySlot) {
	if sl.state == slotAnswered {
		l.bytes -= len(sl.frame)
		r.putSpareLocked(sl.frame)
	}
	*sl = replySlot{}
}

// putSpareLocked keeps b for reuse if it is small and few are kept.
func (r *Requests) putSpareLocked(b []byte) {
	if cap(b) <= 4<<10 && len(r.spare) < 256 {
		r.spare = append(r.spare, b[:0])
	}
}
