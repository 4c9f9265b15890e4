package rmi_test

import (
	"context"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/testidl"
)

// BenchmarkRequestRoundTripHost is BenchmarkRequestRoundTrip on Skein's
// own transport: a client and a server net.Host on loopback UDP, each
// draining its events on one goroutine (the client's is the benchmark's:
// it sends a request, then drains events until the answer's callback has
// run, as a game loop would). impl=rmigen is the generated proxy and stub
// over rmi.Requests and two Dispatchers; impl=hand is the hand-written
// request/response of BenchmarkRequestRoundTrip sent through the same two
// hosts. Both answer on the reliable stream.
func BenchmarkRequestRoundTripHost(b *testing.B) {
	b.Run("impl=rmigen", func(b *testing.B) {
		srv, cli := hostPair(b)
		srvD := rmi.NewDispatcher()
		srvD.SetRequests(rmi.NewRequests(srv, rmi.RequestConfig{}))
		if err := srvD.Attach(&testidl.ServiceStub{Double: doubleHandler}); err != nil {
			b.Fatal(err)
		}
		defer serveEvents(b, srv, func(e net.Event) { _, _ = srvD.DispatchEvent(e) })()
		cliR := rmi.NewRequests(cli, rmi.RequestConfig{})
		cliD := rmi.NewDispatcher()
		cliD.SetRequests(cliR)
		proxy := testidl.NewServiceProxy(cliR)
		roundTrips(b, cli, func(i int32, done func(int64, testidl.Code, error)) error {
			_, err := proxy.Double(net.ServerID, rmi.Reliable, i, testidl.CodeTeapot, done)
			return err
		}, func(e net.Event) { _, _ = cliD.DispatchEvent(e) })
	})
	b.Run("impl=hand", func(b *testing.B) {
		srv, cli := hostPair(b)
		h := newHandRR()
		h.toCallee, h.toCaller = cli, srv
		defer serveEvents(b, srv, func(e net.Event) {
			if e.Kind == net.EventMessage {
				_ = h.serve(e.Peer, e.Delivery, e.Data)
			}
		})()
		roundTrips(b, cli, func(i int32, done func(int64, testidl.Code, error)) error {
			return h.double(i, testidl.CodeTeapot, done)
		}, func(e net.Event) {
			if e.Kind == net.EventMessage {
				_ = h.receive(e.Peer, e.Delivery, e.Data)
			}
		})
	})
}

// roundTrips is the benchmark loop of BenchmarkRequestRoundTripHost on the
// client cli: send makes request i with the callback done, and dispatch
// hands the client's events over until done has run.
func roundTrips(b *testing.B, cli *net.Host, send func(i int32, done func(int64, testidl.Code, error)) error, dispatch func(net.Event)) {
	var answered bool
	done := doubleDone(b, &answered)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		answered = false
		if err := send(int32(i), done); err != nil {
			b.Fatal(err)
		}
		drainUntil(ctx, b, cli, &answered, dispatch)
	}
}

// doubleDone returns the callback of a benchmark's Double: it adds the
// result to rrSum and sets *answered.
func doubleDone(b *testing.B, answered *bool) func(int64, testidl.Code, error) {
	return func(twice int64, _ testidl.Code, err error) {
		if err != nil {
			b.Error(err)
		}
		rrSum += twice
		*answered = true
	}
}

// hostPair returns a server host and a client host connected to it over
// loopback UDP, closed when b ends.
func hostPair(b *testing.B) (srv, cli *net.Host) {
	b.Helper()
	srv, err := net.Listen("127.0.0.1:0", net.Config{Accept: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	cli, err = net.Listen("127.0.0.1:0", net.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connected := make(chan error, 1)
	go func() { // the server's connect event; nothing else comes before it
		for {
			e, err := srv.Next(ctx)
			if err != nil || e.Kind == net.EventConnected {
				connected <- err
				return
			}
		}
	}()
	if err := cli.Dial(ctx, srv.LocalAddr()); err != nil {
		b.Fatal(err)
	}
	if err := <-connected; err != nil {
		b.Fatal(err)
	}
	return srv, cli
}

// serveEvents hands every event of h to f on a goroutine of its own until
// the returned function is called.
func serveEvents(b *testing.B, h *net.Host, f func(net.Event)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			e, err := h.Next(ctx)
			if err != nil {
				return
			}
			f(e)
		}
	}()
	return func() { cancel(); <-done }
}

// drainUntil hands h's events to f until *flag is set.
func drainUntil(ctx context.Context, b *testing.B, h *net.Host, flag *bool, f func(net.Event)) {
	for !*flag {
		e, err := h.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		f(e)
	}
}
