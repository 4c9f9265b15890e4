package sync

import (
	"github.com/skein-dev/skein/engine/net"
)

// maxCandidateUpdates bounds how many times the server re-announces one
// client's changed candidates to its peers (a mapping made, renewed at
// another address, lost): each update costs a message to every peer, so a
// client that keeps changing its list cannot make the server send without
// bound. Later changes are still kept for the groups the client joins next.
const maxCandidateUpdates = 16

// candidatesChanged tells every peer of client id (every client it shares
// a group with) where id may now be reached (opPeerCandidates), on the
// server's loop goroutine.
func (s *Server) candidatesChanged(id net.HostID) {
	if s.updates == nil {
		s.updates = make(map[net.HostID]int)
	}
	if s.updates[id] >= maxCandidateUpdates {
		s.log.Debug("candidate update kept but not re-announced: too many", "client", id)
		return
	}
	s.updates[id]++
	s.mu.RLock()
	var peers []net.HostID
	for k, n := range s.pairs {
		switch {
		case n <= 0:
		case k.lo == id:
			peers = append(peers, k.hi)
		case k.hi == id:
			peers = append(peers, k.lo)
		}
	}
	s.mu.RUnlock()
	s.log.Debug("client candidates changed", "client", id, "candidates", s.lan[id], "peers", len(peers))
	for _, p := range peers {
		if p == net.ServerID {
			continue
		}
		s.control(p, control{Op: opPeerCandidates, Peer: id, Addrs: s.candidates(id, p)})
	}
}
