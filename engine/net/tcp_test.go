package net_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// A client over the TCP fallback: same handshake and seal, both channels,
// and relayed traffic to and from a UDP peer.
func TestTCPFallbackTransport(t *testing.T) {
	srv, ln := net.ListenWithTCP(t, net.Config{RelayPolicy: func(from, to net.HostID) bool { return true }})
	mux := net.NewTCPMux(ln, 16)
	if err := srv.AddConn(mux); err != nil {
		t.Fatal(err)
	}
	if !net.IsTCPAddr(netipOf(t, mux)) && net.IsTCPAddr(srv.LocalAddr()) {
		t.Fatal("address classes mixed up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := net.DialTCP(ctx, srv.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	overTCP, err := net.NewHost(tc, net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer overTCP.Close()
	if err := overTCP.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expect(t, overTCP, net.EventConnected, net.ServerID)
	e := expect(t, srv, net.EventConnected, overTCP.ID())
	_ = e
	if a, _ := srv.RemoteAddr(overTCP.ID()); !net.IsTCPAddr(a) {
		t.Fatalf("server sees the TCP client at %v", a)
	}
	overTCP.Send(net.ServerID, net.Reliable, []byte("over tcp"))
	if e := expect(t, srv, net.EventMessage, overTCP.ID()); string(e.Data) != "over tcp" {
		t.Fatalf("got %q", e.Data)
	}
	srv.Send(overTCP.ID(), net.Unreliable, []byte("back"))
	if e := expect(t, overTCP, net.EventMessage, net.ServerID); string(e.Data) != "back" {
		t.Fatalf("got %q", e.Data)
	}

	// A UDP client and the TCP client talk through the relay.
	udp, err := net.Listen("127.0.0.1:0", net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if err := udp.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expect(t, udp, net.EventConnected, net.ServerID)
	expect(t, srv, net.EventConnected, udp.ID())
	k := net.NewKeys()
	overTCP.AddPeer(udp.ID(), k, overTCP.RelayPath(udp.ID()))
	udp.AddPeer(overTCP.ID(), k.Swap(), udp.RelayPath(overTCP.ID()))
	expect(t, overTCP, net.EventConnected, udp.ID())
	expect(t, udp, net.EventConnected, overTCP.ID())
	for i := range 100 {
		overTCP.Send(udp.ID(), net.Reliable, []byte{byte(i)})
		udp.Send(overTCP.ID(), net.Reliable, []byte{byte(i)})
	}
	for i := range 100 {
		if e := expect(t, udp, net.EventMessage, overTCP.ID()); e.Data[0] != byte(i) || !e.Relayed {
			t.Fatalf("udp side message %d: %v relayed=%v", i, e.Data, e.Relayed)
		}
		if e := expect(t, overTCP, net.EventMessage, udp.ID()); e.Data[0] != byte(i) || !e.Relayed {
			t.Fatalf("tcp side message %d: %v relayed=%v", i, e.Data, e.Relayed)
		}
	}
}

func netipOf(t *testing.T, m *net.TCPMux) netip.AddrPort { return m.LocalAddr() }
