package sync

import (
	"fmt"

	"github.com/skein-dev/skein/engine/net"
)

// noTargetError is Send's error when its target is neither a group this
// side knows nor a host it has a link to. Group and host IDs share one
// space (net.HostID), so the sender cannot tell a group that does not exist
// (or that a client is not in) from a host it cannot reach: the error is
// both ErrNoGroup and net.ErrUnknownPeer to errors.Is.
type noTargetError struct {
	to     net.HostID
	client bool
}

func (e *noTargetError) Error() string {
	if e.client {
		return fmt.Sprintf("skein/sync: send to %v: not a group of this client, the server or a peer in a common group", e.to)
	}
	return fmt.Sprintf("skein/sync: send to %v: no such group, and no client with that ID", e.to)
}

// Is reports ErrNoGroup and net.ErrUnknownPeer.
func (e *noTargetError) Is(target error) bool {
	return target == ErrNoGroup || target == net.ErrUnknownPeer
}

// closedError is Send's error after Close or Shutdown: both ErrClosed and
// net.ErrHostClosed to errors.Is.
type closedError struct{ to net.HostID }

func (e *closedError) Error() string {
	return fmt.Sprintf("skein/sync: send to %v: closed", e.to)
}

// Is reports ErrClosed and net.ErrHostClosed.
func (e *closedError) Is(target error) bool {
	return target == ErrClosed || target == net.ErrHostClosed
}

// closed reports whether Close or Shutdown has finished. It takes no lock.
func (e *events) closed() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}
