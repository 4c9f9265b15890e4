package rmi_test

import (
	"errors"
	"sync"
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
	later := map[int32]*rmi.Later{}
	runs := 0
	cli, srv := newStubPair(t, rmi.RequestConfig{}, &testidl.ServiceStub{Double: func(info rmi.CallInfo, x int32, _ testidl.Code) (int64, testidl.Code, error) {
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
	}})
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
	limited := true
	runs := 0
	cli, srv := newStubPair(t, rmi.RequestConfig{MaxReplays: 2}, &testidl.ServiceStub{Double: func(_ rmi.CallInfo, x int32, code testidl.Code) (int64, testidl.Code, error) {
		runs++
		if limited {
			return 0, 0, rmi.Fail(rmi.StatusRateLimited)
		}
		return 2 * int64(x), code, nil
	}})
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

// deferPair is a client and a server whose Service.Double handler is
// handler, with the caller's results collected by x.
type deferPair struct {
	cli, srv *endpoint
	got      map[int32][]doubled
}

func newDeferPair(t *testing.T, handler func(info rmi.CallInfo, x int32, code testidl.Code) (int64, testidl.Code, error)) *deferPair {
	t.Helper()
	p := &deferPair{got: map[int32][]doubled{}}
	p.cli, p.srv = newStubPair(t, rmi.RequestConfig{}, &testidl.ServiceStub{Double: handler})
	return p
}

// call sends Double(x) and returns how many responses the server sent for
// it once dispatched (the client's inbox, before it pumps).
func (p *deferPair) call(t *testing.T, x int32) (responses int, dispatchErrs []error) {
	t.Helper()
	if _, err := testidl.NewServiceProxy(p.cli.r).Double(net.ServerID, rmi.Reliable, x, testidl.CodeOk, func(twice int64, code testidl.Code, err error) {
		p.got[x] = append(p.got[x], doubled{twice, code, err})
	}); err != nil {
		t.Fatal(err)
	}
	errs := p.srv.pump()
	return len(p.cli.inbox), errs
}

// TestDeferThenReturnAnswersOnce defers a request and then returns an
// error, a rate limit or results instead of ErrDeferred: the return answers
// the request once, and the Later's answer that comes afterwards is
// refused with ErrAnswered and counted, never sent as a second response
// (which the caller would count as unmatched).
func TestDeferThenReturnAnswersOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		ret  error
		want error // what the caller gets
	}{
		{"error", errors.New("validation failed"), rmi.ErrInternal},
		{"rate limited", rmi.Fail(rmi.StatusRateLimited), rmi.ErrRateLimited},
		{"results", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var later *rmi.Later
			p := newDeferPair(t, func(info rmi.CallInfo, x int32, _ testidl.Code) (int64, testidl.Code, error) {
				later = info.Defer()
				return 2 * int64(x), testidl.CodeOk, tc.ret
			})
			if n, _ := p.call(t, 4); n != 1 {
				t.Fatalf("%d responses to the handler's return, want 1", n)
			}
			if err := testidl.AnswerServiceDouble(later, 99, testidl.CodeTeapot); !errors.Is(err, rmi.ErrAnswered) {
				t.Errorf("Answer after the handler's return: %v, want ErrAnswered", err)
			}
			if err := later.Fail(errors.New("late")); !errors.Is(err, rmi.ErrAnswered) {
				t.Errorf("Fail after the handler's return: %v, want ErrAnswered", err)
			}
			if n := len(p.cli.inbox); n != 1 {
				t.Errorf("%d responses after the Later's answers, want 1", n)
			}
			p.cli.pump()
			got := p.got[4]
			if len(got) != 1 || !errors.Is(got[0].err, tc.want) || tc.want == nil && (got[0].err != nil || got[0].twice != 8) {
				t.Errorf("caller got %+v, want one answer with %v", got, tc.want)
			}
			if s := p.cli.r.Stats(); s.Unmatched != 0 || s.Completed != 1 {
				t.Errorf("caller stats %+v", s)
			}
			if s := p.srv.r.Stats(); s.AnswersRefused != 2 {
				t.Errorf("server AnswersRefused = %d, want 2 (Answer and Fail)", s.AnswersRefused)
			}
		})
	}
}

// TestDeferAnswerThenReturn answers a deferred request through its Later
// before the handler returns, then returns an error (or results): the
// Later's answer is the only response, the handler's return is not sent
// (it is counted, and Dispatch still reports a returned error).
func TestDeferAnswerThenReturn(t *testing.T) {
	for _, ret := range []error{errors.New("after the answer"), nil} {
		p := newDeferPair(t, func(info rmi.CallInfo, x int32, _ testidl.Code) (int64, testidl.Code, error) {
			if err := testidl.AnswerServiceDouble(info.Defer(), 10*int64(x), testidl.CodeTeapot); err != nil {
				t.Errorf("Answer: %v", err)
			}
			return 1, testidl.CodeOk, ret
		})
		n, errs := p.call(t, 3)
		if n != 1 {
			t.Fatalf("return %v: %d responses, want 1 (the Later's)", ret, n)
		}
		if ret != nil && (len(errs) != 1 || !errors.Is(errs[0], ret)) {
			t.Errorf("return %v: dispatch errors %v, want the handler's", ret, errs)
		}
		p.cli.pump()
		if got := p.got[3]; len(got) != 1 || got[0].err != nil || got[0].twice != 30 || got[0].code != testidl.CodeTeapot {
			t.Errorf("return %v: caller got %+v, want the Later's answer", ret, got)
		}
		if s := p.cli.r.Stats(); s.Unmatched != 0 {
			t.Errorf("return %v: caller stats %+v", ret, s)
		}
		if s := p.srv.r.Stats(); s.AnswersRefused != 1 {
			t.Errorf("return %v: server AnswersRefused = %d, want 1 (the handler's return)", ret, s.AnswersRefused)
		}
	}
}

// TestDeferAnswerRacesReturn answers a deferred request from another
// goroutine while its handler returns an error: whichever comes first
// answers, the other is refused; the caller never gets two responses.
func TestDeferAnswerRacesReturn(t *testing.T) {
	var mu sync.Mutex // the endpoint's inbox is not safe for concurrent use
	cli, srv := &lockedEndpoint{mu: &mu, id: 1001}, &lockedEndpoint{mu: &mu, id: net.ServerID}
	srvR := rmi.NewRequests(srv, rmi.RequestConfig{})
	srvD := rmi.NewDispatcher()
	srvD.SetRequests(srvR)
	var wg sync.WaitGroup
	laterErrs := make(chan error, 1)
	if err := srvD.Attach(&testidl.ServiceStub{Double: func(info rmi.CallInfo, x int32, _ testidl.Code) (int64, testidl.Code, error) {
		l := info.Defer()
		wg.Go(func() { laterErrs <- testidl.AnswerServiceDouble(l, int64(x), testidl.CodeOk) })
		return 0, 0, errors.New("validation failed")
	}}); err != nil {
		t.Fatal(err)
	}
	const rounds = 200
	var laterWon int
	for seq := uint32(1); seq <= rounds; seq++ {
		frame := []byte{1, 144, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq), 0x92, 5, 0}
		_ = srvD.Dispatch(rmi.CallInfo{From: cli.id, Context: rmi.Reliable}, frame)
		wg.Wait()
		if err := <-laterErrs; err == nil {
			laterWon++
		} else if !errors.Is(err, rmi.ErrAnswered) {
			t.Fatalf("round %d: Answer: %v", seq, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(srv.sent) != rounds {
		t.Errorf("%d responses to %d requests", len(srv.sent), rounds)
	}
	seen := map[uint32]bool{}
	for _, f := range srv.sent {
		seq := uint32(f[2])<<24 | uint32(f[3])<<16 | uint32(f[4])<<8 | uint32(f[5])
		if seen[seq] {
			t.Errorf("request %d answered twice", seq)
		}
		seen[seq] = true
	}
	if s := srvR.Stats(); s.AnswersRefused != rounds {
		t.Errorf("AnswersRefused = %d, want %d (one refused answer per request)", s.AnswersRefused, rounds)
	}
	t.Logf("the Later answered first %d times of %d", laterWon, rounds)
}

// lockedEndpoint is a Sender that records what it sends, under mu.
type lockedEndpoint struct {
	mu   *sync.Mutex
	id   net.HostID
	sent [][]byte
}

func (e *lockedEndpoint) Send(_ net.HostID, _ net.Delivery, data []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sent = append(e.sent, append([]byte(nil), data...))
	return nil
}

// TestDeferOutsideItsHandler calls Defer a second time, and after the
// handler returned: neither Later may answer (ErrAnswered, counted), or
// the caller would get a second response.
func TestDeferOutsideItsHandler(t *testing.T) {
	var kept rmi.CallInfo
	var second *rmi.Later
	p := newDeferPair(t, func(info rmi.CallInfo, x int32, _ testidl.Code) (int64, testidl.Code, error) {
		kept = info
		first := info.Defer()
		second = info.Defer()
		if err := testidl.AnswerServiceDouble(first, int64(x), testidl.CodeOk); err != nil {
			t.Errorf("the first Later: %v", err)
		}
		return 0, 0, rmi.ErrDeferred
	})
	if n, _ := p.call(t, 2); n != 1 {
		t.Fatalf("%d responses, want 1", n)
	}
	if err := testidl.AnswerServiceDouble(second, 1, testidl.CodeOk); !errors.Is(err, rmi.ErrAnswered) {
		t.Errorf("a second Defer's answer: %v, want ErrAnswered", err)
	}
	if err := testidl.AnswerServiceDouble(kept.Defer(), 1, testidl.CodeOk); !errors.Is(err, rmi.ErrAnswered) {
		t.Errorf("the answer of a Defer after the handler returned: %v, want ErrAnswered", err)
	}
	if n := len(p.cli.inbox); n != 1 {
		t.Errorf("%d responses, want 1", n)
	}
	if s := p.srv.r.Stats(); s.AnswersRefused != 2 {
		t.Errorf("AnswersRefused = %d, want 2", s.AnswersRefused)
	}
}

// TestDeferredAfterLinkDown defers a request, then its link goes down (a
// disconnection, or a client that restarted and took its session over):
// the Later must not answer, or its answer would reach the new process,
// whose requests are numbered from 1 again, as the answer to one of those.
func TestDeferredAfterLinkDown(t *testing.T) {
	var later *rmi.Later
	p := newDeferPair(t, func(info rmi.CallInfo, _ int32, _ testidl.Code) (int64, testidl.Code, error) {
		later = info.Defer()
		return 0, 0, rmi.ErrDeferred
	})
	if n, _ := p.call(t, 1); n != 0 {
		t.Fatalf("%d responses before the answer", n)
	}
	p.srv.r.LinkDown(p.cli.id)
	if err := testidl.AnswerServiceDouble(later, 2, testidl.CodeOk); !errors.Is(err, rmi.ErrAnswered) {
		t.Errorf("Answer after the link went down: %v, want ErrAnswered", err)
	}
	if n := len(p.cli.inbox); n != 0 {
		t.Errorf("%d responses sent after the link went down", n)
	}
}

// TestDeferAfterLinkDownInItsHandler: the link of a request goes down while
// its handler runs (another goroutine dispatching the peer's events saw it
// disconnect, or restart and take its session over), before the handler
// calls Defer. The request is forgotten, so its Later must answer nothing,
// as one made before the link went down: the answer could reach a new
// process whose requests are numbered from 1 again.
func TestDeferAfterLinkDownInItsHandler(t *testing.T) {
	var later *rmi.Later
	var p *deferPair
	p = newDeferPair(t, func(info rmi.CallInfo, _ int32, _ testidl.Code) (int64, testidl.Code, error) {
		p.srv.r.LinkDown(p.cli.id)
		later = info.Defer()
		return 0, 0, rmi.ErrDeferred
	})
	if n, _ := p.call(t, 1); n != 0 {
		t.Fatalf("%d responses before the answer", n)
	}
	if err := testidl.AnswerServiceDouble(later, 2, testidl.CodeOk); !errors.Is(err, rmi.ErrAnswered) {
		t.Errorf("Answer of a Defer after the link went down: %v, want ErrAnswered", err)
	}
	if n := len(p.cli.inbox); n != 0 {
		t.Errorf("%d responses sent for a request whose link went down", n)
	}
	if s := p.srv.r.Stats(); s.AnswersRefused != 1 {
		t.Errorf("AnswersRefused = %d, want 1", s.AnswersRefused)
	}
}
