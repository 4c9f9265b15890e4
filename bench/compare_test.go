package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Passes, not repeats: one iteration of a BenchmarkCompare sub-benchmark is
// one pass, in which every transport is measured once, one after the other
// (the order rotates from pass to pass). Ratios are taken inside a pass, so
// all transports of a ratio saw the same minute of a noisy machine; the
// metrics are the medians over the passes. Run it with a pass count:
//
//	cd bench && go test -run '^$' -bench Compare -benchtime 5x
//
// (-count would put the repeats of one sub-benchmark back to back; use
// -benchtime Nx for N interleaved passes instead.)

// Work per transport per pass.
const (
	oneWayMsgs64   = 100_000
	oneWayMsgs1024 = 30_000
	roundTrips     = 3_000
	handshakes     = 100
	// quiet ends a one-way run when nothing arrived for this long after
	// the last send (an unreliable baseline loses some).
	quiet = 200 * time.Millisecond
)

// figure is one measured value of one transport in one pass.
type figure struct {
	value float64
	note  string // why there is no value
}

// figureKind describes one sub-benchmark: how to measure a transport, the
// unit, and whether higher is better.
type figureKind struct {
	name    string
	unit    string
	measure func(t transport) (float64, error)
	// ratioSuffix tells this figure's ratio metrics apart from another
	// figure's reported by the same sub-benchmark.
	ratioSuffix string
}

func oneWayFigure(size, count int) func(transport) (float64, error) {
	return func(t transport) (float64, error) {
		s, err := t.open(oneWay)
		if err != nil || s.send == nil {
			return 0, err
		}
		defer s.close()
		return measureOneWay(s, size, count)
	}
}

func pingPongFigure(m mode) func(transport) (float64, error) {
	return func(t transport) (float64, error) {
		s, err := t.open(m)
		if err != nil || s.send == nil {
			return 0, err
		}
		defer s.close()
		p50, err := measurePingPong(s, roundTrips)
		return float64(p50) / float64(time.Microsecond), err
	}
}

// measureOneWay sends count size-byte messages as fast as send allows and
// returns the messages per second delivered, up to the last delivery.
func measureOneWay(s session, size, count int) (float64, error) {
	msg := make([]byte, size)
	var got, last atomic.Int64
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, recvBufSize)
		for {
			n, err := s.recv(buf)
			if err != nil {
				return
			}
			if n != size {
				continue
			}
			last.Store(int64(time.Since(start)))
			if got.Add(1) == int64(count) {
				return
			}
		}
	}()
	for i := range count {
		binary.LittleEndian.PutUint32(msg, uint32(i))
		if err := s.send(msg); err != nil {
			s.close()
			<-done
			return 0, fmt.Errorf("send %d: %w", i, err)
		}
	}
	seen, since := got.Load(), time.Now()
	for {
		select {
		case <-done:
		case <-time.After(quiet / 4):
			if g := got.Load(); g != seen {
				seen, since = g, time.Now()
				continue // still arriving
			}
			if time.Since(since) < quiet {
				continue
			}
			s.close()
			<-done
		}
		break
	}
	el := time.Duration(last.Load())
	if got.Load() == 0 || el <= 0 {
		return 0, fmt.Errorf("nothing delivered of %d", count)
	}
	return float64(got.Load()) / el.Seconds(), nil
}

// measurePingPong returns the median round trip of count 64-byte messages,
// each echoed before the next is sent.
func measurePingPong(s session, count int) (time.Duration, error) {
	msg := make([]byte, 64)
	buf := make([]byte, recvBufSize)
	rtts := make([]time.Duration, 0, count)
	for i := range count {
		binary.LittleEndian.PutUint64(msg, uint64(i))
		t0 := time.Now()
		if err := s.send(msg); err != nil {
			return 0, fmt.Errorf("send %d: %w", i, err)
		}
		timer := time.AfterFunc(setupTimeout, s.close) // a lost echo ends the run instead of hanging
		n, err := s.recv(buf)
		timer.Stop()
		if err != nil {
			return 0, fmt.Errorf("echo %d: %w", i, err)
		}
		if !bytes.Equal(buf[:n], msg) {
			return 0, fmt.Errorf("echo %d: %d bytes do not match", i, n)
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], nil
}

// measureHandshakes connects count fresh clients one after the other and
// returns handshakes per second (set-up of the client socket and the
// handshake; closing is not timed) and the mean bytes one handshake moved
// over the client's socket.
func measureHandshakes(t transport, count int) (perSec, bytesEach float64, closeP50 time.Duration, err error) {
	dial, closeServer, err := t.server()
	if err != nil {
		return 0, 0, 0, err
	}
	defer closeServer()
	var spent time.Duration
	closes := make([]time.Duration, 0, count)
	for i := range count {
		t0 := time.Now()
		_, closeClient, err := dial(false)
		spent += time.Since(t0)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("handshake %d: %w", i, err)
		}
		t0 = time.Now()
		closeClient() // a graceful close with nothing pending
		closes = append(closes, time.Since(t0))
	}
	slices.Sort(closes)
	// Bytes from a few counted handshakes (not timed).
	const counted = 5
	total := 0
	for i := range counted {
		n, closeClient, err := dial(true)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("counted handshake %d: %w", i, err)
		}
		total += n
		closeClient()
	}
	return float64(count) / spent.Seconds(), float64(total) / counted, closes[len(closes)/2], nil
}

// runPasses measures every transport once per pass for b.N passes and
// reports, for each transport, the median figure, and the medians of the
// per-pass ratios of Skein to every other transport.
func runPasses(b *testing.B, f figureKind, ts []transport) {
	b.Helper()
	per := make(map[string][]figure)
	for pass := range b.N {
		for i := range ts {
			t := ts[(pass+i)%len(ts)]
			v, err := f.measure(t)
			fg := figure{value: v}
			if err != nil {
				b.Fatalf("%s %s, pass %d: %v", f.name, t.name, pass+1, err)
			}
			if v == 0 {
				fg.note = "n/a"
			}
			per[t.name] = append(per[t.name], fg)
		}
	}
	report(b, f, ts, per)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// report logs one row per pass and reports the medians as metrics:
// "<transport>-<unit>" and "skein/<transport>[suffix]" (per-pass ratios).
func report(b *testing.B, f figureKind, ts []transport, per map[string][]figure) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s (%s), one row per pass:\n", f.name, f.unit)
	for pass := range b.N {
		fmt.Fprintf(&sb, "  pass %d:", pass+1)
		for _, t := range ts {
			if fg := per[t.name][pass]; fg.note == "" {
				fmt.Fprintf(&sb, "  %s %.4g", t.name, fg.value)
			}
		}
		sb.WriteString("\n")
	}
	b.Log(sb.String())
	sk := per["skein"]
	for _, t := range ts {
		var vals, ratios []float64
		for pass, fg := range per[t.name] {
			if fg.note != "" {
				continue
			}
			vals = append(vals, fg.value)
			if t.name != "skein" && sk[pass].note == "" {
				ratios = append(ratios, sk[pass].value/fg.value)
			}
		}
		if len(vals) == 0 {
			continue
		}
		b.ReportMetric(median(vals), t.name+"-"+f.unit)
		if len(ratios) > 0 {
			b.ReportMetric(median(ratios), "skein/"+t.name+f.ratioSuffix)
		}
	}
}

// BenchmarkCompare measures Skein against raw UDP (the limit), kcp-go's
// UDPSession (the library Skein's reliable channel builds on) and quic-go
// (what a Go developer would pick instead), in interleaved passes.
//
// Ratios read: for msgs/s and handshakes/s, skein/X > 1 means Skein is
// faster; for µs (round trips) and bytes, skein/X < 1 means Skein is faster
// or smaller.
func BenchmarkCompare(b *testing.B) {
	all := func(size int) []transport { return []transport{rawUDP(), kcpGo(), skeinNet(), quicGo(size)} }
	figs := []struct {
		figureKind
		ts []transport
	}{
		{figureKind{name: "oneway64", unit: "msgs/s", measure: oneWayFigure(64, oneWayMsgs64)}, all(64)},
		{figureKind{name: "oneway1024", unit: "msgs/s", measure: oneWayFigure(1024, oneWayMsgs1024)}, all(1024)},
		{figureKind{name: "pingpong64", unit: "p50-µs", measure: pingPongFigure(pingPongRel)}, all(64)},
		{figureKind{name: "pingpong64-unreliable", unit: "p50-µs", measure: pingPongFigure(pingPongUnrel)}, all(64)},
	}
	for _, f := range figs {
		b.Run(f.name, func(b *testing.B) { runPasses(b, f.figureKind, f.ts) })
	}
	b.Run("handshake", func(b *testing.B) {
		ts := []transport{skeinNet(), quicGo(64)}
		rate := make(map[string][]figure)
		size := make(map[string][]figure)
		closing := make(map[string][]figure)
		for pass := range b.N {
			for i := range ts {
				t := ts[(pass+i)%len(ts)]
				r, n, c, err := measureHandshakes(t, handshakes)
				if err != nil {
					b.Fatalf("handshake %s, pass %d: %v", t.name, pass+1, err)
				}
				rate[t.name] = append(rate[t.name], figure{value: r})
				size[t.name] = append(size[t.name], figure{value: n})
				closing[t.name] = append(closing[t.name], figure{value: float64(c) / float64(time.Microsecond)})
			}
		}
		report(b, figureKind{name: "handshake rate", unit: "hs/s"}, ts, rate)
		report(b, figureKind{name: "handshake bytes", unit: "B", ratioSuffix: "-bytes"}, ts, size)
		report(b, figureKind{name: "client close, nothing pending", unit: "close-µs", ratioSuffix: "-close"}, ts, closing)
	})
}
