package netplay

import (
	"net/netip"
	"testing"

	"github.com/skein-dev/skein/engine/net"
)

func TestRelayReason(t *testing.T) {
	sym := net.NATReport{Type: net.NATSymmetric}
	cone := net.NATReport{Type: net.NATEndpointIndependent, PortMapping: net.PortMappingRefused}
	for _, c := range []struct {
		mine, theirs net.NATReport
		last         error
		want         string
	}{
		{cone, sym, net.ErrPunchTimeout, "their NAT is symmetric; birthday punching found no path yet; your router refused port mapping"},
		{sym, sym, nil, "both NATs are symmetric"},
		{net.NATReport{}, sym, nil, "their NAT is symmetric"},
		{net.NATReport{Type: net.NATUDPBlocked}, cone, net.ErrUDPBlocked, "your network blocks UDP (you reach the server over TCP); their router refused port mapping"},
		{cone, sym, net.ErrForcedRelay, "relay forced (R here, or by the peer)"},
		{net.NATReport{}, net.NATReport{}, net.ErrPathLost, "the direct path stopped answering; retrying"},
		{net.NATReport{}, net.NATReport{}, nil, "hole punching in progress"},
	} {
		if got := RelayReason(c.mine, c.theirs, c.last); got != c.want {
			t.Errorf("RelayReason(%v, %v, %v) = %q, want %q", c.mine, c.theirs, c.last, got, c.want)
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
