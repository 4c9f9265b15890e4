package vnet_test

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// A conn with an IPv4 and an IPv6 address (a dual-stack socket) receives
// on both and sends to each family from its address of that family; IPv6
// passes no IPv4 NAT.
func TestDualStackConn(t *testing.T) {
	n := vnet.New(1)
	defer n.Close()
	if _, err := n.AddNAT(vnet.NATType{Mapping: vnet.AddressPortDependent, Filtering: vnet.AddressPortDependent}, netip.MustParseAddr("198.51.100.1"), netip.MustParsePrefix("10.0.1.0/24")); err != nil {
		t.Fatal(err)
	}
	a, _ := n.Listen(ap("10.0.1.1:5000"))
	if err := a.AddAddr(ap("[2001:db8:a::1]:5000")); err != nil {
		t.Fatal(err)
	}
	v4, _ := n.Listen(ap("192.0.2.1:6000"))
	v6, _ := n.Listen(ap("[2001:db8:b::1]:6000"))
	read := func(c *vnet.Conn) netip.AddrPort {
		t.Helper()
		buf := make([]byte, 16)
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		return from
	}
	a.WriteTo([]byte("4"), v4.LocalAddr())
	if from := read(v4); from.Addr() != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("IPv4 from %v, want the NAT's address", from)
	}
	a.WriteTo([]byte("6"), v6.LocalAddr())
	if from := read(v6); from != ap("[2001:db8:a::1]:5000") {
		t.Fatalf("IPv6 from %v, want the conn's IPv6 address", from)
	}
	v6.WriteTo([]byte("back"), ap("[2001:db8:a::1]:5000"))
	if from := read(a); from != v6.LocalAddr() {
		t.Fatalf("a got a datagram from %v", from)
	}
	if err := v4.AddAddr(ap("[2001:db8:a::1]:5000")); !errors.Is(err, vnet.ErrAddrInUse) {
		t.Fatalf("a taken address: %v", err)
	}
	if err := v4.AddAddr(ap("[::]:1")); err == nil {
		t.Fatal("an unspecified address was added")
	}
	a.Close()
	if _, err := n.Listen(ap("[2001:db8:a::1]:5000")); err != nil {
		t.Fatalf("the address was not freed: %v", err)
	}
	if err := a.AddAddr(ap("[2001:db8:a::2]:5000")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed conn: %v", err)
	}
}
