package rmi_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/testidl"
)

// endpoint is one side of an in-memory link: an rmi.Sender whose messages
// wait in the peer's inbox until the peer pumps them into its dispatcher.
type endpoint struct {
	id    net.HostID
	peer  *endpoint
	inbox []fakeMsg
	d     *rmi.Dispatcher
	r     *rmi.Requests
	drop  func(data []byte) bool // drops a message this side sends
	sends int
}

func (e *endpoint) Send(to net.HostID, d net.Delivery, data []byte) error {
	e.sends++
	if to != e.peer.id {
		return fmt.Errorf("no link to %v", to)
	}
	if e.drop != nil && e.drop(data) {
		return nil
	}
	e.peer.inbox = append(e.peer.inbox, fakeMsg{e.id, d, append([]byte(nil), data...)})
	return nil
}

// pump dispatches every waiting message and returns the dispatch errors.
func (e *endpoint) pump() []error {
	var errs []error
	for len(e.inbox) > 0 {
		m := e.inbox[0]
		e.inbox = e.inbox[1:]
		if err := e.d.Receive(m.from, m.d, m.data, false, time.Time{}); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// service is a Service stub that counts how often each x ran.
type service struct {
	mu   sync.Mutex
	runs map[int32]int
}

func (s *service) stub() *testidl.ServiceStub {
	return &testidl.ServiceStub{
		Double: func(_ rmi.CallInfo, x int32, code testidl.Code) (int64, testidl.Code, error) {
			s.mu.Lock()
			s.runs[x]++
			s.mu.Unlock()
			switch x {
			case -1:
				return 0, 0, errors.New("the handler failed")
			case -2:
				return 0, 0, rmi.Fail(rmi.StatusRateLimited)
			}
			return 2 * int64(x), code, nil
		},
		Upper: func(_ rmi.CallInfo, s string) (string, []testidl.Dir, error) {
			return strings.ToUpper(s), []testidl.Dir{testidl.DirLeft, testidl.DirRight}, nil
		},
		// Nop is left nil: StatusNotImplemented.
	}
}

// newPair returns a client and a server endpoint with Requests and
// dispatchers, the server's with the Service stub attached.
func newPair(t *testing.T, cfg rmi.RequestConfig) (cli, srv *endpoint, svc *service) {
	t.Helper()
	svc = &service{runs: map[int32]int{}}
	cli, srv = newStubPair(t, cfg, svc.stub())
	return cli, srv, svc
}

// newStubPair returns a client and a server endpoint with Requests (of
// cfg) and dispatchers, the server's with stub attached.
func newStubPair(t *testing.T, cfg rmi.RequestConfig, stub *testidl.ServiceStub) (cli, srv *endpoint) {
	t.Helper()
	cli, srv = &endpoint{id: 1001, d: rmi.NewDispatcher()}, &endpoint{id: net.ServerID, d: rmi.NewDispatcher()}
	cli.peer, srv.peer = srv, cli
	cli.r, srv.r = rmi.NewRequests(cli, cfg), rmi.NewRequests(srv, cfg)
	cli.d.SetRequests(cli.r)
	srv.d.SetRequests(srv.r)
	if err := srv.d.Attach(stub); err != nil {
		t.Fatal(err)
	}
	return cli, srv
}

type doubled struct {
	twice int64
	code  testidl.Code
	err   error
}

func TestRequestRoundTrip(t *testing.T) {
	cli, srv, svc := newPair(t, rmi.RequestConfig{})
	p := testidl.NewServiceProxy(cli.r)
	var got []doubled
	pend, err := p.Double(net.ServerID, rmi.Reliable, 21, testidl.CodeTeapot, func(twice int64, code testidl.Code, err error) {
		got = append(got, doubled{twice, code, err})
	})
	if err != nil {
		t.Fatal(err)
	}
	if pend.Seq() != 1 || cli.r.Outstanding(net.ServerID) != 1 {
		t.Errorf("seq %d, outstanding %d", pend.Seq(), cli.r.Outstanding(net.ServerID))
	}
	if errs := srv.pump(); errs != nil {
		t.Fatal(errs)
	}
	if len(got) != 0 {
		t.Fatal("callback ran before the response was dispatched")
	}
	if errs := cli.pump(); errs != nil {
		t.Fatal(errs)
	}
	if len(got) != 1 || got[0] != (doubled{42, testidl.CodeTeapot, nil}) {
		t.Fatalf("got %+v", got)
	}
	if svc.runs[21] != 1 || cli.r.Outstanding(net.ServerID) != 0 {
		t.Errorf("runs %v, outstanding %d", svc.runs, cli.r.Outstanding(net.ServerID))
	}

	var upper string
	var path []testidl.Dir
	if _, err := p.Upper(net.ServerID, rmi.Reliable, "héllo", func(u string, d []testidl.Dir, err error) {
		if err != nil {
			t.Error(err)
		}
		upper, path = u, d
	}); err != nil {
		t.Fatal(err)
	}
	srv.pump()
	cli.pump()
	if upper != "HÉLLO" || len(path) != 2 || path[1] != testidl.DirRight {
		t.Errorf("Upper: %q %v", upper, path)
	}
	// A one-way call through the same proxy and Requests.
	if err := p.Note(net.ServerID, rmi.Reliable, "n"); err != nil {
		t.Fatal(err)
	}
	if errs := srv.pump(); len(errs) != 1 || !errors.Is(errs[0], rmi.ErrNoHandler) {
		t.Errorf("Note with a nil function: %v", errs)
	}
	s := cli.r.Stats()
	if s.Sent != 2 || s.Completed != 2 || s.Retried != 0 || srv.r.Stats().Served != 2 {
		t.Errorf("client %+v server %+v", s, srv.r.Stats())
	}
}

// TestRequestFailures checks that every failure of the callee's side is
// answered with its status, and reaches the callback as the matching error.
func TestRequestFailures(t *testing.T) {
	cli, srv, _ := newPair(t, rmi.RequestConfig{})
	p := testidl.NewServiceProxy(cli.r)
	var errs []error
	for _, x := range []int32{-1, -2} {
		if _, err := p.Double(net.ServerID, rmi.Reliable, x, 0, func(_ int64, _ testidl.Code, err error) { errs = append(errs, err) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Nop(net.ServerID, rmi.Reliable, func(err error) { errs = append(errs, err) }); err != nil {
		t.Fatal(err)
	}
	// Arguments that do not decode: a hand-made request with a string for x.
	if err := cli.Send(net.ServerID, net.Delivery{Reliable: true}, []byte{1, 144, 0, 0, 0, 9, 0x92, 0xa1, 'x', 0}); err != nil {
		t.Fatal(err)
	}
	srvErrs := srv.pump()
	if len(srvErrs) != 4 {
		t.Fatalf("server errors: %v", srvErrs)
	}
	// The response to the hand-made request (seq 9) matches nothing here.
	if e := cli.pump(); e != nil {
		t.Fatal(e)
	}
	want := []error{rmi.ErrInternal, rmi.ErrRateLimited, rmi.ErrNotImplemented}
	if len(errs) != len(want) {
		t.Fatalf("callbacks: %v", errs)
	}
	for i, w := range want {
		var se *rmi.StatusError
		if !errors.Is(errs[i], w) || !errors.As(errs[i], &se) {
			t.Errorf("callback %d: %v, want a *StatusError wrapping %v", i, errs[i], w)
		}
	}
	if s := cli.r.Stats(); s.Unmatched != 1 || s.Completed != 3 {
		t.Errorf("client stats %+v", s)
	}
	if s := srv.d.Stats(); s.Malformed != 1 || s.HandlerErrors != 2 || s.NoHandler != 1 {
		t.Errorf("server dispatch stats %+v", s)
	}
}

// TestRequestRetryRunsOnce loses responses and requests of unreliable
// requests: Tick sends them again with the same sequence number, the callee
// answers a retry from its reply cache, and every handler runs once and
// every callback once.
func TestRequestRetryRunsOnce(t *testing.T) {
	cli, srv, svc := newPair(t, rmi.RequestConfig{Retry: time.Second, Timeout: time.Hour})
	p := testidl.NewServiceProxy(cli.r)
	// The server loses its first two responses, the client its first request.
	srvDrops, cliDrops := 2, 1
	srv.drop = func([]byte) bool { srvDrops--; return srvDrops >= 0 }
	cli.drop = func([]byte) bool { cliDrops--; return cliDrops >= 0 }
	calls := map[int32]int{}
	for x := int32(1); x <= 3; x++ {
		if _, err := p.Double(net.ServerID, rmi.Unreliable, x, 0, func(twice int64, _ testidl.Code, err error) {
			if err != nil || twice != 2*int64(x) {
				t.Errorf("x %d: %d %v", x, twice, err)
			}
			calls[x]++
		}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for round := 1; round <= 5 && len(calls) < 3; round++ {
		srv.pump()
		cli.pump()
		cli.r.Tick(now.Add(time.Duration(round) * 2 * time.Second))
	}
	for x := int32(1); x <= 3; x++ {
		if calls[x] != 1 || svc.runs[x] != 1 {
			t.Errorf("x %d: %d callbacks, %d handler runs; want 1 and 1", x, calls[x], svc.runs[x])
		}
	}
	if s := srv.r.Stats(); s.Served != 3 || s.Replayed != 2 {
		t.Errorf("server stats %+v: want 3 served, 2 replayed", s)
	}
	if s := cli.r.Stats(); s.Retried < 3 || s.Completed != 3 {
		t.Errorf("client stats %+v", s)
	}
}

// TestRequestTimeoutAndLinkLoss ends pending calls without a response.
func TestRequestTimeoutAndLinkLoss(t *testing.T) {
	cli, srv, _ := newPair(t, rmi.RequestConfig{Timeout: time.Minute})
	p := testidl.NewServiceProxy(cli.r)
	var errs []error
	cb := func(_ int64, _ testidl.Code, err error) { errs = append(errs, err) }
	if _, err := p.Double(net.ServerID, rmi.Reliable, 1, 0, cb); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cli.r.Tick(now) // not yet
	if len(errs) != 0 {
		t.Fatal("ended before its timeout")
	}
	cli.r.Tick(now.Add(2 * time.Minute))
	if len(errs) != 1 || !errors.Is(errs[0], rmi.ErrTimeout) {
		t.Fatalf("after the timeout: %v", errs)
	}
	// The late response matches nothing and calls nothing.
	srv.pump()
	if e := cli.pump(); e != nil || len(errs) != 1 || cli.r.Stats().Unmatched != 1 {
		t.Fatalf("late response: %v, callbacks %v", e, errs)
	}
	cli.r.Tick(now.Add(time.Hour))
	if len(errs) != 1 {
		t.Fatal("a second callback after the timeout")
	}

	if _, err := p.Double(net.ServerID, rmi.Reliable, 2, 0, cb); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.d.DispatchEvent(net.Event{Kind: net.EventDisconnected, Peer: net.ServerID, Err: net.ErrTimeout}); err != nil {
		t.Fatal(err)
	}
	if len(errs) != 2 || !errors.Is(errs[1], rmi.ErrLinkLost) || cli.r.Outstanding(net.ServerID) != 0 {
		t.Fatalf("after the link loss: %v", errs)
	}
	srv.pump()
	cli.pump()
	if len(errs) != 2 {
		t.Fatal("a callback after the link loss")
	}
	if s := cli.r.Stats(); s.TimedOut != 1 || s.LinkLost != 1 || s.Unmatched != 2 {
		t.Errorf("stats %+v", s)
	}
}

// TestRequestOutstandingBound refuses requests over MaxOutstanding without
// sending them, and accepts more once responses came.
func TestRequestOutstandingBound(t *testing.T) {
	cli, srv, _ := newPair(t, rmi.RequestConfig{MaxOutstanding: 4})
	p := testidl.NewServiceProxy(cli.r)
	for i := range 4 {
		if _, err := p.Nop(net.ServerID, rmi.Reliable, nil); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	sends := cli.sends
	_, err := p.Nop(net.ServerID, rmi.Reliable, func(error) { t.Error("callback of a refused request") })
	if !errors.Is(err, rmi.ErrTooManyRequests) || cli.sends != sends {
		t.Fatalf("fifth request: %v, %d sends", err, cli.sends-sends)
	}
	srv.pump()
	cli.pump()
	if _, err := p.Nop(net.ServerID, rmi.Reliable, nil); err != nil {
		t.Fatalf("after the responses: %v", err)
	}
	if s := cli.r.Stats(); s.Refused != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestRequestStale answers a retry older than the reply window, or whose
// response was dropped for ReplyCacheBytes, with StatusStale, without
// running the handler again.
func TestRequestStale(t *testing.T) {
	cli, srv, svc := newPair(t, rmi.RequestConfig{ReplyCacheBytes: 35})
	request := func(seq uint32) {
		frame := []byte{1, 144, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq), 0x92, 7, 0}
		if err := cli.Send(net.ServerID, net.Delivery{Reliable: true}, frame); err != nil {
			t.Fatal(err)
		}
	}
	// 1, then 300: 1 leaves the window. 301..303: 10-byte responses, so
	// the 35-byte cache drops the oldest (300).
	for _, seq := range []uint32{1, 300, 301, 302, 303} {
		request(seq)
	}
	srv.pump()
	if svc.runs[7] != 5 {
		t.Fatalf("runs %v", svc.runs)
	}
	cli.inbox = nil
	for _, seq := range []uint32{1, 300, 303, 290} {
		request(seq)
	}
	srv.pump()
	if svc.runs[7] != 6 {
		t.Fatalf("runs %v: want only seq 290 (in the window, never seen) to run", svc.runs)
	}
	want := []rmi.Status{rmi.StatusStale, rmi.StatusStale, rmi.StatusOK, rmi.StatusOK}
	if len(cli.inbox) != len(want) {
		t.Fatalf("responses %v", cli.inbox)
	}
	for i, w := range want {
		if got := rmi.Status(cli.inbox[i].data[6]); got != w {
			t.Errorf("response %d: %v, want %v", i, got, w)
		}
	}
	if s := srv.r.Stats(); s.Stale != 2 || s.Replayed != 1 || s.Served != 6 {
		t.Errorf("stats %+v", s)
	}
}

// TestRequestSpan refuses a request whose sequence number would be
// ReplyWindow or more ahead of the oldest pending one: the callee could not
// tell a retry of the oldest from a new request.
func TestRequestSpan(t *testing.T) {
	cli, srv, _ := newPair(t, rmi.RequestConfig{MaxOutstanding: 1000})
	p := testidl.NewServiceProxy(cli.r)
	cli.drop = func([]byte) bool { return true }
	if _, err := p.Nop(net.ServerID, rmi.Reliable, nil); err != nil { // seq 1, lost
		t.Fatal(err)
	}
	cli.drop = nil
	for i := 2; i <= rmi.ReplyWindow; i++ {
		if _, err := p.Nop(net.ServerID, rmi.Reliable, nil); err != nil {
			t.Fatalf("seq %d: %v", i, err)
		}
		srv.pump()
		cli.pump()
	}
	if _, err := p.Nop(net.ServerID, rmi.Reliable, nil); !errors.Is(err, rmi.ErrTooManyRequests) {
		t.Fatalf("seq %d with seq 1 pending: %v", rmi.ReplyWindow+1, err)
	}
	cli.r.Tick(time.Now().Add(time.Hour)) // seq 1 times out
	if _, err := p.Nop(net.ServerID, rmi.Reliable, nil); err != nil {
		t.Fatalf("after the oldest timed out: %v", err)
	}
}

// TestRequestMalformedResponse feeds responses a modified peer could send:
// each is counted and ends the pending call with ErrDecode, or matches
// nothing; none panics.
func TestRequestMalformedResponse(t *testing.T) {
	cli, _, _ := newPair(t, rmi.RequestConfig{})
	p := testidl.NewServiceProxy(cli.r)
	for i, body := range [][]byte{
		{0, 0, 0, 0, 0, 1, 0, 0x92, 0xa1, 'x', 0},     // twice as a string
		{0, 0, 0, 0, 0, 2, 0, 0x92, 4, 0xcd, 1, 0x95}, // result code 405: not a Code
		{0, 0, 0, 0, 0, 3, 0, 0x92, 4, 0, 0},          // trailing byte
		{0, 0, 0, 0, 0, 4, 99},                        // a status that is not on the wire
		{0, 0, 0, 0, 0, 5, 4, 0x90},                   // bytes after a failure status
	} {
		var got error
		called := 0
		if _, err := p.Double(net.ServerID, rmi.Reliable, 1, 0, func(_ int64, _ testidl.Code, err error) { got, called = err, called+1 }); err != nil {
			t.Fatal(err)
		}
		err := cli.d.Dispatch(rmi.CallInfo{From: net.ServerID}, body)
		if !errors.Is(err, rmi.ErrDecode) || !errors.Is(got, rmi.ErrDecode) || called != 1 {
			t.Errorf("response %d: dispatch %v, callback %v (%d calls)", i, err, got, called)
		}
	}
	for _, body := range [][]byte{{0, 0}, {0, 0, 0, 0, 0, 1}} {
		if err := cli.d.Dispatch(rmi.CallInfo{From: net.ServerID}, body); !errors.Is(err, rmi.ErrDecode) {
			t.Errorf("short response % x: %v", body, err)
		}
	}
	if err := cli.d.Dispatch(rmi.CallInfo{From: 77}, []byte{0, 0, 0, 0, 0, 6, 0, 0x92, 0, 0}); err != nil {
		t.Errorf("a response from a host with no pending call: %v", err)
	}
	if s := cli.d.Stats(); s.Malformed != 7 {
		t.Errorf("dispatch stats %+v", s)
	}
}

// TestRequestWait runs the blocking form while another goroutine pumps.
func TestRequestWait(t *testing.T) {
	cli, srv, _ := newPair(t, rmi.RequestConfig{})
	var mu sync.Mutex
	// Serialise the endpoints: the fake transport is not concurrent.
	send := rmi.SenderFunc(func(to net.HostID, d net.Delivery, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return cli.Send(to, d, data)
	})
	r := rmi.NewRequests(send, rmi.RequestConfig{})
	cli.d.SetRequests(r)
	p := testidl.NewServiceProxy(r)
	stop := make(chan struct{})
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			mu.Lock()
			srv.pump()
			cli.pump()
			mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	twice, code, err := p.DoubleWait(ctx, net.ServerID, rmi.Reliable, 5, testidl.CodeNotFound)
	if err != nil || twice != 10 || code != testidl.CodeNotFound {
		t.Errorf("DoubleWait: %d %v %v", twice, code, err)
	}
	close(stop)
	<-pumped
	// Nobody pumps now: a cancelled context ends the wait.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := p.NopWait(cctx, net.ServerID, rmi.Reliable); !errors.Is(err, context.Canceled) {
		t.Errorf("NopWait with a cancelled context: %v", err)
	}
	if n := r.Outstanding(net.ServerID); n != 0 {
		t.Errorf("%d requests left pending", n)
	}
}

// TestRequestNoRequests: a proxy over a plain Sender cannot make requests.
func TestRequestNoRequests(t *testing.T) {
	var c captureSender
	_, err := testidl.NewServiceProxy(&c).Nop(1, rmi.Reliable, nil)
	if !errors.Is(err, rmi.ErrNoRequests) {
		t.Fatalf("err = %v", err)
	}
	d := rmi.NewDispatcher()
	if err := d.Attach((&service{}).stub()); err != nil {
		t.Fatal(err)
	}
	if err := d.Dispatch(rmi.CallInfo{}, []byte{1, 144, 0, 0, 0, 1, 0x92, 1, 0}); !errors.Is(err, rmi.ErrNoRequests) {
		t.Errorf("request without Requests: %v", err)
	}
	if err := d.Dispatch(rmi.CallInfo{}, []byte{0, 0, 0, 0, 0, 1, 0, 0x90}); !errors.Is(err, rmi.ErrNoRequests) {
		t.Errorf("response without Requests: %v", err)
	}
}

// TestRequestOverLossyNetwork runs request/response between two net.Hosts
// over the virtual network with 20% of the datagrams lost both ways, sent
// unreliably so that the RMI layer's retries do the recovery: every request
// is answered exactly once, and no handler runs twice.
func TestRequestOverLossyNetwork(t *testing.T) {
	vn := vnet.New(7)
	defer vn.Close()
	srvHost, cliHost := dialPair(t, vn)
	vn.SetConditions(vnet.Conditions{Loss: 0.2})

	cfg := rmi.RequestConfig{Retry: 30 * time.Millisecond, Timeout: time.Minute}
	srvReq, cliReq := rmi.NewRequests(srvHost, cfg), rmi.NewRequests(cliHost, cfg)
	sd, cd := rmi.NewDispatcher(), rmi.NewDispatcher()
	sd.SetRequests(srvReq)
	cd.SetRequests(cliReq)
	svc := &service{runs: map[int32]int{}}
	if err := sd.Attach(svc.stub()); err != nil {
		t.Fatal(err)
	}
	p := testidl.NewServiceProxy(cliReq)

	const n = 300
	answers := make(map[int32]int, n)
	next := int32(1)
	deadline := time.Now().Add(60 * time.Second)
	for len(answers) < n || next <= n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d answered after 60s; client %+v server %+v", len(answers), n, cliReq.Stats(), srvReq.Stats())
		}
		for next <= n && cliReq.Outstanding(net.ServerID) < 64 {
			x := next
			_, err := p.Double(net.ServerID, rmi.Unreliable, x, testidl.CodeOk, func(twice int64, _ testidl.Code, err error) {
				if err != nil || twice != 2*int64(x) {
					t.Errorf("x %d: %d %v", x, twice, err)
				}
				answers[x]++
			})
			if errors.Is(err, rmi.ErrTooManyRequests) {
				break // an old request is still pending: wait for it
			}
			if err != nil {
				t.Fatal(err)
			}
			next++
		}
		srvHost.FrameMove(func(e net.Event) {
			if _, err := sd.DispatchEvent(e); err != nil {
				t.Errorf("server: %v", err)
			}
		})
		cliHost.FrameMove(func(e net.Event) {
			if _, err := cd.DispatchEvent(e); err != nil {
				t.Errorf("client: %v", err)
			}
		})
		now := time.Now()
		cliReq.Tick(now)
		srvReq.Tick(now)
		time.Sleep(2 * time.Millisecond)
	}
	for x := int32(1); x <= n; x++ {
		if answers[x] != 1 || svc.runs[x] != 1 {
			t.Errorf("x %d: %d answers, %d handler runs; want 1 and 1", x, answers[x], svc.runs[x])
		}
	}
	cs, ss := cliReq.Stats(), srvReq.Stats()
	t.Logf("client %+v\nserver %+v", cs, ss)
	if cs.Retried == 0 || ss.Replayed == 0 {
		t.Errorf("the loss did not exercise retries and the reply cache: client %+v server %+v", cs, ss)
	}
	if ss.Served != n || cs.Completed != n {
		t.Errorf("served %d, completed %d, want %d", ss.Served, cs.Completed, n)
	}

	// A request the server never answers (it stops dispatching) ends with
	// ErrTimeout once its timeout has passed, and only then.
	var timedOut error
	if _, err := p.Nop(net.ServerID, rmi.Reliable, func(err error) { timedOut = err }); err != nil {
		t.Fatal(err)
	}
	cliReq.Tick(time.Now())
	cliHost.FrameMove(func(e net.Event) { _, _ = cd.DispatchEvent(e) })
	if timedOut != nil {
		t.Fatalf("ended before its timeout: %v", timedOut)
	}
	cliReq.Tick(time.Now().Add(cfg.Timeout + time.Second))
	if !errors.Is(timedOut, rmi.ErrTimeout) {
		t.Fatalf("after its timeout: %v, want ErrTimeout", timedOut)
	}

	// Losing the link ends what is pending with ErrLinkLost.
	var lost error
	vn.SetConditions(vnet.Conditions{Loss: 1})
	if _, err := p.Nop(net.ServerID, rmi.Reliable, func(err error) { lost = err }); err != nil {
		t.Fatal(err)
	}
	if err := srvHost.Kick(cliHost.ID(), "bye"); err != nil {
		t.Fatal(err)
	}
	if err := cliHost.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for lost == nil {
		e, err := cliHost.Next(ctx)
		if err != nil {
			t.Fatalf("no disconnection: %v", err)
		}
		if _, err := cd.DispatchEvent(e); err != nil {
			t.Error(err)
		}
	}
	if !errors.Is(lost, rmi.ErrLinkLost) {
		t.Errorf("pending call ended with %v, want ErrLinkLost", lost)
	}
}

// dialPair connects a client host to a server host over vn.
func dialPair(t *testing.T, vn *vnet.Network) (srv, cli *net.Host) {
	t.Helper()
	sconn, err := vn.Listen(netip.MustParseAddrPort("10.0.0.1:7777"))
	if err != nil {
		t.Fatal(err)
	}
	cconn, err := vn.Listen(netip.MustParseAddrPort("10.0.0.2:0"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err = net.NewHost(sconn, net.Config{Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cli, err = net.NewHost(cconn, net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, sconn.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	return srv, cli
}

// TestRequestRetryWhileRunning sends a retry of a request while its handler
// is still running (the handler dispatches it, as a second goroutine
// dispatching the same peer's frames could): the retry is not run and not
// answered (Busy), the handler's own response is, and a later retry is
// answered from the reply cache.
func TestRequestRetryWhileRunning(t *testing.T) {
	cli, srv := &endpoint{id: 1001, d: rmi.NewDispatcher()}, &endpoint{id: net.ServerID, d: rmi.NewDispatcher()}
	cli.peer, srv.peer = srv, cli
	cli.r, srv.r = rmi.NewRequests(cli, rmi.RequestConfig{}), rmi.NewRequests(srv, rmi.RequestConfig{})
	cli.d.SetRequests(cli.r)
	srv.d.SetRequests(srv.r)
	frame := []byte{1, 144, 0, 0, 0, 1, 0x92, 7, 0} // Service.Double(7, 0), seq 1
	runs, inner := 0, error(nil)
	if err := srv.d.Attach(&testidl.ServiceStub{Double: func(_ rmi.CallInfo, x int32, code testidl.Code) (int64, testidl.Code, error) {
		runs++
		if runs == 1 {
			inner = srv.d.Receive(cli.id, net.Delivery{Reliable: true}, frame, false, time.Time{})
		}
		return 2 * int64(x), code, nil
	}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.d.Receive(cli.id, net.Delivery{Reliable: true}, frame, false, time.Time{}); err != nil || inner != nil {
		t.Fatalf("dispatch: %v, retry inside the handler: %v", err, inner)
	}
	if runs != 1 || len(cli.inbox) != 1 {
		t.Fatalf("%d runs, %d responses; want 1 and 1", runs, len(cli.inbox))
	}
	if err := srv.d.Receive(cli.id, net.Delivery{Reliable: true}, frame, false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if runs != 1 || len(cli.inbox) != 2 || string(cli.inbox[0].data) != string(cli.inbox[1].data) {
		t.Fatalf("%d runs, responses %v; want 1 run and the same response twice", runs, cli.inbox)
	}
	if s := srv.r.Stats(); s.Served != 1 || s.Busy != 1 || s.Replayed != 1 {
		t.Errorf("stats %+v", s)
	}
}
