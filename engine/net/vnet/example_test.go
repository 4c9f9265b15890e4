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
