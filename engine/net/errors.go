package net

import (
	"errors"
	"fmt"
)

// Disconnect reasons, delivered in EventDisconnected.Err. Test with errors.Is.
var (
	// ErrTimeout: nothing authenticated arrived from the peer for
	// Config.Timeout.
	ErrTimeout = errors.New("skein/net: peer timed out")
	// ErrClosedByPeer: the peer closed the link gracefully (Disconnect),
	// or it is a client that closed its host (Close, Shutdown).
	ErrClosedByPeer = errors.New("skein/net: closed by peer")
	// ErrKicked: the server removed this client (Host.Kick); the
	// *CloseError in EventDisconnected.Err carries the server's message.
	ErrKicked = errors.New("skein/net: kicked")
	// ErrShutdown: the server is shutting down (a client's view), or this
	// host is (its own view of its links).
	ErrShutdown = errors.New("skein/net: shutdown")
	// ErrClosedLocally: this host closed the link (Disconnect).
	ErrClosedLocally = errors.New("skein/net: closed locally")
)

// Dial refusals. Dial's error wraps one of these (see RejectError).
var (
	// ErrVersionMismatch: the server speaks another protocol version.
	ErrVersionMismatch = errors.New("skein/net: protocol version mismatch")
	// ErrServerFull: the server has no room for another client.
	ErrServerFull = errors.New("skein/net: server full")
	// ErrBadCookie: the server did not accept the handshake cookie
	// (expired, or the client's address changed mid-handshake).
	ErrBadCookie = errors.New("skein/net: handshake cookie refused")
	// ErrServerBusy: the server is rate-limiting handshakes; retry later.
	ErrServerBusy = errors.New("skein/net: server busy")
	// ErrHandshakeTimeout: no answer from the server in time.
	ErrHandshakeTimeout = errors.New("skein/net: handshake timed out")
)

// Login refusals: an Authenticate hook returns one (wrapped) to refuse a
// client, and Dial's *RejectError wraps the same one.
var (
	// ErrUnauthorized: the credentials were refused (wrong, missing,
	// forged, replayed, or for another server).
	ErrUnauthorized = errors.New("skein/net: unauthorized")
	// ErrBanned: the user is banned.
	ErrBanned = errors.New("skein/net: banned")
	// ErrExpired: the credentials (a connect token) expired.
	ErrExpired = errors.New("skein/net: credentials expired")
	// ErrAlreadyLoggedIn: the user already has a session and the server
	// refuses a second (Config.DuplicateLogin = SessionRefuse).
	ErrAlreadyLoggedIn = errors.New("skein/net: already logged in")
	// ErrAuthUnavailable: the server could not decide in time (its auth
	// backend is slow or down); retry later.
	ErrAuthUnavailable = errors.New("skein/net: authentication unavailable")
	// ErrSessionReplaced (a disconnect reason): the same user logged in
	// again elsewhere and the server kept the new session
	// (SessionReplace).
	ErrSessionReplaced = errors.New("skein/net: session replaced by a new login")
)

// Send and configuration errors.
var (
	// ErrUnknownPeer: no link to that HostID (and the host is open: after
	// Close the error is ErrHostClosed).
	ErrUnknownPeer = errors.New("skein/net: no link to that host")
	// ErrTooLarge: the message exceeds MaxUnreliable (unreliable) or
	// MaxReliable (reliable).
	ErrTooLarge = errors.New("skein/net: message too large")
	// ErrEmpty: a message must carry at least one byte.
	ErrEmpty = errors.New("skein/net: empty message")
	// ErrSendQueueFull: the link's reliable send queue is at
	// Config.SendQueue segments; the peer is not keeping up.
	ErrSendQueueFull = errors.New("skein/net: send queue full")
	// ErrLinkClosing: the link is closing and takes no new messages.
	ErrLinkClosing = errors.New("skein/net: link closing")
	// ErrHostClosed: the host was closed. Send, SendParts, SendMulti,
	// SendGroup, Disconnect, Kick, Punch, ForceRelay and SetPath return it
	// after Close or Shutdown, whatever the target.
	ErrHostClosed = errors.New("skein/net: host closed")
	// ErrAlreadyConnected: the host already has a server link.
	ErrAlreadyConnected = errors.New("skein/net: already connected to a server")
)

// RejectError is what Dial returns when the server refuses the handshake.
type RejectError struct {
	Reason        error  // ErrVersionMismatch, ErrServerFull, ErrBadCookie, ErrServerBusy, or a login refusal (ErrUnauthorized, ...)
	ServerVersion uint16 // the server's protocol version
}

func (e *RejectError) Error() string {
	if errors.Is(e.Reason, ErrVersionMismatch) {
		return fmt.Sprintf("%v (server speaks v%d, client v%d)", e.Reason, e.ServerVersion, ProtocolVersion)
	}
	return e.Reason.Error()
}

// Unwrap returns the reason, for errors.Is.
func (e *RejectError) Unwrap() error { return e.Reason }

func rejectReason(code byte) error {
	switch code {
	case rejectVersion:
		return ErrVersionMismatch
	case rejectFull:
		return ErrServerFull
	case rejectBadCookie:
		return ErrBadCookie
	case rejectUnauthorized:
		return ErrUnauthorized
	case rejectBanned:
		return ErrBanned
	case rejectExpired:
		return ErrExpired
	case rejectAlreadyLoggedIn:
		return ErrAlreadyLoggedIn
	case rejectAuthUnavailable:
		return ErrAuthUnavailable
	default:
		return ErrServerBusy
	}
}

// CloseError carries the message a peer gave when it closed or kicked.
type CloseError struct {
	Reason  error // ErrClosedByPeer, ErrKicked, ErrShutdown, ...
	Message string
}

func (e *CloseError) Error() string {
	if e.Message == "" {
		return e.Reason.Error()
	}
	return e.Reason.Error() + ": " + e.Message
}

// Unwrap returns the reason, for errors.Is.
func (e *CloseError) Unwrap() error { return e.Reason }

// Close reason codes on the wire (frameClose).
const (
	closeNormal   byte = 1
	closeKicked   byte = 2
	closeShutdown byte = 3
	// closeOverBudget: the sender shed the link (ErrOverBudget).
	closeOverBudget byte = 4
	// closeReplaced: the user logged in again (ErrSessionReplaced).
	closeReplaced byte = 5
)

func closeCode(reason error) byte {
	switch {
	case errors.Is(reason, ErrKicked):
		return closeKicked
	case errors.Is(reason, ErrShutdown):
		return closeShutdown
	case errors.Is(reason, ErrOverBudget):
		return closeOverBudget
	case errors.Is(reason, ErrSessionReplaced):
		return closeReplaced
	}
	return closeNormal
}

func closeReason(code byte) error {
	switch code {
	case closeKicked:
		return ErrKicked
	case closeShutdown:
		return ErrShutdown
	case closeOverBudget:
		return ErrOverBudget
	case closeReplaced:
		return ErrSessionReplaced
	}
	return ErrClosedByPeer
}

// noLink is the error for op on id when the host has no link to id:
// ErrHostClosed once the host is closed (Close took every link down),
// ErrUnknownPeer otherwise. Call it without h.mu.
func (h *Host) noLink(op string, id HostID) error {
	h.mu.RLock()
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return fmt.Errorf("%s %v: %w", op, id, ErrHostClosed)
	}
	return fmt.Errorf("%s %v: %w", op, id, ErrUnknownPeer)
}

// doneClosed reports whether Close or Shutdown has finished: a send on a
// link still listed then says ErrHostClosed. It takes no lock.
func (h *Host) doneClosed() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}
