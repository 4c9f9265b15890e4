package net_test

// Shared benchmark harness: every transport (raw UDP, kcp-go's UDPSession,
// Skein's Host) is measured by the same two loops, so figures taken in one
// `go test -bench` run can be compared as ratios.
//
//	runPingPong(b, size, send, recv, stop)
//	    b.N round trips: send one size-byte message, wait for its echo.
//	    Reports ns/op (one round trip), p50-µs and p99-µs.
//	runOneWay(b, size, send, recv, stop)
//	    b.N size-byte messages sent as fast as send allows; a goroutine
//	    counts what arrives. Reports msgs/s and MB/s delivered, delivered-%,
//	    and ns/op = time from the first send to the last delivery, divided by b.N.
//
// The functions the caller passes:
//   - send(msg) sends one message (msg is reused: copy it if kept). It may
//     block for flow control. An error fails the benchmark.
//   - recv(buf) blocks until one message arrives, copies it into buf (at least
//     64 KiB) and returns its length. It returns an error once stop was called.
//   - stop() makes a blocked send or recv return an error soon (close the
//     socket, or set a read deadline in the past). The harness calls it when
//     the receiver must end: in runOneWay after delivery is complete or has
//     stalled for oneWayIdle; in runPingPong only if no echo comes back within
//     stallTimeout. It may also be called by the caller's own cleanup: it
//     must tolerate being called twice.
//
// The caller sets up the transport, exchanges one warm-up message (so that
// connection set-up is not timed), calls the harness, then tears everything
// down; checkGoroutines verifies that nothing was left running.
//
// The echo side of a ping-pong is the caller's: a goroutine that reads and
// writes back what it read, ending when its socket is closed.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// recvBufSize is the size of the buffer handed to recv: the largest
	// reliable message Skein must carry.
	recvBufSize = 64 << 10
	// oneWayIdle ends a one-way run when nothing has arrived for this long
	// after the last send (the rest was dropped).
	oneWayIdle = 200 * time.Millisecond
	// stallTimeout fails a ping-pong whose echo never comes back.
	stallTimeout = 5 * time.Second
)

// latencies holds one duration per measured operation, preallocated so
// recording costs no allocation.
type latencies []time.Duration

// percentile returns the p-th percentile (0 < p <= 100) by the nearest-rank
// method, or 0 when empty. It sorts l in place.
func (l latencies) percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	rank := int(math.Ceil(p / 100 * float64(len(l))))
	rank = min(max(rank, 1), len(l))
	return l[rank-1]
}

// report adds p50-µs and p99-µs to the benchmark's metrics.
func (l latencies) report(b *testing.B) {
	b.ReportMetric(float64(l.percentile(50))/float64(time.Microsecond), "p50-µs")
	b.ReportMetric(float64(l.percentile(99))/float64(time.Microsecond), "p99-µs")
}

// payload returns a size-byte message with a recognizable pattern.
func payload(size int) []byte {
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i*7 + 1)
	}
	return msg
}

// runPingPong measures b.N round trips of one size-byte message (size >= 8:
// the first 8 bytes carry the iteration number, which the echo must return).
func runPingPong(b *testing.B, size int, send func([]byte) error, recv func([]byte) (int, error), stop func()) {
	b.Helper()
	if size < 8 {
		b.Fatalf("runPingPong: size %d < 8", size)
	}
	msg := payload(size)
	buf := make([]byte, recvBufSize)
	rtts := make(latencies, b.N)

	// Watchdog: if an echo is lost, stop() unblocks recv and the benchmark
	// fails instead of hanging. Costs one atomic store per iteration.
	var progress atomic.Int64
	quit := make(chan struct{})
	var stalled atomic.Bool
	var wg sync.WaitGroup
	t := time.NewTicker(stallTimeout) // allocated before the timer starts
	wg.Go(func() {
		defer t.Stop()
		last := int64(-1)
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if p := progress.Load(); p != last {
					last = p
					continue
				}
				stalled.Store(true)
				stop()
				return
			}
		}
	})
	defer func() { close(quit); wg.Wait() }()

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		binary.LittleEndian.PutUint64(msg, uint64(i))
		t0 := time.Now()
		if err := send(msg); err != nil {
			b.Fatalf("ping-pong send %d: %v", i, err)
		}
		n, err := recv(buf)
		rtts[i] = time.Since(t0)
		if err != nil {
			if stalled.Load() {
				b.Fatalf("ping-pong: no echo for %v at iteration %d (lost datagram?)", stallTimeout, i)
			}
			b.Fatalf("ping-pong recv %d: %v", i, err)
		}
		if n != size || !bytes.Equal(buf[:n], msg) {
			b.Fatalf("ping-pong %d: echo of %d bytes does not match the %d-byte message", i, n, size)
		}
		progress.Store(int64(i))
	}
	b.StopTimer()
	rtts.report(b)
}

// runOneWay sends b.N size-byte messages as fast as send allows while a
// goroutine counts the ones that arrive. Messages of another length are not
// counted. Delivery is over when all b.N arrived or nothing arrived for
// oneWayIdle; throughput is measured up to the last delivery.
func runOneWay(b *testing.B, size int, send func([]byte) error, recv func([]byte) (int, error), stop func()) {
	b.Helper()
	msg := payload(size)

	var (
		got      atomic.Int64 // messages delivered
		lastRecv atomic.Int64 // time of the last delivery, ns since start
		start    time.Time
		begun    = make(chan struct{})
		done     = make(chan struct{})
		want     = int64(b.N)
	)
	buf := make([]byte, max(recvBufSize, size+1)) // allocated before the timer starts
	go func() {
		defer close(done)
		<-begun
		for {
			n, err := recv(buf)
			if err != nil {
				return
			}
			if n != size {
				continue
			}
			lastRecv.Store(int64(time.Since(start)))
			if got.Add(1) == want {
				return
			}
		}
	}()
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			stop()
		}
		<-done
	}

	b.ReportAllocs()
	b.ResetTimer()
	start = time.Now()
	close(begun)
	for i := range b.N {
		if err := send(msg); err != nil {
			halt()
			b.Fatalf("one-way send %d: %v", i, err)
		}
	}
	b.StopTimer()

	// Wait for delivery to complete or go quiet.
	tick := time.NewTicker(oneWayIdle / 4)
	seen, quietSince := got.Load(), time.Now()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			if g := got.Load(); g != seen {
				seen, quietSince = g, time.Now()
			} else if time.Since(quietSince) >= oneWayIdle {
				break wait
			}
		}
	}
	tick.Stop()
	halt()

	delivered := got.Load()
	elapsed := time.Duration(lastRecv.Load())
	if delivered == 0 || elapsed <= 0 {
		b.ReportMetric(0, "msgs/s")
		b.ReportMetric(0, "MB/s")
		b.ReportMetric(0, "delivered-%")
		b.Logf("one-way: nothing delivered out of %d", b.N)
		return
	}
	secs := elapsed.Seconds()
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(delivered)/secs, "msgs/s")
	b.ReportMetric(float64(delivered)*float64(size)/secs/1e6, "MB/s")
	b.ReportMetric(100*float64(delivered)/float64(b.N), "delivered-%")
}

// checkGoroutines records the goroutine count and registers a cleanup that
// fails the benchmark if, two seconds after every later cleanup ran, more
// goroutines remain (package-level goroutines started at init, like
// kcp-go's schedulers, already exist when it is called). Call it first, so
// its cleanup runs last.
func checkGoroutines(tb testing.TB) {
	tb.Helper()
	before := runtime.NumGoroutine()
	tb.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				tb.Errorf("goroutine leak: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// mustNil fails tb with what when err is not nil.
func mustNil(tb testing.TB, err error, what string) {
	tb.Helper()
	if err != nil {
		tb.Fatal(fmt.Errorf("%s: %w", what, err))
	}
}
