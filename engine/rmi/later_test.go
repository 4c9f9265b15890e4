package rmi_test

import (
	"errors"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/testidl"
)

// TestRequestDeferred answers requests after their handlers return: a retry
// while the answer is pending is neither run nor answered, the Later's
// answer completes the call, a later retry gets it from the reply cache,
// Fail answers a failure status, a second answer is refused, and
// ErrDeferred without Defer is an internal error.
func TestRequestDeferred(t *testing.T) {
	cli, srv := &endpoint{id: 1001, d: rmi.NewDispatcher()}, &endpoint{id: net.ServerID, d: rmi.NewDispatcher()}
	cli.peer, srv.peer = srv, cli
	cli.r, srv.r = rmi.NewRequests(cli, rmi.RequestConfig{}), rmi.NewRequests(srv, rmi.RequestConfig{})
	cli.d.SetRequests(cli.r)
	srv.d.SetRequests(srv.r)
	later := map[int32]*rmi.Later{}
	runs := 0
	if err := srv.d.Attach(&testidl.ServiceStub{Double: func(info rmi.CallInfo, x int32, _ testidl.Code) (int64, testidl.Code, error) {
		runs++
		if x == 0 {
			return 0, 0, rmi.ErrDeferred // without Defer: a bug in the handler
		}
		l := info.Defer()
		if l == nil || l.ID() != testidl.Service_Double {
			t.Errorf("Defer in a request handler: %v", l)
		}
		later[x] = l
		return 0, 0, rmi.ErrDeferred
	}}); err != nil {
		t.Fatal(err)
	}
	p := testidl.NewServiceProxy(cli.r)
	got := map[int32]doubled{}
	call := func(x int32) {
		if _, err := p.Double(net.ServerID, rmi.Reliable, x, testidl.CodeOk, func(twice int64, code testidl.Code, err error) {
			got[x] = doubled{twice, code, err}
		}); err != nil {
			t.Fatal(err)
		}
	}
	call(5)
	call(6)
	call(0)
	srv.pump()
	// The request of x=5 again, as a retry (seq 1) would come.
	retry := []byte{1, 144, 0, 0, 0, 1, 0x92, 5, 0}
	if err := srv.d.Receive(cli.id, net.Delivery{Reliable: true}, retry, false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	cli.pump()
	if len(got) != 1 || !errors.Is(got[0].err, rmi.ErrInternal) {
		t.Fatalf("before the answers: %+v; want only x=0 answered InternalError", got)
	}
	if err := testidl.AnswerServiceDouble(later[5], 10, testidl.CodeTeapot); err != nil {
		t.Fatal(err)
	}
	if err := later[6].Fail(rmi.Fail(rmi.StatusRateLimited)); err != nil {
		t.Fatal(err)
	}
	if err := testidl.AnswerServiceDouble(later[5], 11, testidl.CodeOk); !errors.Is(err, rmi.ErrAnswered) {
		t.Errorf("second answer: %v, want ErrAnswered", err)
	}
	cli.pump()
	if g := got[5]; g.err != nil || g.twice != 10 || g.code != testidl.CodeTeapot {
		t.Errorf("x=5: %+v", g)
	}
	if g := got[6]; !errors.Is(g.err, rmi.ErrRateLimited) {
		t.Errorf("x=6: %+v, want RateLimited", g)
	}
	cli.inbox = nil
	if err := srv.d.Receive(cli.id, net.Delivery{Reliable: true}, retry, false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if len(cli.inbox) != 1 || rmi.Status(cli.inbox[0].data[6]) != rmi.StatusOK || runs != 3 {
		t.Errorf("retry after the answer: %v, %d runs", cli.inbox, runs)
	}
	if s := srv.r.Stats(); s.Served != 3 || s.Busy != 1 || s.Replayed != 1 {
		t.Errorf("stats %+v", s)
	}
	if l := (rmi.CallInfo{}).Defer(); l != nil {
		t.Errorf("Defer outside a request = %v, want nil", l)
	}
}

// TestRequestRateLimitedNotCached answers a request StatusRateLimited, then
// serves its retry (same sequence number): a refusal for the caller's rate
// is not kept in the reply cache. A cached response is replayed at most
// MaxReplays times.
func TestRequestRateLimitedNotCached(t *testing.T) {
	cli, srv := &endpoint{id: 1001, d: rmi.NewDispatcher()}, &endpoint{id: net.ServerID, d: rmi.NewDispatcher()}
	cli.peer, srv.peer = srv, cli
	cfg := rmi.RequestConfig{MaxReplays: 2}
	cli.r, srv.r = rmi.NewRequests(cli, cfg), rmi.NewRequests(srv, cfg)
	cli.d.SetRequests(cli.r)
	srv.d.SetRequests(srv.r)
	limited := true
	runs := 0
	if err := srv.d.Attach(&testidl.ServiceStub{Double: func(_ rmi.CallInfo, x int32, code testidl.Code) (int64, testidl.Code, error) {
		runs++
		if limited {
			return 0, 0, rmi.Fail(rmi.StatusRateLimited)
		}
		return 2 * int64(x), code, nil
	}}); err != nil {
		t.Fatal(err)
	}
	frame := []byte{1, 144, 0, 0, 0, 1, 0x92, 5, 0} // Double(5, 0), seq 1
	send := func() rmi.Status {
		t.Helper()
		cli.inbox = nil
		if err := srv.d.Receive(cli.id, net.Delivery{Reliable: true}, frame, false, time.Time{}); err != nil && !errors.Is(err, rmi.ErrRateLimited) {
			t.Fatal(err)
		}
		if len(cli.inbox) == 0 {
			return 255 // no answer
		}
		return rmi.Status(cli.inbox[0].data[6])
	}
	if s := send(); s != rmi.StatusRateLimited {
		t.Fatalf("first: %v", s)
	}
	limited = false
	if s := send(); s != rmi.StatusOK || runs != 2 {
		t.Fatalf("retry after the limit: %v, %d runs; want OK and the handler run again", s, runs)
	}
	for i := range 2 {
		if s := send(); s != rmi.StatusOK || runs != 2 {
			t.Fatalf("replay %d: %v, %d runs", i, s, runs)
		}
	}
	if s := send(); s != 255 || runs != 2 {
		t.Fatalf("replay over MaxReplays: %v, %d runs; want no answer", s, runs)
	}
	if s := srv.r.Stats(); s.Served != 2 || s.Replayed != 2 || s.ReplayDrops != 1 {
		t.Errorf("stats %+v", s)
	}
}
