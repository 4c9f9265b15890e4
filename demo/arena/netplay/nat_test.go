package netplay

import (
	"net/netip"
	"testing"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/portmap"
)

func TestRelayReason(t *testing.T) {
	sym := net.NATReport{Type: net.NATSymmetric}
	cone := net.NATReport{Type: net.NATEndpointIndependent, PortMapping: net.PortMappingRefused}
	for _, c := range []struct {
		mine, theirs net.NATReport
		bday         net.BirthdayPhase
		last         error
		want         string
	}{
		{cone, sym, net.BirthdayFailed, net.ErrPunchTimeout, "their NAT is symmetric; birthday punching found no path; your router refused port mapping"},
		{cone, sym, net.BirthdayRunning, net.ErrPunchTimeout, "their NAT is symmetric; birthday punching under way; your router refused port mapping"},
		{sym, cone, net.BirthdayWon, net.ErrPathLost, "your NAT is symmetric; the path birthday punching found was lost; retrying; their router refused port mapping"},
		// Birthday punching never started (switched off, no extra
		// sockets, a port mapping on one side): it is not blamed.
		{cone, sym, net.BirthdayNone, net.ErrPunchTimeout, "their NAT is symmetric; birthday punching did not start; your router refused port mapping"},
		{sym, cone, net.BirthdayNone, nil, "your NAT is symmetric; birthday punching did not start; their router refused port mapping"},
		{sym, sym, net.BirthdayNone, nil, "both NATs are symmetric"},
		{net.NATReport{}, sym, net.BirthdayNone, nil, "their NAT is symmetric"},
		{net.NATReport{Type: net.NATUDPBlocked}, cone, net.BirthdayNone, net.ErrUDPBlocked, "your network blocks UDP (you reach the server over TCP); their router refused port mapping"},
		{cone, sym, net.BirthdayFailed, net.ErrForcedRelay, "relay forced (R here, or by the peer)"},
		{net.NATReport{}, net.NATReport{}, net.BirthdayNone, net.ErrPathLost, "the direct path stopped answering; retrying"},
		{net.NATReport{}, net.NATReport{}, net.BirthdayNone, nil, "hole punching in progress"},
	} {
		if got := RelayReason(c.mine, c.theirs, c.bday, c.last); got != c.want {
			t.Errorf("RelayReason(%v, %v, %v, %v) = %q, want %q", c.mine, c.theirs, c.bday, c.last, got, c.want)
		}
	}
}

func TestNATLabel(t *testing.T) {
	r := net.NATReport{Type: net.NATSymmetric, Mapped: netip.MustParseAddrPort("203.0.113.102:40000")}
	if got, want := NATLabel(r, true), "symmetric · public 203.0.113.102:40000"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if got := NATLabel(net.NATReport{}, false); got != "checking…" {
		t.Errorf("not checked: %q", got)
	}
}

func TestPortMapLabel(t *testing.T) {
	if got := PortMapLabel(portmap.Status{State: portmap.Mapped}); got != "" {
		t.Errorf("nothing wrong: %q", got)
	}
	var s portmap.Status
	s.Stats.Drops[portmap.DropNonce] = 2
	s.Stats.Drops[portmap.DropShort] = 1
	s.Stats.Remaps = 1
	if got, want := PortMapLabel(s), " · 3 bad router answers dropped, re-mapped 1× after a router restart"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
