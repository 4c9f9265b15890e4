package sync_test

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// Sending to a group that does not exist (any more) says so, on both
// sides; a client, which only knows its own groups and peers, says the ID
// is neither (both errors.Is ErrNoGroup and net.ErrUnknownPeer).
func TestSendToNoSuchGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 2, net.Config{DisableP2P: true})
		a, b := w.clients[0], w.clients[1]
		g, err := w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		settle(a)
		settle(b)
		if err := w.srv.DestroyGroup(g); err != nil {
			t.Fatal(err)
		}
		settle(a, sync.EventMemberLeave)
		settle(b, sync.EventMemberLeave)
		msg := []byte("x")
		if err := w.srv.Send(g, net.Reliable, msg); !errors.Is(err, sync.ErrNoGroup) {
			t.Errorf("server send to a destroyed group: %v, want ErrNoGroup", err)
		}
		if err := w.srv.Send(54321, net.Reliable, msg); !errors.Is(err, sync.ErrNoGroup) || !errors.Is(err, net.ErrUnknownPeer) {
			t.Errorf("server send to an unknown ID: %v, want ErrNoGroup and ErrUnknownPeer", err)
		}
		for _, to := range []net.HostID{g, 54321, b.ID()} {
			err := a.Send(to, net.Reliable, msg)
			if !errors.Is(err, sync.ErrNoGroup) || !errors.Is(err, net.ErrUnknownPeer) {
				t.Errorf("client send to %v: %v, want ErrNoGroup and ErrUnknownPeer", to, err)
			}
		}
		// A connected client is not a group: the server sends to it.
		if err := w.srv.Send(b.ID(), net.Reliable, msg); err != nil {
			t.Fatal(err)
		}
	})
}

// After Close, Client.Send and Server.Send say closed, even to a group
// whose only member is the sender (nothing would be sent).
func TestSyncSendAfterCloseSaysClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 2, net.Config{DisableP2P: true})
		a, b := w.clients[0], w.clients[1]
		g, err := w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		solo, err := w.srv.CreateGroup([]net.HostID{a.ID()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		settle(a)
		settle(b)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		for _, to := range []net.HostID{net.ServerID, b.ID(), g, solo, 54321} {
			if err := a.Send(to, net.Reliable, []byte("x")); !errors.Is(err, net.ErrHostClosed) {
				t.Errorf("client send to %v after Close: %v, want net.ErrHostClosed", to, err)
			}
		}
		if err := w.srv.Close(); err != nil {
			t.Fatal(err)
		}
		for _, to := range []net.HostID{b.ID(), g, 54321} {
			if err := w.srv.Send(to, net.Reliable, []byte("x")); !errors.Is(err, net.ErrHostClosed) {
				t.Errorf("server send to %v after Close: %v, want net.ErrHostClosed", to, err)
			}
		}
	})
}

// A client that closes is ErrClosedByPeer to the server; a server that
// shuts down is ErrShutdown to its clients.
func TestCloseReasonsBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 2, net.Config{DisableP2P: true})
		a, b := w.clients[0], w.clients[1]
		id := a.ID()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		e := next(t, w.srv, sync.EventDisconnected)
		if e.Peer != id || !errors.Is(e.Err, net.ErrClosedByPeer) {
			t.Fatalf("server saw %v leave with %v, want ErrClosedByPeer", e.Peer, e.Err)
		}
		if err := w.srv.Close(); err != nil {
			t.Fatal(err)
		}
		e = next(t, b, sync.EventDisconnected)
		if e.Peer != net.ServerID || !errors.Is(e.Err, net.ErrShutdown) {
			t.Fatalf("client saw %v go with %v, want ErrShutdown", e.Peer, e.Err)
		}
	})
}
