package rmi

import (
	"context"
	"errors"
)

// Helpers for the code rmigen generates (output version 3): the shape that
// every generated method shares lives here once, so that a generated
// method is its own encoding and decoding only. The hot ones (StartArgs,
// StartResults, ReplyError) cost what the code they replace did: a call
// (or none) whose slow path is apart.

// StartArgs reads the header of the msgpack array of a call's arguments,
// which must announce n elements. A stub calls it with handled false when
// the call's function is nil: d then holds ErrNoHandler and decodes nothing
// (every read returns a zero value). Either way, decode the arguments and
// check Finish before calling the function:
//
//	d := rmi.NewDecoder(args)
//	d.StartArgs(2, s.Chat != nil)
//	if a0, a1 := d.DecodeString(), d.DecodeUint32(); d.Finish() == nil {
//		return s.Chat(info, a0, a1)
//	}
//	return d.Err()
func (d *Decoder) StartArgs(n int, handled bool) {
	if handled && n < 16 && d.off < len(d.buf) && d.buf[d.off] == mpFixArray|byte(n) {
		d.off++
		return
	}
	d.startSlow(n, handled, nil)
}

// StartResults reads the header of the msgpack array of the n results of a
// response (a ReplyFunc's results). When err, the ReplyFunc's error, is not
// nil (the request failed), d holds err and decodes nothing: a ReplyFunc
// decodes its results, then takes Finish's error as the request's.
func (d *Decoder) StartResults(n int, err error) {
	if err == nil && n < 16 && d.off < len(d.buf) && d.buf[d.off] == mpFixArray|byte(n) {
		d.off++
		return
	}
	d.startSlow(n, true, err)
}

// startSlow is StartArgs and StartResults for a missing function, an
// error, or a header that is not a fixarray of n.
//
//go:noinline
func (d *Decoder) startSlow(n int, handled bool, err error) {
	switch {
	case !handled:
		d.off, d.err = len(d.buf), ErrNoHandler
	case err != nil:
		d.off, d.err = len(d.buf), err
	default:
		d.arrayHeaderSlow(n)
	}
}

// ReplyError returns err if it wraps ErrDecode (the results of a response
// did not decode), or nil: what a ReplyFunc returns once it has called its
// callback with err.
func ReplyError(err error) error {
	if err == nil {
		return nil
	}
	return decodeError(err)
}

// decodeError is ReplyError's slow path.
//
//go:noinline
func decodeError(err error) error {
	if errors.Is(err, ErrDecode) {
		return err
	}
	return nil
}

// ReplyNone is the ReplyFunc of every request without results: done is its
// callback, a func(error) (or nil).
func ReplyNone(done any, results []byte, err error) error {
	d := NewDecoder(results)
	d.StartResults(0, err)
	err = d.Finish()
	if f, _ := done.(func(error)); f != nil {
		f(err)
	}
	return ReplyError(err)
}

// NoResults ends the serving of a request without results (a RequestStub's
// RMIServe): unless err is set, it writes the empty array of results to e.
// It returns err.
func NoResults(e *Encoder, err error) error {
	if err == nil {
		e.EncodeArrayLen(0)
	}
	return err
}

// Wait sends a request and waits for its answer: the blocking form of a
// generated request method (LoginWait). send makes the request with a
// callback that keeps the results and calls done with the callback's
// error. Wait returns send's error if the request was not sent, ctx.Err()
// if ctx ended first and the request could be cancelled (its callback
// then never runs), or the error given to done. Another goroutine must be
// dispatching the host's events and calling Tick on the Requests.
func Wait(ctx context.Context, send func(done func(error)) (Pending, error)) error {
	c := make(chan struct{})
	var err error
	p, serr := send(func(e error) {
		err = e
		close(c)
	})
	if serr != nil {
		return serr
	}
	select {
	case <-c:
	case <-ctx.Done():
		if p.Cancel() {
			return ctx.Err()
		}
		<-c // the callback has run or is running
	}
	return err
}

// Answer answers l, a deferred request (see CallInfo.Defer), with the
// results that encode writes to e as one msgpack array; a nil encode
// answers a request without results. It is Start, encode and Finish, with
// their errors (ErrAnswered if l's request was answered already). The
// generated AnswerGlobalMethod functions call it.
func (l *Later) Answer(encode func(e *Encoder)) error {
	e, err := l.Start()
	if err != nil {
		return err
	}
	if encode == nil {
		e.EncodeArrayLen(0)
	} else {
		encode(e)
	}
	return l.Finish(e)
}

// DecodeValueAs decodes one value of type T with DecodeValue and returns
// it (the zero T after an error): generated code decodes the arguments and
// results of Go types named by an IDL import line with it.
func DecodeValueAs[T any](d *Decoder) T {
	var v T
	d.DecodeValue(&v)
	return v
}
