package net

import (
	"context"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventConnected: a link to Peer is up (for a client, Peer is ServerID
	// once Dial succeeds; for a server, a client finished its handshake).
	EventConnected EventKind = iota + 1
	// EventDisconnected: the link to Peer is gone; Err says why (ErrTimeout,
	// ErrClosedByPeer, ErrKicked, ErrShutdown, ErrClosedLocally).
	EventDisconnected
	// EventMessage: Data arrived from Peer.
	EventMessage
	// EventPathChange: traffic with Peer now goes directly (Relayed false,
	// Err nil) or through the relay (Relayed true; Err says why:
	// ErrPunchTimeout, ErrPathLost, ErrForcedRelay, ErrUDPBlocked).
	EventPathChange
	// EventAway: the link to Peer timed out and is suspended for
	// Config.ResumeGrace (Err: ErrTimeout): it keeps its HostID and its
	// reliable streams both ways, and messages sent to Peer meanwhile wait
	// for it (unreliable ones are not sent). EventBack follows if the
	// peer is heard again in time, EventDisconnected (ErrTimeout)
	// otherwise. docs/SEMANTICS.md, "Reconnect and resume".
	EventAway
	// EventBack: the suspended link to Peer resumed (its path moved if
	// the peer came back from a new address); the reliable streams
	// continue where they stopped.
	EventBack
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventMessage:
		return "message"
	case EventPathChange:
		return "path-change"
	case EventAway:
		return "away"
	case EventBack:
		return "back"
	}
	return "unknown"
}

// Event is something that happened on the network, handed to the
// application on its own goroutine (FrameMove, Poll or Next).
type Event struct {
	Kind     EventKind
	Peer     HostID
	Delivery Delivery  // how a message came (EventMessage)
	Data     []byte    // the message; the application owns it
	Relayed  bool      // the message came through the relay; EventPathChange: the new path is the relay
	Received time.Time // when the networking goroutine received it
	Err      error     // why the link went down (EventDisconnected)
	// User is who the peer is, on a server whose Authenticate hook named
	// it: set on EventConnected, EventDisconnected and EventMessage from a
	// client (Host.User gives it for any peer). Shared: do not modify it.
	User *User
}

func isMessage(e Event) bool { return e.Kind == EventMessage }

// eventBytes is what a message costs the event queue's byte budget
// (Config.EventQueueBytes): its data.
func eventBytes(e Event) int { return len(e.Data) }

// Poll returns the oldest waiting event, if any, without blocking.
func (h *Host) Poll() (Event, bool) {
	h.bt.giveBack()
	return h.events.Pop()
}

// Ready returns a channel that has a value when events may be waiting: select
// on it in a loop that also does other work, then drain with Poll.
func (h *Host) Ready() <-chan struct{} {
	h.bt.giveBack()
	return h.events.Ready()
}

// FrameMove hands every waiting event to fn, on the caller's goroutine, and
// returns how many it handled. Call it once per game frame. fn may call any
// Host method.
func (h *Host) FrameMove(fn func(Event)) int {
	h.bt.giveBack()
	return h.events.Drain(fn)
}

// Next blocks until an event arrives, the context ends or the host closes.
//
// On a host whose socket is ListenUDP's, a Next that finds no event waiting
// reads the socket itself (the reader baton, baton.go), so an application
// calling Next in a loop gets each message without a hand-off between
// goroutines: the datagrams are then handled on the caller's goroutine,
// and Config's callbacks (RelayPolicy, GroupMembers, VerifyServerKey) may
// run on it. Next never calls them with a lock of its own held.
func (h *Host) Next(ctx context.Context) (Event, error) {
	if h.bt.conn == nil {
		return h.events.Wait(ctx, h.done, ErrHostClosed)
	}
	return h.next(ctx)
}
