package net

import (
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// TestOversizeDatagramDropped: a datagram over MaxDatagram is dropped and
// counted at the demux, before any other check.
func TestOversizeDatagramDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		sconn, _ := n.Listen(netip.MustParseAddrPort("10.0.0.1:7000"))
		cconn, _ := n.Listen(netip.MustParseAddrPort("10.0.0.2:5000"))
		srv, err := NewHost(sconn, Config{Accept: true})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		for _, size := range []int{MaxDatagram + 1, 1936, 9000} {
			b := make([]byte, size)
			b[0] = kindData
			if _, err := cconn.WriteTo(b, sconn.LocalAddr()); err != nil {
				t.Fatal(err)
			}
		}
		b := make([]byte, MaxDatagram) // at the limit: some other drop
		b[0] = kindData
		cconn.WriteTo(b, sconn.LocalAddr())
		synctest.Wait()
		d := srv.Stats().Drops
		if d[DropOversize] != 3 || d.Total() != 4 {
			t.Fatalf("drops %v, want 3 oversize of 4", fmt.Sprint(d))
		}
	})
}
