package sync

import (
	"sync/atomic"

	"github.com/skein-dev/skein/engine/net"
)

// dropCounters counts the messages the group layer drops, by the reasons of
// engine/net (the host counts what it drops itself; these are messages the
// host delivered that the group layer refused).
type dropCounters [net.NumDropReasons]atomic.Uint64

// Drops counts the messages this Server or Client dropped, by reason:
//
//   - net.DropMalformed: an empty message, an unknown tag, a group message
//     too short for its group ID or with no payload, a control message that
//     does not decode (short, long, an unknown operation or cipher, more
//     than 8 addresses, a custom field over MaxCustom).
//   - net.DropUnexpected: a well-formed message its sender may not send: a
//     control message from a peer (only the server sends them), a control
//     operation the receiver never takes from that side (a client sending
//     the server a member event, a server sending a client a clock
//     request), or an application message from a client that has not yet
//     announced its addresses (its first message; until then the server
//     has not reported it connected).
//
// Nothing the network sends makes the group layer panic: every message is
// checked before it is read. A Server's counts belong next to its host's
// (Host().Stats().Drops): the match server exports their sum.
func (e *events) Drops() net.DropCounts {
	var d net.DropCounts
	for i := range e.drops {
		d[i] = e.drops[i].Load()
	}
	return d
}

// drop counts a dropped message.
func (e *events) drop(r net.DropReason) { e.drops[r].Add(1) }
