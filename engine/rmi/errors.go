package rmi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/skein-dev/skein/engine/net"
)

// Sentinel errors. Errors returned by this package wrap one of them (test with
// errors.Is) and usually come as a *CallError that names the call.
var (
	// ErrShortFrame means a received frame is too short to hold a call ID.
	ErrShortFrame = errors.New("rmi: frame shorter than a call ID")
	// ErrUnknownCall means no attached stub handles the frame's call ID.
	ErrUnknownCall = errors.New("rmi: unknown call ID")
	// ErrDecode means the frame's arguments are not the msgpack array the
	// call expects (wrong count or type, truncated, trailing bytes, a value
	// out of range).
	ErrDecode = errors.New("rmi: cannot decode arguments")
	// ErrNoHandler means the stub attached for the call has a nil function
	// for it.
	ErrNoHandler = errors.New("rmi: no handler for call")
	// ErrNotImplemented is returned by the Unimplemented<Global>Handler types
	// that rmigen generates, for calls a handler did not override.
	ErrNotImplemented = errors.New("rmi: call not implemented")
	// ErrOverlap means a stub's ID range overlaps a stub already attached.
	ErrOverlap = errors.New("rmi: call ID ranges overlap")
	// ErrEncode means an argument could not be encoded (only Go types that
	// fall back to reflective msgpack can fail).
	ErrEncode = errors.New("rmi: cannot encode arguments")
	// ErrSend means the Sender refused the frame.
	ErrSend = errors.New("rmi: send failed")
)

// CallError describes a failed call: on the sending side, an encoding or
// Sender error; on the receiving side, a frame that could not be dispatched or
// a stub function's error.
type CallError struct {
	// ID is the call ID (0 if the frame was too short to hold one).
	ID CallID
	// Name is "Global.Method", or "" when the ID is unknown.
	Name string
	// Peer is the sender of a received call, or the destination of a sent one.
	Peer net.HostID
	// Sending is true for errors of the sending side (encoding, Sender).
	Sending bool
	// Err is what went wrong; it wraps one of the package's sentinels unless
	// it is the error a stub function returned.
	Err error
}

// Error returns "rmi: Game.Player_Move (call 2000) from 1003: ..." (or "to"
// for the sending side).
func (e *CallError) Error() string {
	call := fmt.Sprintf("call %d", e.ID)
	if e.Name != "" {
		call = fmt.Sprintf("%s (call %d)", e.Name, e.ID)
	}
	dir := "from"
	if e.Sending {
		dir = "to"
	}
	msg := "<nil>"
	if e.Err != nil {
		msg = strings.TrimPrefix(e.Err.Error(), "rmi: ")
	}
	return fmt.Sprintf("rmi: %s %s %v: %s", call, dir, e.Peer, msg)
}

// Unwrap returns e.Err.
func (e *CallError) Unwrap() error { return e.Err }
