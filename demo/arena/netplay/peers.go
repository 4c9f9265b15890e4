package netplay

import (
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/matchserver"
)

// PeerInfo is one member of the match as the network panel shows it.
type PeerInfo struct {
	ID   net.HostID
	Name string
	// User is the player's user name as the match server knows it (its
	// profile or token; empty when the server does not share users).
	User string
	// Me is this session's own row; Host marks the match's authority.
	Me, Host bool
	// From the link to the peer (zero for Me).
	RTT, Jitter     time.Duration
	LossIn, LossOut float64
	Relayed         bool
	Path            string
	BytesIn         uint64
	BytesOut        uint64
	// Why says why a relayed peer is relayed ("their NAT is symmetric;
	// your router refused port mapping"); empty when direct.
	Why string
}

// Peers returns the match's players with their link statistics, in join
// order.
func (s *Session) Peers() []PeerInfo {
	var out []PeerInfo
	for _, m := range s.members {
		if m == net.ServerID {
			continue
		}
		p := PeerInfo{ID: m, Name: s.PlayerName(m), User: matchserver.DisplayName(s.users[m]), Me: m == s.me, Host: m == s.host}
		if !p.Me {
			var birthday net.BirthdayPhase
			if st, ok := s.client.Host().LinkStats(m); ok {
				p.RTT, p.Jitter, p.LossIn, p.LossOut = st.RTT, st.Jitter, st.LossIn, st.LossOut
				p.Relayed, p.Path = st.Relayed, st.Path
				birthday = st.Birthday
				p.BytesIn, p.BytesOut = st.BytesIn, st.BytesOut
			}
			if p.Relayed {
				// Not known yet: the zero report (NATUnknown), as both return.
				mine, _ := s.client.NAT()
				theirs, _ := s.client.PeerNAT(m)
				p.Why = RelayReason(mine, theirs, birthday, s.relayWhy[m])
			}
		}
		out = append(out, p)
	}
	return out
}

// ServerLink returns the statistics of the link to the server.
func (s *Session) ServerLink() (net.LinkStats, bool) {
	return s.client.Host().LinkStats(net.ServerID)
}

// relayForcer is the knob hole punching will give the engine's Client:
// keep a peer on the relay even when a direct path works.
type relayForcer interface {
	ForceRelay(peer net.HostID, force bool) error
}

// CanForceRelay reports whether the engine offers forcing a peer onto the
// relay (it arrives with hole punching; today every peer is relayed).
func (s *Session) CanForceRelay() bool {
	_, ok := any(s.client).(relayForcer)
	return ok
}

// ForceRelay keeps traffic with peer on the server's relay (or lets it go
// direct again), when the engine supports it.
func (s *Session) ForceRelay(peer net.HostID, force bool) error {
	f, ok := any(s.client).(relayForcer)
	if !ok {
		return errNoForceRelay
	}
	return f.ForceRelay(peer, force)
}

type noForceRelayError struct{}

func (noForceRelayError) Error() string {
	return "forcing the relay needs hole punching in engine/sync (not there yet: every peer is relayed today)"
}

var errNoForceRelay error = noForceRelayError{}

// pollLinks notices path changes the engine did not report as events.
func (s *Session) pollLinks() {
	for _, m := range s.members {
		if m == net.ServerID || m == s.me {
			continue
		}
		st, ok := s.client.Host().LinkStats(m)
		if !ok {
			continue
		}
		prev, known := s.relayed[m]
		s.relayed[m] = st.Relayed
		if known && prev != st.Relayed {
			s.notice(Network, "%s: %s → %s", s.PlayerName(m), pathName(prev), pathName(st.Relayed))
		}
	}
}

// relayChanged reports an engine relay-state event as a toast (changes
// only).
func (s *Session) relayChanged(peer net.HostID, relayed bool, err error) {
	prev, known := s.relayed[peer]
	s.relayed[peer] = relayed
	s.relayWhy[peer] = err
	if !known || prev == relayed {
		return // a new link's first path is no news: the panel shows it
	}
	if err != nil {
		s.notice(Network, "%s: %s → %s (%v)", s.PlayerName(peer), pathName(prev), pathName(relayed), err)
	} else {
		s.notice(Network, "%s: %s → %s", s.PlayerName(peer), pathName(prev), pathName(relayed))
	}
}

func pathName(relayed bool) string {
	if relayed {
		return "relayed"
	}
	return "direct"
}

// awayOrBack tells the player when the connection drops and comes back
// (the engine suspends the session for its grace window and resumes it:
// the match goes on where it was), and when another player's does.
func (s *Session) awayOrBack(e sync.Event) {
	switch e.Kind {
	case sync.EventAway:
		if e.Peer == net.ServerID {
			s.away = true
			s.notice(Warn, "Connection lost… reconnecting")
		}
	case sync.EventBack:
		if e.Peer == net.ServerID {
			s.away = false
			s.notice(Good, "Back online")
		}
	case sync.EventMemberAway:
		if e.Group == s.match && e.Member != s.me {
			s.notice(Network, "%s lost the connection… waiting for them", s.PlayerName(e.Member))
		}
	case sync.EventMemberBack:
		if e.Group == s.match && e.Member != s.me {
			s.notice(Network, "%s is back", s.PlayerName(e.Member))
		}
	default:
		// handle sends only these four kinds here.
	}
}

// Away reports whether the connection to the server is lost and the
// session is waiting to resume.
func (s *Session) Away() bool { return s.away }
