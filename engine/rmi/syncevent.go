package rmi

import (
	"errors"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// DispatchSyncEvent is DispatchEvent for the events of an engine/sync Client
// or Server: it dispatches e if it is a message (e.Kind ==
// sync.EventMessage), with CallInfo.Group set to the group it was sent to,
// and reports whether it was one. An EventDisconnected ends the requests
// pending on its peer (see SetRequests). Call it from the loop that drains
// the Client's or Server's events for every event whose messages are RMI
// frames. An EventBack for a client that restarted and took its session over
// (net.ErrSessionRestarted) ends them too, and forgets the replies kept for
// the old process's retries: the new process numbers its requests from 1
// again.
//
//	client.FrameMove(func(e sync.Event) {
//		if isMsg, err := disp.DispatchSyncEvent(e); isMsg && err != nil {
//			log.Debug("bad call", "from", e.Peer, "error", err)
//		}
//	})
func (d *Dispatcher) DispatchSyncEvent(e sync.Event) (isMessage bool, err error) {
	if e.Kind == sync.EventDisconnected || (e.Kind == sync.EventBack && errors.Is(e.Err, net.ErrSessionRestarted)) {
		d.linkDown(e.Peer)
	}
	if e.Kind != sync.EventMessage {
		return false, nil
	}
	return true, d.Dispatch(SyncCallInfo(e), e.Data)
}

// SyncCallInfo returns the CallInfo of a call that came in message event e
// of engine/sync (User: the caller's user ID, on a server that knows it),
// for a loop that looks at a message before dispatching it (to skip
// another group's traffic, say) and then calls Dispatch.
func SyncCallInfo(e sync.Event) CallInfo {
	return CallInfo{From: e.Peer, Relayed: e.Relayed, Context: ContextOf(e.Delivery), Received: e.Received, Group: e.Group, User: e.User}
}

// NetCallInfo returns the CallInfo of a call that came in message event e
// of engine/net (Group is net.NoHost).
func NetCallInfo(e net.Event) CallInfo {
	ci := CallInfo{From: e.Peer, Relayed: e.Relayed, Context: ContextOf(e.Delivery), Received: e.Received, Group: net.NoHost}
	if e.User != nil {
		ci.User = e.User.ID
	}
	return ci
}

// linkDown ends the requests pending on peer, if d has a Requests.
func (d *Dispatcher) linkDown(peer net.HostID) {
	if r := d.reqs.Load(); r != nil {
		r.LinkDown(peer)
	}
}
