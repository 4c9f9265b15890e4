package vnet_test

import (
	"testing"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// BenchmarkVnetPingPong measures a round trip on a perfect link: one
// goroutine echoes every datagram back.
func BenchmarkVnetPingPong(b *testing.B) {
	n := vnet.New(1)
	defer n.Close()
	a, err := n.Listen(ap("10.0.0.1:1"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := n.Listen(ap("10.0.0.2:1"))
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			m, from, err := e.ReadFrom(buf)
			if err != nil {
				return
			}
			e.WriteTo(buf[:m], from)
		}
	}()
	msg := make([]byte, 100)
	buf := make([]byte, 1500)
	b.SetBytes(int64(2 * len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		a.WriteTo(msg, e.LocalAddr())
		if _, _, err := a.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}
