package net_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	skein "github.com/skein-dev/skein/engine/net"
)

// A client over the TCP fallback: same handshake and seal, both channels,
// and relayed traffic to and from a UDP peer.
func TestTCPFallbackTransport(t *testing.T) {
	srv, ln := skein.ListenWithTCP(t, skein.Config{RelayPolicy: func(from, to skein.HostID) bool { return true }})
	mux := skein.NewTCPMux(ln, 16)
	if err := srv.AddConn(mux); err != nil {
		t.Fatal(err)
	}
	if !skein.IsTCPAddr(netipOf(t, mux)) && skein.IsTCPAddr(srv.LocalAddr()) {
		t.Fatal("address classes mixed up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := skein.DialTCP(ctx, srv.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	overTCP, err := skein.NewHost(tc, skein.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer overTCP.Close()
	if err := overTCP.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expect(t, overTCP, skein.EventConnected, skein.ServerID)
	e := expect(t, srv, skein.EventConnected, overTCP.ID())
	_ = e
	if a, _ := srv.RemoteAddr(overTCP.ID()); !skein.IsTCPAddr(a) {
		t.Fatalf("server sees the TCP client at %v", a)
	}
	overTCP.Send(skein.ServerID, skein.Reliable, []byte("over tcp"))
	if e := expect(t, srv, skein.EventMessage, overTCP.ID()); string(e.Data) != "over tcp" {
		t.Fatalf("got %q", e.Data)
	}
	srv.Send(overTCP.ID(), skein.Unreliable, []byte("back"))
	if e := expect(t, overTCP, skein.EventMessage, skein.ServerID); string(e.Data) != "back" {
		t.Fatalf("got %q", e.Data)
	}

	// A UDP client and the TCP client talk through the relay.
	udp, err := skein.Listen("127.0.0.1:0", skein.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if err := udp.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expect(t, udp, skein.EventConnected, skein.ServerID)
	expect(t, srv, skein.EventConnected, udp.ID())
	k := skein.NewKeys()
	overTCP.AddPeer(udp.ID(), k, overTCP.RelayPath(udp.ID()))
	udp.AddPeer(overTCP.ID(), k.Swap(), udp.RelayPath(overTCP.ID()))
	expect(t, overTCP, skein.EventConnected, udp.ID())
	expect(t, udp, skein.EventConnected, overTCP.ID())
	for i := range 100 {
		overTCP.Send(udp.ID(), skein.Reliable, []byte{byte(i)})
		udp.Send(overTCP.ID(), skein.Reliable, []byte{byte(i)})
	}
	for i := range 100 {
		if e := expect(t, udp, skein.EventMessage, overTCP.ID()); e.Data[0] != byte(i) || !e.Relayed {
			t.Fatalf("udp side message %d: %v relayed=%v", i, e.Data, e.Relayed)
		}
		if e := expect(t, overTCP, skein.EventMessage, udp.ID()); e.Data[0] != byte(i) || !e.Relayed {
			t.Fatalf("tcp side message %d: %v relayed=%v", i, e.Data, e.Relayed)
		}
	}
}

func netipOf(t *testing.T, m *skein.TCPMux) netip.AddrPort { return m.LocalAddr() }
