package net_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// pair starts a server and a client on loopback and connects them.
func pair(t testing.TB, scfg, ccfg net.Config) (srv, cli *net.Host) {
	t.Helper()
	scfg.Accept = true
	srv, err := net.Listen("127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = net.Listen("127.0.0.1:0", ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expect(t, cli, net.EventConnected, net.ServerID)
	expect(t, srv, net.EventConnected, cli.ID())
	return srv, cli
}

// expect waits for the next event and checks its kind and peer.
func expect(t testing.TB, h *net.Host, kind net.EventKind, peer net.HostID) net.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	e, err := h.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for %v from %v: %v", kind, peer, err)
	}
	if e.Kind != kind || e.Peer != peer {
		t.Fatalf("got %v from %v (err %v), want %v from %v", e.Kind, e.Peer, e.Err, kind, peer)
	}
	return e
}

func TestDialAndExchange(t *testing.T) {
	srv, cli := pair(t, net.Config{}, net.Config{})
	if cli.ID() < net.FirstClientID {
		t.Fatalf("client ID %v", cli.ID())
	}
	if err := cli.Send(net.ServerID, net.Reliable, []byte("hello server")); err != nil {
		t.Fatal(err)
	}
	e := expect(t, srv, net.EventMessage, cli.ID())
	if string(e.Data) != "hello server" || !e.Delivery.Reliable {
		t.Fatalf("got %q %+v", e.Data, e.Delivery)
	}
	if err := srv.Send(cli.ID(), net.Unreliable.OnChannel(3), []byte("pos")); err != nil {
		t.Fatal(err)
	}
	e = expect(t, cli, net.EventMessage, net.ServerID)
	if string(e.Data) != "pos" || e.Delivery.Reliable || e.Delivery.Channel != 3 {
		t.Fatalf("got %q %+v", e.Data, e.Delivery)
	}
	big := bytes.Repeat([]byte("x"), 64<<10)
	if err := srv.Send(cli.ID(), net.Reliable, big); err != nil {
		t.Fatal(err)
	}
	e = expect(t, cli, net.EventMessage, net.ServerID)
	if !bytes.Equal(e.Data, big) {
		t.Fatalf("64 KiB message: got %d bytes", len(e.Data))
	}
	if err := cli.Disconnect(net.ServerID); err != nil {
		t.Fatal(err)
	}
	e = expect(t, cli, net.EventDisconnected, net.ServerID)
	if !errors.Is(e.Err, net.ErrClosedLocally) {
		t.Fatalf("client reason %v", e.Err)
	}
	e = expect(t, srv, net.EventDisconnected, cli.ID())
	if !errors.Is(e.Err, net.ErrClosedByPeer) {
		t.Fatalf("server reason %v", e.Err)
	}
}
