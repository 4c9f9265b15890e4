package netplay

import (
	"errors"
	"fmt"
	"strings"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/portmap"
)

// NAT returns this player's NAT report, once the engine's check has
// finished.
func (s *Session) NAT() (net.NATReport, bool) { return s.client.NAT() }

// PortMapping returns this player's port mapping (engine/sync's
// Client.PortMapping), with its counters.
func (s *Session) PortMapping() portmap.Status { return s.client.PortMapping() }

// PortMapLabel says, for the network panel's NAT line, what went wrong
// between this player's port mapper and the router: the answers it
// dropped and the router restarts it noticed. Empty when nothing did.
func PortMapLabel(s portmap.Status) string {
	var parts []string
	if n := s.Stats.Dropped(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d bad router answers dropped", n))
	}
	if n := max(s.Stats.GatewayResets, s.Stats.Remaps); n > 0 {
		parts = append(parts, fmt.Sprintf("re-mapped %d× after a router restart", n))
	}
	if len(parts) == 0 {
		return ""
	}
	return " · " + strings.Join(parts, ", ")
}

// NATLabel describes a NAT report for the network panel.
func NATLabel(r net.NATReport, ok bool) string {
	if !ok {
		return "checking…"
	}
	var b strings.Builder
	switch r.Type {
	case net.NATPublic:
		b.WriteString("none (public address)")
	case net.NATEndpointIndependent:
		b.WriteString("cone (endpoint-independent)")
	case net.NATSymmetric:
		b.WriteString("symmetric")
	case net.NATUDPBlocked:
		b.WriteString("UDP blocked (TCP to the server)")
	default:
		b.WriteString("unknown (no second server port answered, or the check failed)")
	}
	if r.Mapped.IsValid() && r.Type != net.NATPublic {
		b.WriteString(" · public " + r.Mapped.String())
	}
	if r.Hairpin {
		b.WriteString(" · hairpins")
	}
	switch r.PortMapping {
	case net.PortMappingAvailable:
		b.WriteString(" · port mapping available")
	case net.PortMappingRefused:
		b.WriteString(" · port mapping refused")
	case net.PortMappingUnknown:
	}
	return b.String()
}

// RelayReason says, for the network panel, why a peer is relayed: from
// this player's NAT report (mine), the peer's (theirs; zero values when
// not known), how far birthday punching got on the link (bday,
// net.LinkStats.Birthday) and the reason of the last move onto the relay
// (last). Birthday punching is named only when it ran.
func RelayReason(mine, theirs net.NATReport, bday net.BirthdayPhase, last error) string {
	var why []string
	switch {
	case errors.Is(last, net.ErrForcedRelay):
		return "relay forced (R here, or by the peer)"
	case mine.Type == net.NATUDPBlocked || errors.Is(last, net.ErrUDPBlocked):
		why = append(why, "your network blocks UDP (you reach the server over TCP)")
	case theirs.Type == net.NATUDPBlocked:
		why = append(why, "their network blocks UDP")
	case mine.Type == net.NATSymmetric && theirs.Type == net.NATSymmetric:
		why = append(why, "both NATs are symmetric")
	case theirs.Type == net.NATSymmetric && mine.Type == net.NATEndpointIndependent:
		why = append(why, "their NAT is symmetric", birthdayWhy(bday))
	case mine.Type == net.NATSymmetric && theirs.Type == net.NATEndpointIndependent:
		why = append(why, "your NAT is symmetric", birthdayWhy(bday))
	case theirs.Type == net.NATSymmetric:
		why = append(why, "their NAT is symmetric")
	case mine.Type == net.NATSymmetric:
		why = append(why, "your NAT is symmetric")
	case errors.Is(last, net.ErrPathLost):
		why = append(why, "the direct path stopped answering; retrying")
	case errors.Is(last, net.ErrPunchTimeout):
		why = append(why, "hole punching timed out; retrying")
	default:
		why = append(why, "hole punching in progress")
	}
	if mine.PortMapping == net.PortMappingRefused {
		why = append(why, "your router refused port mapping")
	}
	if theirs.PortMapping == net.PortMappingRefused {
		why = append(why, "their router refused port mapping")
	}
	return strings.Join(why, "; ")
}

// birthdayWhy says what birthday punching did for a pair of a symmetric
// and an endpoint-independent NAT.
func birthdayWhy(p net.BirthdayPhase) string {
	switch p {
	case net.BirthdayRunning:
		return "birthday punching under way"
	case net.BirthdayWon:
		return "the path birthday punching found was lost; retrying"
	case net.BirthdayFailed:
		return "birthday punching found no path"
	case net.BirthdayNone:
	}
	return "birthday punching did not start"
}
