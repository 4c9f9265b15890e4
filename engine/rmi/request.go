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
	// ReplyCacheBytes bounds the memory (buffer capacity) of the responses
	// kept per peer to answer retried requests (the last ReplyWindow
	// sequence numbers; default 256 KiB). Over it the oldest are dropped,
	// and a retry of one of those is answered StatusStale instead of
	// running twice.
	ReplyCacheBytes int
	// MaxReplays bounds how many times one cached response is sent again
	// to retries of its request (default 16, enough for a caller retrying
	// through 20% loss until its timeout); further retries get nothing.
	// A peer replaying old sequence numbers cannot make the callee send a
	// large response without end.
	MaxReplays int
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
	if c.MaxReplays <= 0 {
		c.MaxReplays = 16
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
	// ReplayDrops counts retried requests not answered because their
	// cached response was sent MaxReplays times already.
	ReplayDrops uint64
	// Busy counts retried requests that came while their handler was still
	// running (a Dispatcher used from several goroutines, or a handler that
	// dispatches) or its deferred answer was pending (CallInfo.Defer): they
	// are not answered, the first answer is on its way.
	Busy uint64
	// Stale counts requests answered StatusStale: older than the reply
	// window, or whose cached response was dropped for ReplyCacheBytes.
	Stale uint64
	// AnswersRefused counts answers to a deferred request that were not
	// sent because it had its answer already (see CallInfo.Defer), or
	// nobody waited for it any more: a Later's answer refused with
	// ErrAnswered, or the return of a handler whose Later answered before
	// it returned.
	AnswersRefused uint64
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

	// clock is the time of the last Tick (UnixNano), from which new
	// requests count their timeout and retry: reading the clock for every
	// request cost a fifth of a round trip.
	clock atomic.Int64
	// defers counts CallInfo.Defer calls: a request's serve takes the lock
	// to settle who answers only if it changed while the handler ran.
	defers atomic.Uint64

	// mu guards everything below except due and resends. Both halves of a
	// link (the pending calls and the reply window) and the counters share
	// it: each step of a round trip takes it once, and counting under it
	// costs nothing where an atomic add per counter cost more than the lock.
	mu    sync.Mutex
	links map[net.HostID]*reqLink
	last  *reqLink   // the link used last: a client talks to one server
	free  []*pending // recycled pending calls
	spare [][]byte   // recycled reply buffers
	encs  []*Encoder // recycled response encoders
	stats RequestStats

	// Used by Tick only (the dispatching goroutine).
	due     []*pending
	resends []resend
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
	id net.HostID

	nextSeq  uint32
	oldest   uint32 // a lower bound of the oldest pending seq (caller)
	npending int
	// pending holds the pending calls by seq % ReplyWindow: the seqs of the
	// pending calls span less than ReplyWindow, so no two share a slot. nil
	// before the first request.
	pending *[ReplyWindow]*pending

	high  uint32                  // highest request seq seen (callee)
	ring  *[ReplyWindow]replySlot // by seq % ReplyWindow; nil before the first request
	bytes int                     // bytes of the responses in ring
}

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
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Outstanding returns the number of requests to to that wait for a response.
func (r *Requests) Outstanding(to net.HostID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.findLocked(to); l != nil {
		return l.npending
	}
	return 0
}

// findLocked returns the link of id, or nil.
func (r *Requests) findLocked(id net.HostID) *reqLink {
	if l := r.last; l != nil && l.id == id {
		return l
	}
	l := r.links[id]
	if l != nil {
		r.last = l
	}
	return l
}

// linkLocked returns the link of id, making it if needed.
func (r *Requests) linkLocked(id net.HostID) *reqLink {
	if l := r.findLocked(id); l != nil {
		return l
	}
	l := &reqLink{id: id, nextSeq: 1}
	r.links[id] = l
	r.last = l
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
	pc := p.r.takePendingLocked(p.to, p.seq)
	if pc == nil {
		return false
	}
	p.r.recycleLocked(pc)
	return true
}

// takePendingLocked removes and returns the pending call seq to to, or nil.
func (r *Requests) takePendingLocked(to net.HostID, seq uint32) *pending {
	l := r.findLocked(to)
	if l == nil || l.pending == nil {
		return nil
	}
	slot := &l.pending[seq%ReplyWindow]
	pc := *slot
	if pc == nil || pc.seq != seq {
		return nil
	}
	*slot = nil
	l.npending--
	return pc
}

func (r *Requests) recycleLocked(p *pending) {
	frame := p.frame[:0]
	*p = pending{frame: frame}
	r.free = append(r.free, p)
}

// nextSeqLocked returns the sequence number of a new request on l, or false
// if l has MaxOutstanding requests pending or a new one would make the
// pending ones span ReplyWindow or more.
func (r *Requests) nextSeqLocked(l *reqLink) (uint32, bool) {
	if l.npending >= r.cfg.MaxOutstanding {
		return 0, false
	}
	seq := l.nextSeq
	if l.npending == 0 {
		l.oldest = seq
	} else if seq-l.oldest >= ReplyWindow {
		l.oldest = l.oldestPending(seq)
		if seq-l.oldest >= ReplyWindow {
			return 0, false
		}
	}
	l.nextSeq++
	if l.nextSeq == 0 {
		l.nextSeq = 1
	}
	return seq, true
}

// oldestPending returns the oldest pending seq of l (serial order), or seq.
func (l *reqLink) oldestPending(seq uint32) uint32 {
	for s := l.oldest; s != seq; s++ {
		if pc := l.pending[s%ReplyWindow]; pc != nil && pc.seq == s {
			return s
		}
	}
	return seq
}

// requestFailed releases e and returns the *CallError of a request that
// was not sent.
func (p *Proxy) requestFailed(to net.HostID, e *Encoder, name string, err error) (Pending, error) {
	id, _, _ := ParseHeader(e.buf)
	PutEncoder(e)
	p.errors.Add(1)
	return Pending{}, &CallError{ID: id, Name: name, Peer: to, Sending: true, Err: err}
}

// Request sends the request frame in e (from StartRequest) to host to the
// way how says, and keeps it pending: reply decodes the response and calls
// done. name ("Global.Method") labels errors. It releases e. On failure
// (ErrTooManyRequests, ErrEncode, ErrSend) nothing stays pending and done is
// not called.
func (p *Proxy) Request(to net.HostID, how Context, e *Encoder, name string, reply ReplyFunc, done any) (Pending, error) {
	r, _ := p.sender.(*Requests)
	switch {
	case r == nil:
		return p.requestFailed(to, e, name, ErrNoRequests)
	case e.err != nil:
		return p.requestFailed(to, e, name, e.err)
	}
	now := r.clock.Load()
	r.mu.Lock()
	l := r.linkLocked(to)
	seq, ok := r.nextSeqLocked(l)
	if !ok {
		r.stats.Refused++
		r.mu.Unlock()
		return p.requestFailed(to, e, name, ErrTooManyRequests)
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
	if l.pending == nil {
		l.pending = new([ReplyWindow]*pending)
	}
	l.pending[seq%ReplyWindow] = pc
	l.npending++
	r.stats.Sent++ // taken back below if the send fails
	r.mu.Unlock()

	if err := r.send(to, how, e.buf); err != nil {
		r.mu.Lock()
		r.stats.Sent--
		if pc := r.takePendingLocked(to, seq); pc != nil {
			r.recycleLocked(pc)
		}
		r.mu.Unlock()
		return p.requestFailed(to, e, name, fmt.Errorf("%w: %w", ErrSend, err))
	}
	PutEncoder(e)
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
		if l.npending == 0 {
			continue
		}
		for i, pc := range l.pending {
			switch {
			case pc == nil:
			case now >= pc.deadline:
				l.pending[i] = nil
				l.npending--
				r.due = append(r.due, pc)
			case !pc.how.Reliable && now >= pc.retryAt:
				pc.retryAt = now + int64(r.cfg.Retry)
				// Copy: a Cancel from another goroutine may recycle pc.
				r.resends = append(r.resends, resend{pc.to, pc.how, r.takeSpareLocked(pc.frame)})
			}
		}
	}
	r.stats.TimedOut += uint64(len(r.due))
	r.mu.Unlock()
	retried := 0
	for _, rs := range r.resends {
		if r.send(rs.to, rs.how, rs.frame) == nil {
			retried++
		}
	}
	r.mu.Lock()
	r.stats.Retried += uint64(retried)
	for _, rs := range r.resends {
		r.putSpareLocked(rs.frame)
	}
	r.mu.Unlock()
	r.finish(r.due, StatusTimeout)
}

// finish ends pending calls (already removed from their link and counted)
// with status s and recycles them.
func (r *Requests) finish(ps []*pending, s Status) {
	for _, pc := range ps {
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

// LinkDown ends every request pending on peer with ErrLinkLost and forgets
// the peer's reply cache. Dispatcher.DispatchEvent calls it for an
// EventDisconnected.
func (r *Requests) LinkDown(peer net.HostID) {
	r.mu.Lock()
	l := r.links[peer]
	delete(r.links, peer)
	if r.last == l {
		r.last = nil
	}
	var ps []*pending
	if l != nil {
		if l.pending != nil {
			for _, pc := range l.pending {
				if pc != nil {
					ps = append(ps, pc)
				}
			}
		}
		if l.ring != nil {
			for i := range l.ring {
				r.clearSlotLocked(l, &l.ring[i])
			}
		}
	}
	r.stats.LinkLost += uint64(len(ps))
	r.mu.Unlock()
	r.finish(ps, StatusLinkLost)
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
	pc := r.takePendingLocked(from, seq)
	if pc == nil {
		r.stats.Unmatched++
		r.mu.Unlock()
		return false, nil
	}
	// Recycle first, so that the response takes one lock: the callback
	// only needs reply and done.
	reply, done := pc.reply, pc.done
	r.recycleLocked(pc)
	r.stats.Completed++
	r.mu.Unlock()
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

func (r *Requests) takeSpareLocked(b []byte) []byte {
	var s []byte
	if n := len(r.spare); n > 0 {
		s, r.spare = r.spare[n-1], r.spare[:n-1]
	}
	return append(s[:0], b...)
}

// putSpareLocked keeps b for reuse if it is small and few are kept.
func (r *Requests) putSpareLocked(b []byte) {
	if cap(b) <= 4<<10 && len(r.spare) < 256 {
		r.spare = append(r.spare, b[:0])
	}
}
