package vnet_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// Two conns exchange a datagram over a link with 20 ms of latency. In a test,
// wrap the body in synctest.Test so that the delay costs no wall time.
func Example() {
	n := vnet.New(1) // the seed makes loss, jitter, etc. reproducible
	defer n.Close()
	n.SetConditions(vnet.Conditions{Delay: 20 * time.Millisecond})

	server, _ := n.Listen(netip.MustParseAddrPort("10.0.0.1:7777"))
	client, _ := n.Listen(netip.MustParseAddrPort("10.0.0.2:0")) // any free port

	client.WriteTo([]byte("hello"), server.LocalAddr())

	buf := make([]byte, 1500)
	m, from, _ := server.ReadFrom(buf)
	fmt.Printf("%s from %v\n", buf[:m], from)
	server.WriteTo([]byte("welcome"), from)

	m, from, _ = client.ReadFrom(buf)
	fmt.Printf("%s from %v\n", buf[:m], from)
	fmt.Printf("delivered %d\n", n.Stats().Delivered)
	// Output:
	// hello from 10.0.0.2:49152
	// welcome from 10.0.0.1:7777
	// delivered 2
}

// A dual-stack host: one conn with an IPv4 address behind a NAT and a
// global IPv6 address, which sends to each family from its own address.
func ExampleConn_AddAddr() {
	n := vnet.New(1)
	defer n.Close()
	n.AddNAT(vnet.NATType{}, netip.MustParseAddr("198.51.100.1"), netip.MustParsePrefix("10.0.0.0/24"))

	host, _ := n.Listen(netip.MustParseAddrPort("10.0.0.2:5000"))
	host.AddAddr(netip.MustParseAddrPort("[2001:db8::2]:5000"))
	v4, _ := n.Listen(netip.MustParseAddrPort("192.0.2.1:7000"))
	v6, _ := n.Listen(netip.MustParseAddrPort("[2001:db8::1]:7000"))

	buf := make([]byte, 1500)
	host.WriteTo([]byte("over IPv4"), v4.LocalAddr())
	m, from, _ := v4.ReadFrom(buf)
	fmt.Printf("%s from %v\n", buf[:m], from)
	host.WriteTo([]byte("over IPv6"), v6.LocalAddr())
	m, from, _ = v6.ReadFrom(buf)
	fmt.Printf("%s from %v\n", buf[:m], from)
	// Output:
	// over IPv4 from 198.51.100.1:20000
	// over IPv6 from [2001:db8::2]:5000
}
