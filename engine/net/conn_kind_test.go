package net_test

import (
	"net/netip"
	"testing"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/impair"
	"github.com/skein-dev/skein/engine/net/vnet"
)

func TestIsUDPSocket(t *testing.T) {
	u, err := net.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	nw := vnet.New(1)
	defer nw.Close()
	v, err := nw.Listen(netip.MustParseAddrPort("10.0.0.1:5000"))
	if err != nil {
		t.Fatal(err)
	}
	imp := impair.Wrap(u)
	defer imp.Close()
	impV := impair.Wrap(v)
	defer impV.Close()
	imp2 := impair.Wrap(imp)
	defer imp2.Close()
	for _, c := range []struct {
		name string
		conn net.PacketConn
		want bool
	}{
		{"socket", u, true},
		{"impaired socket", imp, true},
		{"impaired impaired socket", imp2, true},
		{"vnet", v, false},
		{"impaired vnet", impV, false},
	} {
		if got := net.IsUDPSocket(c.conn); got != c.want {
			t.Errorf("%s: IsUDPSocket %v, want %v", c.name, got, c.want)
		}
	}
}
