package rmi

import (
	"errors"
	"strconv"
)

// Status is the result code every response carries: StatusOK, or why the
// request failed. The runtime sets it; a handler chooses a failure with
// Fail. Application results (an IDL enum such as ResultCode) travel in the
// response's results, after a StatusOK.
type Status uint8

// Statuses on the wire (1-byte, in every response frame).
const (
	// StatusOK means the handler ran and the results follow.
	StatusOK Status = 0
	// StatusUnknownCall means the peer's stub has no such request.
	StatusUnknownCall Status = 1
	// StatusBadArguments means the request's arguments did not decode.
	StatusBadArguments Status = 2
	// StatusRateLimited means the peer refused the request for its rate.
	StatusRateLimited Status = 3
	// StatusInternalError means the handler returned an error (its text is
	// not sent to the caller).
	StatusInternalError Status = 4
	// StatusNotImplemented means the peer has no function for the request
	// (a nil stub field, or an Unimplemented handler).
	StatusNotImplemented Status = 5
	// StatusStale means the request's sequence number is older than the
	// peer's reply cache: it may have run already, and is not run again.
	StatusStale Status = 6
)

// Statuses the caller's side gives a pending call itself; never on the wire.
const (
	// StatusTimeout means no response came within RequestConfig.Timeout.
	StatusTimeout Status = 100
	// StatusLinkLost means the link to the peer went down first.
	StatusLinkLost Status = 101
)

// Sentinel errors of request/response calls. The error a pending call ends
// with is a *StatusError that wraps one of them (or ErrUnknownCall, ErrDecode,
// ErrNotImplemented for those statuses).
var (
	// ErrTimeout: no response within the timeout.
	ErrTimeout = errors.New("rmi: request timed out")
	// ErrLinkLost: the link to the peer went down before the response.
	ErrLinkLost = errors.New("rmi: link lost before the response")
	// ErrRateLimited: the peer refused the request for its rate.
	ErrRateLimited = errors.New("rmi: rate limited")
	// ErrInternal: the peer's handler failed.
	ErrInternal = errors.New("rmi: internal error in the peer's handler")
	// ErrStale: the peer could not tell whether the request already ran.
	ErrStale = errors.New("rmi: request older than the peer's reply cache")
	// ErrTooManyRequests: the destination already has
	// RequestConfig.MaxOutstanding requests waiting; nothing was sent.
	ErrTooManyRequests = errors.New("rmi: too many outstanding requests to the peer")
	// ErrNoRequests: a request was made through a proxy whose Sender is not
	// a *Requests, or received by a Dispatcher with no Requests to answer
	// through.
	ErrNoRequests = errors.New("rmi: no rmi.Requests to carry request/response calls")
)

// String returns the status's name, or "Status(N)".
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusUnknownCall:
		return "UnknownCall"
	case StatusBadArguments:
		return "BadArguments"
	case StatusRateLimited:
		return "RateLimited"
	case StatusInternalError:
		return "InternalError"
	case StatusNotImplemented:
		return "NotImplemented"
	case StatusStale:
		return "Stale"
	case StatusTimeout:
		return "Timeout"
	case StatusLinkLost:
		return "LinkLost"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// onWire reports whether s may appear in a response frame.
func (s Status) onWire() bool { return s <= StatusStale }

// StatusError is how a request failed: a failure status from the peer, or a
// timeout or lost link on this side.
type StatusError struct {
	Status Status
}

// Fail returns an error that makes a request handler answer with status s
// (one of the failure statuses on the wire; StatusRateLimited, typically).
func Fail(s Status) error { return &StatusError{Status: s} }

// Error returns "rmi: request failed: RateLimited".
func (e *StatusError) Error() string { return "rmi: request failed: " + e.Status.String() }

// Unwrap returns the sentinel of e's status (ErrTimeout, ErrLinkLost,
// ErrRateLimited, ErrInternal, ErrStale, ErrUnknownCall, ErrDecode or
// ErrNotImplemented), or nil.
func (e *StatusError) Unwrap() error {
	switch e.Status {
	case StatusUnknownCall:
		return ErrUnknownCall
	case StatusBadArguments:
		return ErrDecode
	case StatusRateLimited:
		return ErrRateLimited
	case StatusInternalError:
		return ErrInternal
	case StatusNotImplemented:
		return ErrNotImplemented
	case StatusStale:
		return ErrStale
	case StatusTimeout:
		return ErrTimeout
	case StatusLinkLost:
		return ErrLinkLost
	default: // StatusOK, or a status this runtime does not know
		return nil
	}
}

// statusOf maps a handler's error to the status of its response.
func statusOf(err error) Status {
	var se *StatusError
	switch {
	case err == nil:
		return StatusOK
	case errors.As(err, &se) && se.Status.onWire() && se.Status != StatusOK:
		return se.Status
	case errors.Is(err, ErrDecode):
		return StatusBadArguments
	case errors.Is(err, ErrNotImplemented), errors.Is(err, ErrNoHandler):
		return StatusNotImplemented
	case errors.Is(err, ErrUnknownCall):
		return StatusUnknownCall
	case errors.Is(err, ErrRateLimited):
		return StatusRateLimited
	}
	return StatusInternalError
}
