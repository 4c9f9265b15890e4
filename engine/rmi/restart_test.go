package rmi_test

import (
	"errors"
	"testing"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/testidl"
	"github.com/skein-dev/skein/engine/sync"
)

// TestRestartedSessionForgetsReplies: a client process that restarts and
// takes its suspended session over (net.ErrSessionRestarted) keeps its
// HostID but numbers its requests from 1 again. The callee must forget the
// old session's reply window, or the new requests are answered with the
// old session's cached responses; and the calls the callee had pending on
// the old process end with ErrLinkLost. Both for engine/net's events and
// engine/sync's.
func TestRestartedSessionForgetsReplies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart func(d *rmi.Dispatcher, peer net.HostID)
	}{
		{"net", func(d *rmi.Dispatcher, peer net.HostID) {
			_, _ = d.DispatchEvent(net.Event{Kind: net.EventBack, Peer: peer, Err: net.ErrSessionRestarted})
		}},
		{"sync", func(d *rmi.Dispatcher, peer net.HostID) {
			_, _ = d.DispatchSyncEvent(sync.Event{Kind: sync.EventBack, Peer: peer, Err: net.ErrSessionRestarted})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv, svc := newPair(t, rmi.RequestConfig{})
			var got []doubled
			done := func(twice int64, code testidl.Code, err error) { got = append(got, doubled{twice, code, err}) }
			p := testidl.NewServiceProxy(cli.r)
			if _, err := p.Double(net.ServerID, rmi.Reliable, 1, testidl.CodeOk, done); err != nil {
				t.Fatal(err)
			}
			srv.pump()
			cli.pump()
			// The server's own request to the client, never answered.
			var lost []error
			if _, err := testidl.NewServiceProxy(srv.r).Double(cli.id, rmi.Reliable, 9, testidl.CodeOk, func(_ int64, _ testidl.Code, err error) { lost = append(lost, err) }); err != nil {
				t.Fatal(err)
			}
			cli.inbox = nil

			// The client restarts: a new Requests numbers from 1 again.
			cli.r = rmi.NewRequests(cli, rmi.RequestConfig{})
			cli.d = rmi.NewDispatcher()
			cli.d.SetRequests(cli.r)
			tc.restart(srv.d, cli.id)
			if len(lost) != 1 || !errors.Is(lost[0], rmi.ErrLinkLost) {
				t.Errorf("the server's pending call on the old process: %v, want ErrLinkLost", lost)
			}
			got = nil
			if _, err := testidl.NewServiceProxy(cli.r).Double(net.ServerID, rmi.Reliable, 2, testidl.CodeOk, done); err != nil {
				t.Fatal(err)
			}
			srv.pump()
			cli.pump()
			if len(got) != 1 || got[0].twice != 4 || got[0].err != nil || svc.runs[2] != 1 {
				t.Errorf("first request of the new process: %+v, runs %v; want 4 from a run of x=2", got, svc.runs)
			}
		})
	}
}
