package rmi

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/skein-dev/skein/engine/net"
)

// ErrDeferred is what a request handler returns after CallInfo.Defer: its
// response is sent later, through the Later. Returned without a Defer, it
// is an internal error (StatusInternalError).
var ErrDeferred = errors.New("rmi: response deferred")

// ErrAnswered is returned by a Later whose request was answered already:
// by the Later itself, or by its handler's return (see CallInfo.Defer); or
// whose request nobody waits for any more (its link went down, or 256
// newer requests of its peer moved the reply window past it).
var ErrAnswered = errors.New("rmi: request already answered")

// Later is a request whose handler answers after it returns: work that
// finishes on another goroutine (a match's, a database's). Until the Later
// answers, retries of the request are neither run nor answered (counted in
// RequestStats.Busy); once it has, they get its response from the reply
// cache like any other. rmigen generates a typed Answer function per
// request (AnswerGlobalMethod(later, results...)) that calls Start and
// Finish; Fail answers with a failure status. A Later answers once, and
// not at all if its handler's return answered first (CallInfo.Defer says
// who answers); it is safe to use from any goroutine.
type Later struct {
	r        *Requests
	to       net.HostID
	how      Context
	seq      uint32
	id       CallID
	answered atomic.Bool
}

// Defer makes the request being served answer later: the handler returns
// ErrDeferred (and zero results), and the work it started answers through
// the returned Later, with the generated AnswerGlobalMethod or Fail, from
// any goroutine. Defer returns nil when info is not that of a request
// being served (a one-way call): check before handing the Later on.
//
// A request is answered exactly once. Once deferred, whichever answers
// first is its answer and the other is not sent:
//
//   - a handler that defers and then returns anything but ErrDeferred (an
//     error, as in an early "return ..., err", or results) answers with
//     that return, as if it had not deferred, and the Later's answers are
//     refused with ErrAnswered;
//   - a Later that answers before its handler returns (from the handler
//     itself, or another goroutine) is the answer, and the handler's return
//     is not sent (a returned error is still Dispatch's error).
//
// Refused answers are counted in RequestStats.AnswersRefused. Call Defer
// in the handler, before it returns, and once: a Later made by a second
// Defer, or by a Defer after the request was answered, answers nothing
// (ErrAnswered).
func (info CallInfo) Defer() *Later {
	if info.reqs == nil {
		return nil
	}
	l := &Later{r: info.reqs, to: info.From, how: info.Context, seq: info.seq, id: info.id}
	info.reqs.deferSlot(l)
	return l
}

// ID returns the call ID of the deferred request.
func (l *Later) ID() CallID { return l.id }

// Start returns an Encoder holding the header of l's response (StatusOK),
// ready for the msgpack array of its results, or ErrAnswered if l's
// request was answered already (by l, or by its handler's return), which
// is counted in RequestStats.AnswersRefused. Pass it to Finish.
func (l *Later) Start() (*Encoder, error) {
	if l == nil {
		return nil, fmt.Errorf("%w: a nil Later (Defer outside a request)", ErrNoRequests)
	}
	if !l.answered.CompareAndSwap(false, true) {
		l.r.mu.Lock()
		l.r.stats.AnswersRefused++
		l.r.mu.Unlock()
		return nil, ErrAnswered
	}
	e := GetEncoder()
	s := l.seq
	e.buf = append(e.buf, 0, 0, byte(s>>24), byte(s>>16), byte(s>>8), byte(s), byte(StatusOK))
	return e, nil
}

// Finish sends the response in e (from Start, with the results appended),
// records it for retries and releases e. A result that could not be encoded
// is answered StatusInternalError and returned as an error wrapping
// ErrEncode; a failed send is an error wrapping ErrSend.
func (l *Later) Finish(e *Encoder) error {
	defer PutEncoder(e)
	err := e.err
	if err != nil {
		e.buf = append(e.buf[:ResponseHeaderSize-1], byte(StatusInternalError))
	}
	if serr := l.r.sendResponse(l.to, l.how, e); serr != nil && err == nil {
		err = fmt.Errorf("%w: response: %w", ErrSend, serr)
	}
	l.r.recordDeferred(l.to, l.seq, e)
	return err
}

// Fail answers l with the failure status err maps to (Fail(StatusRateLimited)
// for StatusRateLimited, an error wrapping ErrDecode for BadArguments, any
// other error for InternalError), or returns ErrAnswered.
func (l *Later) Fail(err error) error {
	e, serr := l.Start()
	if serr != nil {
		return serr
	}
	st := statusOf(err)
	if st == StatusOK {
		st = StatusInternalError
	}
	e.buf[ResponseHeaderSize-1] = byte(st)
	return l.Finish(e)
}

// deferSlot marks the request of l, being served, as deferred and l as
// the Later that may answer it. A request that is not running (deferred
// already, or answered), or that was forgotten while its handler ran (its
// link went down, or the window moved past it), keeps its answer or has
// none: l is made answered, so that it answers nothing.
func (r *Requests) deferSlot(l *Later) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.defers.Add(1)
	if k := r.findLocked(l.to); k != nil && k.ring != nil {
		if sl := &k.ring[l.seq%ReplyWindow]; sl.seq == l.seq && sl.state == slotRunning {
			sl.state, sl.later = slotDeferred, l
			return
		}
	}
	l.answered.Store(true)
}

// handlerAnswers reports whether the return of the handler of request seq
// from peer, which was not ErrDeferred, is its answer. It is called when a
// Defer ran while the handler did: if the request's Later answered (or is
// answering) first, the return is not sent and is counted; otherwise the
// Later is refused from now on.
func (r *Requests) handlerAnswers(from net.HostID, seq uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.findLocked(from)
	if l == nil || l.ring == nil {
		return true
	}
	sl := &l.ring[seq%ReplyWindow]
	switch {
	case sl.seq != seq, sl.state == slotRunning:
		return true // not deferred (or out of the window): as without Defer
	case sl.state == slotDeferred && sl.later.answered.CompareAndSwap(false, true):
		sl.state, sl.later = slotRunning, nil
		return true
	}
	r.stats.AnswersRefused++
	return false
}

// deferred reports whether request seq from peer is deferred (its handler
// called Defer and returned ErrDeferred), or has been answered by its Later
// already.
func (r *Requests) deferred(from net.HostID, seq uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.findLocked(from)
	if l == nil || l.ring == nil {
		return true // the link went down: nothing to answer
	}
	sl := &l.ring[seq%ReplyWindow]
	return sl.seq != seq || sl.state != slotRunning
}

// recordDeferred records a Later's response to request seq (in e), for
// retries: a copy, e goes back to the pool.
func (r *Requests) recordDeferred(from net.HostID, seq uint32, e *Encoder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recordLocked(from, seq, e, false)
}

// sendResponse sends the response in e to a request from to, the way how
// says, and returns the send's error. A response with results that cannot
// be sent (too large for the way the request came, typically) is answered
// StatusInternalError instead, rather than nothing, and e keeps that status
// for the reply cache.
func (r *Requests) sendResponse(to net.HostID, how Context, e *Encoder) error {
	serr := r.send(to, how, e.buf)
	if serr != nil && len(e.buf) > ResponseHeaderSize {
		e.buf = append(e.buf[:ResponseHeaderSize-1], byte(StatusInternalError))
		_ = r.send(to, how, e.buf)
	}
	return serr
}
