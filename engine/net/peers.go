package net

import (
	"fmt"
	"net/netip"
	"time"
)

// Links to other clients, which the server hands out (engine/sync): the
// server tells each side to add or remove a peer; the path starts on the
// relay (relay.go) and hole punching (punch.go) looks for a direct one.

// AddPeer opens a link to another client with keys the server handed out
// (the server gives one peer Keys and the other Keys.Swap()). Datagrams go
// out through path: RelayPath(id) until hole punching finds a direct one.
// An EventConnected for id follows. A link to id that already exists is
// replaced.
func (h *Host) AddPeer(id HostID, keys Keys, path Path) error {
	if id == NoHost || id == ServerID || id == h.ID() {
		return fmt.Errorf("add peer %v: not a peer", id)
	}
	now := time.Now()
	l, err := newLink(h, id, h.ID(), keys, path, now)
	if err != nil {
		return err
	}
	l.confirmed = true
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return ErrHostClosed
	}
	h.addLink(l)
	h.events.Push(Event{Kind: EventConnected, Peer: id, Received: now})
	return nil
}

// RemovePeer drops the link to a peer at once, without telling it (the
// server tells both sides). An EventDisconnected with ErrClosedLocally
// follows.
func (h *Host) RemovePeer(id HostID) {
	if l := h.link(id); l != nil {
		h.removeLink(l, ErrClosedLocally)
	}
}

// RemoteAddr returns the address the link to id currently sends to directly
// (for a server: the client's public address as its NAT maps it).
func (h *Host) RemoteAddr(id HostID) (netip.AddrPort, bool) {
	l := h.link(id)
	if l == nil {
		return netip.AddrPort{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return directAddr(l.path)
}
