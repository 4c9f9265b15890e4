package sync

import (
	"context"
	stdsync "sync"
	"time"

	"github.com/skein-dev/skein/engine/internal/queue"
	"github.com/skein-dev/skein/engine/net"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventConnected: for a Server, a client finished its handshake (Peer);
	// for a Client, it is connected to the server.
	EventConnected EventKind = iota + 1
	// EventDisconnected: the link to Peer is gone; Err says why (see the
	// reasons in engine/net). A client that loses its server also loses
	// all its groups.
	EventDisconnected
	// EventMessage: Data arrived from Peer. Group is the group it was sent
	// to, or NoHost for a message sent to this host alone.
	EventMessage
	// EventMemberJoin: Member joined Group, which now has Count members and
	// the custom field Custom (see the package doc for who gets which).
	EventMemberJoin
	// EventMemberLeave: Member left Group, which now has Count members.
	EventMemberLeave
	// EventHostChange: the server named Host the authority of Group (NoHost
	// when no client member is left).
	EventHostChange
	// EventRelayStateChange: traffic with Peer now goes through the server
	// (Relayed) or directly; Err says why it is relayed (nil when direct).
	EventRelayStateChange
	// EventNATType: the client's NAT check finished (Client.NAT): NAT is
	// the report, Err why the check failed (the report is then partial).
	// Only a Client raises it, once per connection.
	EventNATType
	// EventAway: the link to Peer timed out and is suspended for
	// Net.ResumeGrace (net.EventAway): for a Client, Peer is the server
	// (its groups and peers are kept) or a peer; for a Server, a client
	// (it stays in its groups, the group host role included). Messages
	// sent to it meanwhile wait for it (unreliable ones are not sent).
	// docs/SEMANTICS.md, "Reconnect and resume".
	EventAway
	// EventBack: the suspended link to Peer resumed; the reliable streams
	// continue where they stopped.
	EventBack
	// EventMemberAway: Member of Group lost its link to the server and is
	// suspended: it is still a member (no leave, its host role kept) and
	// comes back (EventMemberBack) or leaves (EventMemberLeave) by the end
	// of the server's grace window.
	EventMemberAway
	// EventMemberBack: Member of Group, away, is back.
	EventMemberBack
)

var kindNames = [...]string{"", "connected", "disconnected", "message", "member-join", "member-leave", "host-change", "relay-state-change", "nat-type", "away", "back", "member-away", "member-back"}

func (k EventKind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return "unknown"
}

// Event is something that happened, handed to the application on its own
// goroutine.
type Event struct {
	Kind     EventKind
	Peer     net.HostID // the other end; the sender of a message
	Group    net.HostID
	Member   net.HostID
	Count    int
	Custom   []byte
	Host     net.HostID
	Delivery net.Delivery
	Data     []byte
	Relayed  bool
	NAT      net.NATReport // EventNATType
	Received time.Time
	Err      error
	// User is a user ID (net.Config.Authenticate): on a Server's
	// EventConnected, EventDisconnected and EventMessage, the client's; on
	// EventMemberJoin, the member's, when the server shares users with
	// group members (ServerConfig.ShareUsers; empty otherwise, and for the
	// server as a member).
	User string
}

func isMessage(e Event) bool { return e.Kind == EventMessage }

// events is the application side shared by Client and Server: a bounded
// queue filled by the owner goroutine, and that goroutine's lifecycle.
type events struct {
	q      *queue.Queue[Event]
	resume chan struct{}
	done   chan struct{}
	h      *net.Host
	wg     stdsync.WaitGroup
	once   stdsync.Once
	drops  dropCounters
}

// shutdown closes the host gracefully within ctx, then stops the owner
// goroutine and waits for it.
func (e *events) shutdown(ctx context.Context) error {
	err := e.h.Shutdown(ctx)
	e.once.Do(func() { close(e.done) })
	e.wg.Wait()
	return err
}

// closeTimeout bounds Close.
const closeTimeout = 3 * time.Second

func (e *events) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return e.shutdown(ctx)
}

// newEvents returns the application queue: at most limit messages, and
// (net.Config.EventQueueBytes, the same default and minimum) bytes of
// them.
func newEvents(limit, bytes int) *events {
	if bytes <= 0 {
		bytes = net.DefaultEventQueueBytes
	}
	e := &events{resume: make(chan struct{}, 1), done: make(chan struct{})}
	e.q = queue.New(limit, isMessage, func() {
		select {
		case e.resume <- struct{}{}:
		default:
		}
	})
	e.q.SetByteLimit(max(bytes, net.MinEventQueueBytes), func(ev Event) int { return len(ev.Data) })
	return e
}

// Poll returns the oldest waiting event, if any, without blocking.
func (e *events) Poll() (Event, bool) { return e.q.Pop() }

// Ready has a value when events may be waiting.
func (e *events) Ready() <-chan struct{} { return e.q.Ready() }

// FrameMove hands every waiting event to fn on the caller's goroutine and
// returns how many it handled. Call it once per game frame.
func (e *events) FrameMove(fn func(Event)) int { return e.q.Drain(fn) }

// Next blocks until an event arrives, ctx ends or the owner closes.
func (e *events) Next(ctx context.Context) (Event, error) {
	return e.q.Wait(ctx, e.done, net.ErrHostClosed)
}

// hasRoom reports whether the application queue has room for one more
// message of any size (net.MaxReliable bytes): the owner takes the next
// net event only then, so the queue stays within its byte limit.
func (e *events) hasRoom() bool { return e.q.Room() > 0 && e.q.RoomBytes() >= net.MaxReliable }

// pump moves net events to handle while the application queue has room.
func (e *events) pump(h *net.Host, handle func(net.Event)) {
	for e.hasRoom() {
		ev, ok := h.Poll()
		if !ok {
			return
		}
		handle(ev)
	}
}

// readyIfRoom returns h's ready channel when the application queue has
// room, nil (never ready) otherwise: the owner stops taking net events
// while the application is behind, and the net layer's own backpressure
// takes over.
func (e *events) readyIfRoom(h *net.Host) <-chan struct{} {
	if e.hasRoom() {
		return h.Ready()
	}
	return nil
}

// message turns a net message carrying an application tag into an Event.
// It reports false for anything malformed: empty, an unknown tag, a group
// message shorter than its header, or no payload.
func message(ev net.Event) (Event, bool) {
	out := Event{Kind: EventMessage, Peer: ev.Peer, Delivery: ev.Delivery, Relayed: ev.Relayed, Received: ev.Received}
	if len(ev.Data) == 0 {
		return out, false
	}
	switch ev.Data[0] {
	case tagUser:
		out.Data = ev.Data[1:]
	case tagGroup:
		if len(ev.Data) < 5 {
			return out, false
		}
		out.Group = net.HostID(uint32(ev.Data[1]) | uint32(ev.Data[2])<<8 | uint32(ev.Data[3])<<16 | uint32(ev.Data[4])<<24)
		out.Data = ev.Data[5:]
	default:
		return out, false
	}
	return out, len(out.Data) > 0
}

func groupHead(g net.HostID) [5]byte {
	return [5]byte{tagGroup, byte(g), byte(g >> 8), byte(g >> 16), byte(g >> 24)}
}

var userHead = []byte{tagUser}
