package net_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	skein "github.com/skein-dev/skein/engine/net"
)

// pair starts a server and a client on loopback and connects them.
func pair(t testing.TB, scfg, ccfg skein.Config) (srv, cli *skein.Host) {
	t.Helper()
	scfg.Accept = true
	srv, err := skein.Listen("127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = skein.Listen("127.0.0.1:0", ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expect(t, cli, skein.EventConnected, skein.ServerID)
	expect(t, srv, skein.EventConnected, cli.ID())
	return srv, cli
}

// expect waits for the next event and checks its kind and peer.
func expect(t testing.TB, h *skein.Host, kind skein.EventKind, peer skein.HostID) skein.Event {
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
	srv, cli := pair(t, skein.Config{}, skein.Config{})
	if cli.ID() < skein.FirstClientID {
		t.Fatalf("client ID %v", cli.ID())
	}
	if err := cli.Send(skein.ServerID, skein.Reliable, []byte("hello server")); err != nil {
		t.Fatal(err)
	}
	e := expect(t, srv, skein.EventMessage, cli.ID())
	if string(e.Data) != "hello server" || !e.Delivery.Reliable {
		t.Fatalf("got %q %+v", e.Data, e.Delivery)
	}
	if err := srv.Send(cli.ID(), skein.Unreliable.OnChannel(3), []byte("pos")); err != nil {
		t.Fatal(err)
	}
	e = expect(t, cli, skein.EventMessage, skein.ServerID)
	if string(e.Data) != "pos" || e.Delivery.Reliable || e.Delivery.Channel != 3 {
		t.Fatalf("got %q %+v", e.Data, e.Delivery)
	}
	big := bytes.Repeat([]byte("x"), 64<<10)
	if err := srv.Send(cli.ID(), skein.Reliable, big); err != nil {
		t.Fatal(err)
	}
	e = expect(t, cli, skein.EventMessage, skein.ServerID)
	if !bytes.Equal(e.Data, big) {
		t.Fatalf("64 KiB message: got %d bytes", len(e.Data))
	}
	if err := cli.Disconnect(skein.ServerID); err != nil {
		t.Fatal(err)
	}
	e = expect(t, cli, skein.EventDisconnected, skein.ServerID)
	if !errors.Is(e.Err, skein.ErrClosedLocally) {
		t.Fatalf("client reason %v", e.Err)
	}
	e = expect(t, srv, skein.EventDisconnected, cli.ID())
	if !errors.Is(e.Err, skein.ErrClosedByPeer) {
		t.Fatalf("server reason %v", e.Err)
	}
}
