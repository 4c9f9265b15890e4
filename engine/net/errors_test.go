package net_test

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// After Close, every send says the host is closed, not that the peer is
// unknown: the links are gone because this host closed them.
func TestSendAfterCloseSaysHostClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(31)
		defer n.Close()
		_, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		if err := cli.Close(); err != nil {
			t.Fatal(err)
		}
		msg := []byte("late")
		for name, send := range map[string]func() error{
			"Send reliable":   func() error { return cli.Send(net.ServerID, net.Reliable, msg) },
			"Send unreliable": func() error { return cli.Send(net.ServerID, net.Unreliable, msg) },
			"SendParts":       func() error { return cli.SendParts(net.ServerID, net.Reliable, []byte{1}, msg) },
			"SendMulti":       func() error { return cli.SendMulti([]net.HostID{net.ServerID}, net.Reliable, nil, msg) },
			"SendGroup":       func() error { return cli.SendGroup(5000, []net.HostID{net.ServerID, 1001}, net.Unreliable, nil, msg) },
			"unknown host":    func() error { return cli.Send(12345, net.Reliable, msg) },
			"Disconnect":      func() error { return cli.Disconnect(net.ServerID) },
			"ForceRelay":      func() error { return cli.ForceRelay(1001, true) },
		} {
			err := send()
			if !errors.Is(err, net.ErrHostClosed) || errors.Is(err, net.ErrUnknownPeer) {
				t.Errorf("%s after Close: %v, want ErrHostClosed", name, err)
			}
		}
	})
}

// A client closing its own host is a graceful close to the server
// (ErrClosedByPeer); only a server shutting down is ErrShutdown to the other
// end (TestKickAndShutdownReasons).
func TestClientCloseIsClosedByPeerOnServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(32)
		defer n.Close()
		srv, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		id := cli.ID()
		if err := cli.Close(); err != nil {
			t.Fatal(err)
		}
		e := expect(t, srv, net.EventDisconnected, id)
		if !errors.Is(e.Err, net.ErrClosedByPeer) || errors.Is(e.Err, net.ErrShutdown) {
			t.Fatalf("server saw the client's Close as %v, want ErrClosedByPeer", e.Err)
		}
		// The client's own view: it shut down.
		e = expect(t, cli, net.EventDisconnected, net.ServerID)
		if !errors.Is(e.Err, net.ErrShutdown) {
			t.Fatalf("client's own reason %v, want ErrShutdown", e.Err)
		}
	})
}
