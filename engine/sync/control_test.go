package sync

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/skein-dev/skein/engine/net"
)

func controlSeeds() []control {
	return []control{
		{Op: opPeerAdd, Peer: 1001, Keys: aesKeys(), Addrs: []netip.AddrPort{netip.MustParseAddrPort("10.1.0.11:5000"), netip.MustParseAddrPort("[2001:db8::1]:9")}},
		{Op: opPeerAdd, Peer: 1002, Keys: chachaKeys()},
		{Op: opPeerRemove, Peer: 1003},
		{Op: opMemberJoin, Group: 5000, Member: 1001, Count: 3, Custom: []byte("mode=ctf")},
		{Op: opMemberJoin, Group: 5000, Member: 1001, Count: 1},
		{Op: opMemberJoin, Group: 5000, Member: 1002, Count: 2, Custom: []byte("x"), User: "alice"},
		{Op: opMemberLeave, Group: 5000, Member: 1002, Count: 2},
		{Op: opHostChange, Group: 5000, Host: 1004},
		{Op: opTimeReq, T1: 123456789},
		{Op: opTimeResp, T1: -5, T2: 1 << 62},
		{Op: opCandidates, Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.5:7000")}},
		{Op: opMemberAway, Group: 5000, Member: 1002},
		{Op: opMemberBack, Group: 5000, Member: 1002},
		{Op: opNATReport, NAT: net.NATReport{Type: net.NATSymmetric, Mapping: net.AddressPortDependent, Filtering: net.AddressPortDependent, PortMapping: net.PortMappingRefused}},
		{Op: opNATReport, NAT: net.NATReport{Type: net.NATEndpointIndependent, Mapping: net.EndpointIndependent, Filtering: net.AddressDependent, Hairpin: true}},
		{Op: opPeerNAT, Peer: 1005, NAT: net.NATReport{Type: net.NATUDPBlocked}},
		{Op: opPeerCandidates, Peer: 1005, Addrs: []netip.AddrPort{netip.MustParseAddrPort("10.1.0.11:5000"), netip.MustParseAddrPort("203.0.113.101:5000")}},
		{Op: opPeerCandidates, Peer: 1006},
	}
}

func TestControlRoundTrip(t *testing.T) {
	for _, c := range controlSeeds() {
		b := appendControl(nil, c)
		if b[0] != tagControl {
			t.Fatal("tag missing")
		}
		got, err := parseControl(b[1:])
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if c.Custom == nil && got.Custom != nil && len(got.Custom) == 0 {
			got.Custom = nil
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip: got %+v, want %+v", got, c)
		}
	}
	// A member join whose user ID is over net.MaxUserID bytes (the length
	// byte allows up to 255).
	longUser := appendControl(nil, control{Op: opMemberJoin, Group: 5000, Member: 1002, Count: 2, User: strings.Repeat("u", net.MaxUserID+1)})[1:]
	for _, bad := range [][]byte{nil, {0}, {99}, {opPeerRemove, 1, 2}, {opPeerRemove, 1, 2, 3, 4, 5}, {opPeerAdd},
		{opNATReport, 1, 1, 1}, {opNATReport, 9, 0, 0, 0}, {opNATReport, 1, 4, 0, 0}, {opNATReport, 1, 1, 1, 6}, {opPeerNAT, 1, 0, 0, 0, 1, 1, 1},
		longUser} {
		if _, err := parseControl(bad); err == nil {
			t.Fatalf("%x accepted", bad)
		}
	}
}

// FuzzControl: parseControl never panics, and what it accepts re-encodes to
// the same bytes.
func FuzzControl(f *testing.F) {
	for _, c := range controlSeeds() {
		f.Add(appendControl(nil, c)[1:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseControl(b)
		if err != nil {
			return
		}
		re := appendControl(nil, c)[1:]
		if c.Op == opPeerAdd || c.Op == opCandidates || c.Op == opPeerCandidates {
			// Addresses are normalised (IPv4-mapped unmapped): compare after a
			// second round.
			c2, err := parseControl(re)
			if err != nil || !bytes.Equal(appendControl(nil, c2)[1:], re) {
				t.Fatalf("peer add does not settle: %x", b)
			}
			return
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("re-encoded %x, input %x", re, b)
		}
	})
}

func aesKeys() net.Keys {
	k := net.NewKeys()
	k.Cipher = net.AES256GCM
	return k
}

func chachaKeys() net.Keys {
	k := net.NewKeys()
	k.Cipher = net.ChaCha20Poly1305
	return k
}
