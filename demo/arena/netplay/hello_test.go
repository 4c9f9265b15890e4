package netplay

import (
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
)

// TestHelloAnsweredOnce: a member's first hello is answered with this
// player's own, sent to it alone (its hello to us may have been dropped,
// before it was in the match), so both learn the other's name whichever
// hello gets through; its later hellos, and the server's, are not
// answered, so two members never trade hellos without end.
func TestHelloAnsweredOnce(t *testing.T) {
	var sent []net.HostID
	s := &Session{
		cfg:   Config{Name: "Ann"},
		log:   hclog.NewNullLogger(),
		match: 7000,
		names: map[net.HostID]string{},
		arena: proto.NewArenaP2PProxy(rmi.SenderFunc(func(to net.HostID, _ net.Delivery, _ []byte) error {
			sent = append(sent, to)
			return nil
		})),
	}
	bo := net.HostID(5001)
	for range 3 {
		if err := s.onHello(rmi.CallInfo{From: bo}, "Bo", proto.Version); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.onHello(rmi.CallInfo{From: net.ServerID}, "server", proto.Version); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0] != bo {
		t.Fatalf("hellos sent to %v; want one, to Bo (%v)", sent, bo)
	}
	if n := s.PlayerName(bo); n != "Bo" {
		t.Fatalf("Bo is called %q", n)
	}
}
