package sync

import (
	"context"
	"errors"
	"net/netip"
	stdsync "sync"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/portmap"
)

// Why a client has no port mapping (PortMapping's Status.Err with State
// portmap.Off).
var (
	// ErrPortMapOff: ClientConfig.NoPortMap switched port mapping off.
	ErrPortMapOff = errors.New("skein/sync: port mapping switched off")
	// ErrPortMapNotUDP: the client reaches the server over TCP, or its
	// conn is no real UDP socket (an in-process network), or the socket
	// is bound to a loopback address: there is no port for a router to
	// map.
	ErrPortMapNotUDP = errors.New("skein/sync: no UDP socket to map")
)

// clientPortMap is a Client's port mapping: the Mapper, or why none runs,
// and the public address last offered to peers.
type clientPortMap struct {
	mu      stdsync.Mutex
	m       *portmap.Mapper
	off     error
	stopped bool
	offered netip.AddrPort // guarded by mu
}

// startPortMap starts the Mapper once Connect has announced the client's
// LAN candidates (unless switched off or impossible).
func (c *Client) startPortMap() {
	var off error
	switch {
	case c.cfg.NoPortMap:
		off = ErrPortMapOff
	case c.cfg.tcp || !net.IsUDPSocket(c.h.Conn()) || c.h.LocalAddr().Addr().IsLoopback():
		off = ErrPortMapNotUDP
	}
	c.pm.mu.Lock()
	defer c.pm.mu.Unlock()
	if c.pm.stopped || c.pm.m != nil {
		return
	}
	if off != nil {
		c.pm.off = off
		return
	}
	cfg := c.cfg.PortMap
	if cfg.Logger == nil {
		cfg.Logger = c.cfg.Logger
	}
	user := cfg.OnChange
	cfg.OnChange = func(s portmap.Status) {
		c.portMapChanged(s)
		c.natPortMapChanged(s)
		if user != nil {
			user(s)
		}
	}
	c.pm.m = portmap.Start(context.Background(), c.h.LocalAddr().Port(), cfg)
}

// stopPortMap stops the Mapper, which deletes the mapping.
func (c *Client) stopPortMap() {
	c.pm.mu.Lock()
	m := c.pm.m
	c.pm.stopped = true
	c.pm.mu.Unlock()
	if m != nil {
		m.Close() // waits for the Mapper's goroutine: not under pm.mu, which OnChange takes
	}
}

// portMapChanged runs on the Mapper's goroutine: when the mapped public
// address changes (made, moved, lost), the client announces its candidates
// again, with the mapped address last, and the server passes them on to
// its peers (opPeerCandidates).
func (c *Client) portMapChanged(s portmap.Status) {
	var ext netip.AddrPort
	if s.State == portmap.Mapped {
		ext = s.Mapping.External
	}
	c.pm.mu.Lock()
	same := ext == c.pm.offered
	c.pm.offered = ext
	c.pm.mu.Unlock()
	if same || s.State == portmap.Closed {
		return
	}
	addrs := localCandidates(c.h.LocalAddr())
	if ext.IsValid() {
		addrs = append(addrs[:min(len(addrs), maxAddrs-1)], ext)
	}
	b := appendControl(nil, control{Op: opCandidates, Addrs: addrs})
	if err := c.h.Send(net.ServerID, net.Reliable, b); err != nil {
		c.log.Debug("candidates not sent", "error", err)
		return
	}
	c.log.Info("candidates announced", "mapped", ext, "protocol", s.Mapping.Protocol)
}

// PortMapping reports the client's port mapping: whether one is in place
// (Available), which protocol made it and the public address peers are
// offered (Mapping.Protocol, Mapping.External), or why there is none (Err:
// every protocol's failure, or ErrPortMapOff, ErrPortMapNotUDP with State
// portmap.Off). Before Connect it is Pending. Stats counts what the
// Mapper sent and heard: requests, answers, the gateway's announcements and
// restarts, and every datagram it dropped by reason (zero when no Mapper
// runs).
func (c *Client) PortMapping() portmap.Status {
	c.pm.mu.Lock()
	m, off := c.pm.m, c.pm.off
	c.pm.mu.Unlock()
	switch {
	case m != nil:
		return m.Status()
	case off != nil:
		return portmap.Status{State: portmap.Off, Err: off}
	}
	return portmap.Status{State: portmap.Pending}
}

// peerCandidates takes a peer's new candidates from the server: punching
// starts again toward them unless the pair is already direct.
func (c *Client) peerCandidates(ctl control) {
	c.mu.RLock()
	_, ok := c.peers[ctl.Peer]
	c.mu.RUnlock()
	if !ok || c.cfg.tcp {
		c.log.Debug("candidates of a host that is not a peer, or over TCP: ignored", "peer", ctl.Peer)
		return
	}
	if err := c.h.Punch(ctl.Peer, ctl.Addrs); err != nil {
		c.log.Debug("punch toward new candidates", "peer", ctl.Peer, "error", err)
	}
}
