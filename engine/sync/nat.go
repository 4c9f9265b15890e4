package sync

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/portmap"
)

// NAT types (docs/SEMANTICS.md, "NAT type"). Once connected, a Client
// checks what NAT it is behind (net.Host.DetectNAT, against the server's
// alternate endpoints), raises EventNATType and tells the server, which
// counts the types (Server.NATCounts) and passes each client's type on to
// the peers it shares a group with (Client.PeerNAT): a peer pair decides
// its punching strategy from them, and a game can say why a peer is
// relayed.

// natCheckTimeout bounds the background NAT check.
const natCheckTimeout = 10 * time.Second

// checkNAT runs on its own goroutine after Connect.
func (c *Client) checkNAT() {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), natCheckTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var r net.NATReport
	var err error
	if c.cfg.tcp {
		r = net.NATReport{Type: net.NATUDPBlocked}
	} else {
		r, err = c.h.DetectNAT(ctx)
	}
	if ctx.Err() != nil && c.closed() {
		return
	}
	r.PortMapping = portMappingState(c.PortMapping())
	if err != nil {
		c.log.Debug("NAT check", "error", err)
	} else {
		c.log.Info("NAT type", "nat", r.String())
	}
	c.mu.Lock()
	c.nat = &r
	peers := make(map[net.HostID]net.NATReport, len(c.peerNAT))
	maps.Copy(peers, c.peerNAT)
	c.mu.Unlock()
	c.q.Push(Event{Kind: EventNATType, Peer: net.ServerID, NAT: r, Err: err, Received: time.Now()})
	for p, pr := range peers {
		c.setPeerNAT(p, r, pr)
	}
	if err != nil {
		return
	}
	c.sendNATReport(r)
}

// sendNATReport tells the server this client's NAT report.
func (c *Client) sendNATReport(r net.NATReport) {
	if err := c.h.Send(net.ServerID, net.Reliable, appendControl(nil, control{Op: opNATReport, NAT: r})); err != nil {
		c.log.Debug("NAT report not sent", "error", err)
	}
}

// portMappingState is what a NAT report says of a port-mapping status.
func portMappingState(s portmap.Status) net.PortMapping {
	switch s.State {
	case portmap.Mapped:
		return net.PortMappingAvailable
	case portmap.Unavailable:
		return net.PortMappingRefused
	case portmap.Pending, portmap.Off, portmap.Closed:
	}
	return net.PortMappingUnknown
}

// natPortMapChanged updates the NAT report when the port mapping's state
// changes after the check: the client raises EventNATType again and tells
// the server, which tells its peers.
func (c *Client) natPortMapChanged(s portmap.Status) {
	pm := portMappingState(s)
	c.mu.Lock()
	if c.nat == nil || c.nat.PortMapping == pm || s.State == portmap.Closed {
		c.mu.Unlock()
		return
	}
	r := *c.nat
	r.PortMapping = pm
	c.nat = &r
	c.mu.Unlock()
	c.q.Push(Event{Kind: EventNATType, Peer: net.ServerID, NAT: r, Received: time.Now()})
	c.sendNATReport(r)
}

// NAT returns this client's NAT report, once its check has finished
// (EventNATType); false before.
func (c *Client) NAT() (net.NATReport, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.nat == nil {
		return net.NATReport{}, false
	}
	return *c.nat, true
}

// PeerNAT returns the NAT report of a peer, as the peer gave it to the
// server; false while it is not known (not checked yet, or not a peer).
func (c *Client) PeerNAT(peer net.HostID) (net.NATReport, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.peerNAT[peer]
	return r, ok
}

// peerNATReport records a peer's NAT report from the server.
func (c *Client) peerNATReport(peer net.HostID, r net.NATReport) {
	c.mu.Lock()
	_, isPeer := c.peers[peer]
	if isPeer {
		c.peerNAT[peer] = r
	}
	mine := c.nat
	c.mu.Unlock()
	if !isPeer {
		c.drop(net.DropUnexpected)
		c.log.Debug("NAT type of a host that is no peer", "peer", peer)
		return
	}
	if mine != nil {
		c.setPeerNAT(peer, *mine, r)
	}
}

// setPeerNAT gives the host both NAT types of a pair: a symmetric NAT
// facing an endpoint-independent one starts birthday punching, unless one
// side has a port mapping (its mapped address is a candidate that plain
// punching reaches: the thousands of birthday probes would be wasted).
func (c *Client) setPeerNAT(peer net.HostID, mine, theirs net.NATReport) {
	if mine.PortMapping == net.PortMappingAvailable || theirs.PortMapping == net.PortMappingAvailable {
		return
	}
	if err := c.h.SetPeerNAT(peer, mine.Type, theirs.Type); err != nil {
		c.log.Debug("peer NAT", "peer", peer, "error", err)
	}
}

// natReport records a client's NAT report and passes it on to its peers.
// Called on the loop goroutine.
func (s *Server) natReport(from net.HostID, r net.NATReport) {
	if _, ready := s.memberOf[from]; !ready {
		s.drop(net.DropUnexpected)
		return
	}
	s.mu.Lock()
	s.nat[from] = r
	s.mu.Unlock()
	s.log.Debug("client NAT type", "client", from, "nat", r.String())
	var told []net.HostID
	for _, g := range s.groupsOf(from) {
		for _, m := range s.groups[g].members {
			if m != from && m != net.ServerID && !slices.Contains(told, m) {
				told = append(told, m)
				s.tellNAT(m, from)
			}
		}
	}
}

// tellNAT sends to the NAT report of peer, if known.
func (s *Server) tellNAT(to, peer net.HostID) {
	s.mu.RLock()
	r, ok := s.nat[peer]
	s.mu.RUnlock()
	if ok {
		s.control(to, control{Op: opPeerNAT, Peer: peer, NAT: r})
	}
}

// forgetNAT drops a client's NAT report once it is gone.
func (s *Server) forgetNAT(id net.HostID) {
	s.mu.Lock()
	delete(s.nat, id)
	s.mu.Unlock()
}

// NATCounts returns how many connected clients reported each NAT type
// (indexed by net.NATType; clients that have not reported are not
// counted).
func (s *Server) NATCounts() [net.NumNATTypes]int {
	var n [net.NumNATTypes]int
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.nat {
		n[r.Type]++
	}
	return n
}

// AddNATProbeConn gives the server an alternate endpoint (a second port,
// or a second address) for its clients' NAT-type checks; see
// net.Host.AddProbeConn. The server owns pc from now on.
func (s *Server) AddNATProbeConn(pc net.PacketConn) error { return s.h.AddProbeConn(pc) }
