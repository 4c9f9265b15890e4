package net_test

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// TestWindowThroughput measures one reliable bulk stream over vnet, in the
// bubble's virtual time (so the figure does not depend on the machine's
// load), for BENCHMARKS.md: the cost of the receive window and of
// Config.LinkReceiveBudget on long and lossy paths. It runs only when
// SKEIN_THROUGHPUT is set; SKEIN_THROUGHPUT_BUDGET sets LinkReceiveBudget
// on both ends (default: the default).
//
//	SKEIN_THROUGHPUT=1 go test -count=1 -run TestWindowThroughput -v ./engine/net/
func TestWindowThroughput(t *testing.T) {
	if os.Getenv("SKEIN_THROUGHPUT") == "" {
		t.Skip("a measurement: set SKEIN_THROUGHPUT=1")
	}
	budget, _ := strconv.Atoi(os.Getenv("SKEIN_THROUGHPUT_BUDGET"))
	for _, c := range []struct {
		rtt  time.Duration
		loss float64
	}{{10 * time.Millisecond, 0}, {50 * time.Millisecond, 0}, {100 * time.Millisecond, 0}, {50 * time.Millisecond, 0.01}, {100 * time.Millisecond, 0.02}} {
		synctest.Test(t, func(t *testing.T) {
			n := vnet.New(1)
			n.SetConditions(vnet.Conditions{Delay: c.rtt / 2, Loss: c.loss, Bandwidth: 100 << 20})
			cfg := net.Config{LinkReceiveBudget: budget}
			srv, cli, _ := vpair(t, n, cfg, cfg)
			const dur = 10 * time.Second
			msg := make([]byte, 8000)
			start := time.Now()
			got := 0
			done := make(chan struct{})
			go func() { // the application, taking its events every millisecond
				defer close(done)
				for time.Since(start) < dur {
					srv.FrameMove(func(e net.Event) {
						if e.Kind == net.EventMessage {
							got += len(e.Data)
						}
					})
					time.Sleep(time.Millisecond)
				}
			}()
			for time.Since(start) < dur {
				if err := cli.Send(net.ServerID, net.Reliable, msg); err != nil {
					if !errors.Is(err, net.ErrSendQueueFull) {
						t.Fatal(err)
					}
					time.Sleep(time.Millisecond)
				}
			}
			<-done
			st, _ := cli.LinkStats(net.ServerID)
			t.Logf("RTT %v, loss %.0f%%: %.2f MB/s, %d retransmits", c.rtt, c.loss*100, float64(got)/dur.Seconds()/1e6, st.Retransmits)
		})
	}
}
