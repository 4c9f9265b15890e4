package net

import (
	"net/netip"
	"testing"
)

// The uplink budget charges each direct datagram the IP and UDP headers of
// the path it takes: 28 bytes to an IPv4 peer (IPv4-mapped addresses on a
// dual-stack socket included), 48 to an IPv6 one.
func TestUplinkCostCountsIPv6Headers(t *testing.T) {
	const n = 100
	body := n + dataHeaderSize + sealOverhead + frameHeader + kcpOverheadEstimate
	for _, c := range []struct {
		addr string
		want int
	}{
		{"203.0.113.7:4000", body + 28},
		{"[::ffff:203.0.113.7]:4000", body + 28},
		{"[2001:db8::7]:4000", body + 48},
		{"[fe80::1%eth0]:4000", body + 48},
	} {
		if got := directDatagramCost(netip.MustParseAddrPort(c.addr), n); got != c.want {
			t.Errorf("%s: cost %d, want %d", c.addr, got, c.want)
		}
	}
}
