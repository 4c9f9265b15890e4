package rmi_test

import (
	"errors"
	"testing"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/testidl"
)

// requestFrames returns real request and response frames of the Service
// global (with enums in both), from a client and a server that talk.
func requestFrames(tb testing.TB) [][]byte {
	cli, srv := &endpoint{id: 1001, d: rmi.NewDispatcher()}, &endpoint{id: net.ServerID, d: rmi.NewDispatcher()}
	cli.peer, srv.peer = srv, cli
	cli.r, srv.r = rmi.NewRequests(cli, rmi.RequestConfig{}), rmi.NewRequests(srv, rmi.RequestConfig{})
	cli.d.SetRequests(cli.r)
	srv.d.SetRequests(srv.r)
	svc := &service{runs: map[int32]int{}}
	if err := srv.d.Attach(svc.stub()); err != nil {
		tb.Fatal(err)
	}
	p := testidl.NewServiceProxy(cli.r)
	for _, x := range []int32{3, -1, -2} {
		if _, err := p.Double(net.ServerID, rmi.Reliable, x, testidl.CodeTeapot, nil); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := p.Upper(net.ServerID, rmi.Reliable, "up", nil); err != nil {
		tb.Fatal(err)
	}
	if _, err := p.Nop(net.ServerID, rmi.Reliable, nil); err != nil {
		tb.Fatal(err)
	}
	var frames [][]byte
	for _, m := range srv.inbox {
		frames = append(frames, m.data)
	}
	srv.pump()
	for _, m := range cli.inbox {
		frames = append(frames, m.data)
	}
	return frames
}

// FuzzRequests hands arbitrary frames to a callee (a dispatcher with a
// Service stub and Requests) and to a caller with a request pending. Neither
// may panic or fail other than with a *CallError; the callee answers every
// request of the Service with exactly one response carrying its sequence
// number and a wire status (none to a retry past MaxReplays); the caller's callback runs at most once, and
// exactly once for a response to its request.
func FuzzRequests(f *testing.F) {
	for _, fr := range requestFrames(f) {
		f.Add(fr)
	}
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0})
	f.Add([]byte{1, 144, 0, 0, 0, 1})
	f.Add([]byte{1, 146, 0, 0, 0, 1, 0x90})

	var sent [][]byte
	srvSend := rmi.SenderFunc(func(_ net.HostID, _ net.Delivery, data []byte) error {
		sent = append(sent, append([]byte(nil), data...))
		return nil
	})
	srv := rmi.NewDispatcher()
	srvReq := rmi.NewRequests(srvSend, rmi.RequestConfig{})
	srv.SetRequests(srvReq)
	if err := srv.Attach((&service{runs: map[int32]int{}}).stub()); err != nil {
		f.Fatal(err)
	}
	cliReq := rmi.NewRequests(rmi.SenderFunc(func(net.HostID, net.Delivery, []byte) error { return nil }), rmi.RequestConfig{})
	cli := rmi.NewDispatcher()
	cli.SetRequests(cliReq)
	p := testidl.NewServiceProxy(cliReq)

	f.Fuzz(func(t *testing.T, frame []byte) {
		sent = sent[:0]
		drops := srvReq.Stats().ReplayDrops
		err := srv.Dispatch(rmi.CallInfo{From: 1001}, frame)
		var ce *rmi.CallError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("callee: not a *CallError: %v", err)
		}
		isRequest := len(frame) >= rmi.RequestHeaderSize && frame[0] == 1 && frame[1] >= 144 && frame[1] <= 146
		replayedOut := srvReq.Stats().ReplayDrops != drops // a retry past MaxReplays: not answered
		if isRequest && replayedOut {
			if len(sent) != 0 {
				t.Fatalf("request % x past MaxReplays: %d responses, want none", frame, len(sent))
			}
		} else if isRequest {
			if len(sent) != 1 {
				t.Fatalf("request % x: %d responses, want 1 (dispatch: %v)", frame, len(sent), err)
			}
			r := sent[0]
			if len(r) < rmi.ResponseHeaderSize || r[0] != 0 || r[1] != 0 || string(r[2:6]) != string(frame[2:6]) {
				t.Fatalf("response % x does not answer request % x", r, frame)
			}
			if st := rmi.Status(r[6]); st > rmi.StatusStale || st != rmi.StatusOK && len(r) != rmi.ResponseHeaderSize {
				t.Fatalf("response % x: bad status or trailing bytes", r)
			}
		} else if len(sent) != 0 {
			t.Fatalf("frame % x is not a request but got responses % x", frame, sent)
		}

		calls := 0
		pend, err := p.Double(net.ServerID, rmi.Reliable, 1, 0, func(int64, testidl.Code, error) { calls++ })
		if err != nil {
			t.Fatal(err)
		}
		resp := append([]byte(nil), frame...)
		aimed := len(resp) >= rmi.ResponseHeaderSize && resp[0] == 0 && resp[1] == 0
		if aimed { // aim the response at the pending request
			s := pend.Seq()
			resp[2], resp[3], resp[4], resp[5] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
		}
		err = cli.Dispatch(rmi.CallInfo{From: net.ServerID}, resp)
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("caller: not a *CallError: %v", err)
		}
		if aimed && calls != 1 || !aimed && calls != 0 {
			t.Fatalf("response % x: callback ran %d times", resp, calls)
		}
		if !aimed && !pend.Cancel() {
			t.Fatal("the pending call ended without its response")
		}
		if n := cliReq.Outstanding(net.ServerID); n != 0 {
			t.Fatalf("%d calls left pending", n)
		}
	})
}
