package net_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// TestResumeTimeMeasure measures, on vnet's virtual clock, the time from a
// restored path to a resumed session: the server's EventBack, the client's
// EventBack, and the first reliable message that waited in each direction.
// A figure for BENCHMARKS.md ("Reconnect and resume"), not an assertion;
// it runs only when SKEIN_RESUME_MEASURE is set:
//
//	SKEIN_RESUME_MEASURE=1 go test -count=1 -run TestResumeTimeMeasure -v ./engine/net/
func TestResumeTimeMeasure(t *testing.T) {
	if os.Getenv("SKEIN_RESUME_MEASURE") == "" {
		t.Skip("a measurement: set SKEIN_RESUME_MEASURE=1")
	}
	for _, oneWay := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
		var srvBack, cliBack, down, up []time.Duration
		for trial := range 20 {
			synctest.Test(t, func(t *testing.T) {
				n := vnet.New(int64(100 + trial))
				defer n.Close()
				srv, cli, _ := vpair(t, n, resumeCfg, resumeCfg)
				n.SetConditions(vnet.Conditions{Delay: oneWay})
				id := cli.ID()
				var cut atomic.Bool
				n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
					return cut.Load() && (from == cliAddr || to == cliAddr)
				})
				cut.Store(true)
				expect(t, srv, net.EventAway, id)
				expect(t, cli, net.EventAway, net.ServerID)
				sendRange(t, cli, net.ServerID, 0, 1)
				sendRange(t, srv, id, 0, 1)
				// Restore at a random phase of the client's probes.
				r := rand.New(rand.NewPCG(uint64(trial), 1))
				time.Sleep(time.Duration(r.Int64N(int64(time.Second))))
				cut.Store(false)
				restored := time.Now()
				done := make(chan struct{})
				go func() {
					defer close(done)
					expect(t, cli, net.EventBack, net.ServerID)
					cliBack = append(cliBack, time.Since(restored))
					expect(t, cli, net.EventMessage, net.ServerID)
					down = append(down, time.Since(restored))
				}()
				expect(t, srv, net.EventBack, id)
				srvBack = append(srvBack, time.Since(restored))
				expect(t, srv, net.EventMessage, id)
				up = append(up, time.Since(restored))
				<-done
			})
		}
		rtt := 2 * oneWay
		t.Logf("RTT %v: restored path to server's EventBack %s; client's EventBack %s; first waiting message at the server %s, at the client %s",
			rtt, spread(srvBack, rtt), spread(cliBack, rtt), spread(up, rtt), spread(down, rtt))
	}
}

// spread formats the median and the maximum of d, and each as RTT + x.
func spread(d []time.Duration, rtt time.Duration) string {
	slices.Sort(d)
	med, hi := d[len(d)/2], d[len(d)-1]
	return fmt.Sprintf("median %v (RTT%+v), max %v (RTT%+v)", med, med-rtt, hi, hi-rtt)
}

// TestResumeMemoryMeasure measures the heap a server keeps per suspended
// session, against an idle live session measured the same way in the same
// run: the heap of a server whose n clients vanished, with their sessions
// (live, before they time out; or suspended) minus its heap once they are
// removed, over n. It runs only when
// SKEIN_RESUME_MEASURE is set:
//
//	SKEIN_RESUME_MEASURE=1 go test -count=1 -run TestResumeMemoryMeasure -v ./engine/net/
func TestResumeMemoryMeasure(t *testing.T) {
	if os.Getenv("SKEIN_RESUME_MEASURE") == "" {
		t.Skip("a measurement: set SKEIN_RESUME_MEASURE=1")
	}
	const clients = 200
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	for _, suspend := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			n := vnet.New(7)
			defer n.Close()
			sconn, err := n.Listen(srvAddr)
			if err != nil {
				t.Fatal(err)
			}
			scfg := resumeCfg
			if !suspend {
				scfg.ResumeGrace = 0
			}
			scfg.Accept = true
			scfg.SourceLinks, scfg.SourceHandshakeRate = -1, -1
			srv, err := net.NewHost(sconn, scfg)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			var cls []*net.Host
			for i := range clients {
				a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i / 200), byte(1 + i%200)}), 5000)
				c, err := n.Listen(a)
				if err != nil {
					t.Fatal(err)
				}
				h, err := net.NewHost(c, resumeCfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := h.Dial(t.Context(), srvAddr); err != nil {
					t.Fatal(err)
				}
				cls = append(cls, h)
			}
			for srv.Stats().Admission.Pending > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			// Every client vanishes (its host closed, nothing of it gets
			// through): the server keeps its links until they time out,
			// then removes them (the baseline) or suspends them.
			n.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return true })
			for _, h := range cls {
				h.Close()
			}
			if suspend {
				for srv.Stats().Resume.Suspended < clients {
					time.Sleep(100 * time.Millisecond)
				}
			}
			with := heap()
			for srv.Stats().Links > 0 {
				time.Sleep(time.Second)
			}
			without := heap()
			what := "idle live session"
			if suspend {
				what = "suspended session"
			}
			t.Logf("%s: %d bytes of heap each (%d sessions)", what, (with-without)/clients, clients)
		})
	}
}
