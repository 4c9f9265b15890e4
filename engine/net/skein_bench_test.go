package net_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// Skein's own figures, on the same harness and in the same run as the
// baselines (BenchmarkBaselineRawUDP, BenchmarkBaselineKCP):
//
//	go test -run '^$' -bench 'Baseline|Skein' -benchmem -count 5 ./engine/net/

// hostRecv returns a recv function for the harness that takes the next
// message event from h, and a stop function that unblocks it.
func hostRecv(h *net.Host) (recv func([]byte) (int, error), stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	recv = func(buf []byte) (int, error) {
		for {
			e, err := h.Next(ctx)
			if err != nil {
				return 0, err
			}
			if e.Kind == net.EventMessage {
				return copy(buf, e.Data), nil
			}
		}
	}
	return recv, cancel
}

// hostSend returns a send function that waits (flow control) while the
// link's send queue is full.
func hostSend(h *net.Host, to net.HostID, d net.Delivery) func([]byte) error {
	return func(m []byte) error {
		for {
			err := h.Send(to, d, m)
			if !errors.Is(err, net.ErrSendQueueFull) {
				return err
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
}

func skeinPingPong(b *testing.B, d net.Delivery) {
	checkGoroutines(b)
	srv, cli := pair(b, net.Config{}, net.Config{})
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait)
	echoRecv, echoStop := hostRecv(srv)
	b.Cleanup(echoStop)
	wg.Go(func() {
		buf := make([]byte, recvBufSize)
		for {
			n, err := echoRecv(buf)
			if err != nil {
				return
			}
			if err := srv.Send(cli.ID(), d, buf[:n]); err != nil {
				return
			}
		}
	})
	recv, stop := hostRecv(cli)
	defer stop()
	send := hostSend(cli, net.ServerID, d)
	warm := payload(64)
	if err := send(warm); err != nil {
		b.Fatal(err)
	}
	if _, err := recv(make([]byte, recvBufSize)); err != nil {
		b.Fatal(err)
	}
	runPingPong(b, 64, send, recv, stop)
	cb, sb := cli.Stats().Baton, srv.Stats().Baton
	b.ReportMetric(float64(cb.Takes+sb.Takes)/float64(b.N), "baton-takes/op")
	b.Logf("reader baton: client %+v, server %+v", cb, sb)
	b.ReportMetric(float64(srv.Stats().DatagramsOut)/float64(b.N), "srv-dgrams/op")
	b.ReportMetric(float64(cli.Stats().DatagramsOut)/float64(b.N), "cli-dgrams/op")
}

func BenchmarkSkein(b *testing.B) {
	b.Run("pingpong64", func(b *testing.B) { skeinPingPong(b, net.Reliable) })
	b.Run("pingpong64-unreliable", func(b *testing.B) { skeinPingPong(b, net.Unreliable) })
	for _, size := range []int{64, 1024} {
		b.Run(oneWayName(size), func(b *testing.B) {
			checkGoroutines(b)
			srv, cli := pair(b, net.Config{}, net.Config{})
			recv, stop := hostRecv(srv)
			send := hostSend(cli, net.ServerID, net.Reliable)
			runOneWay(b, size, send, recv, stop)
			cs, _ := cli.LinkStats(net.ServerID)
			ss, _ := srv.LinkStats(cli.ID())
			b.ReportMetric(float64(cs.DatagramsOut)/float64(b.N), "dgrams-out/msg")
			b.ReportMetric(float64(ss.DatagramsOut)/float64(b.N), "acks/msg")
			b.ReportMetric(float64(cs.Retransmits)/float64(b.N), "retrans/msg")
			reportFlow(b, cs.Flow, srv.Stats().Events)
			b.Logf("receiver flow %+v", ss.Flow)
		})
	}
}

// reportFlow reports the sender's flow counters and the receiver's event
// queue as per-message metrics (the findings table of BENCHMARKS.md, issue
// 18), and logs them whole.
func reportFlow(b *testing.B, f net.FlowStats, ev net.EventQueueStats) {
	b.Helper()
	var dgrams uint64
	for _, n := range f.Datagrams {
		dgrams += n
	}
	per := func(n uint64) float64 { return float64(n) / float64(max(f.MessagesSent, 1)) }
	if f.Segments > 0 {
		b.ReportMetric(float64(f.MessagesSent)/float64(f.Segments), "msgs/seg")
	}
	if dgrams > 0 {
		b.ReportMetric(float64(f.MessagesSent)/float64(dgrams), "msgs/dgram")
	}
	b.ReportMetric(per(f.WindowFull), "window-full/msg")
	b.ReportMetric(per(f.SendQueueFull), "queue-full/msg")
	if ev.Pushes > 0 {
		b.ReportMetric(float64(ev.Events)/float64(ev.Pushes), "events/push")
	}
	b.ReportMetric(float64(ev.Parks)/float64(max(ev.Events, 1)), "parks/event")
	b.Logf("sender flow %+v; flushes by cause %v; receiver event queue %+v", f, flushLine(f), ev)
}

func flushLine(f net.FlowStats) string {
	var sb strings.Builder
	for c := range net.NumFlushCauses {
		fmt.Fprintf(&sb, "%v %d (%d dgrams) ", c, f.Flushes[c], f.Datagrams[c])
	}
	return sb.String()
}
