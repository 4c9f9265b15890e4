package net_test

import (
	"encoding/binary"
	"errors"
	"flag"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// failoverCuts, when set, makes TestFailoverMeasure cut the direct path
// that many times and log the failover time's median and 90th percentile
// (BENCHMARKS.md, "Failover").
var failoverCuts = flag.Int("failover.cuts", 0, "TestFailoverMeasure: direct path cuts to measure (0 skips)")

// hop is the one-way delay of every link of the failover tests' network:
// client to client directly, client to server, server to client.
const hop = 20 * time.Millisecond

// streamPeriod is the game's tick: an unreliable message each way per
// tick, a reliable one every third.
const streamPeriod = 33 * time.Millisecond

// failoverPair is two punched clients over a vnet with hop delay on every
// link, exchanging a game-like stream while the test cuts and heals their
// direct path.
type failoverPair struct {
	t    *testing.T
	nw   *vnet.Network
	a, b *net.Host
	cut  atomic.Bool
	tick int
	next time.Time // the next tick of the stream
	// Per direction (0: a to b, 1: b to a): messages sent and received.
	sentU    [2]map[uint64]time.Time // unreliable index: send time
	gotU     [2]map[uint64]time.Time // unreliable index: receive time
	sentR    [2]uint64               // reliable messages sent
	sentRAt  [2][]time.Time          // when each was sent
	maxRel   [2]time.Duration        // the longest a reliable message took, since reset
	gotR     [2]uint64               // reliable messages received, in order
	relayed  [2]bool                 // a's view of b, b's view of a
	switched [2]time.Time            // the last path change to the relay
	back     [2]time.Time            // the last path change to direct
	lostWhy  [2]error
}

func newFailoverPair(t *testing.T, seed int64) *failoverPair {
	return newFailoverPairWith(t, seed, net.PunchConfig{})
}

func newFailoverPairWith(t *testing.T, seed int64, pc net.PunchConfig) *failoverPair {
	nw := vnet.New(seed)
	t.Cleanup(func() { nw.Close() })
	nw.SetConditions(vnet.Conditions{Delay: hop})
	sconn, _ := nw.Listen(srvAddr)
	srv, _ := net.NewHost(sconn, net.Config{Accept: true, RelayPolicy: func(from, to net.HostID) bool { return true }})
	t.Cleanup(func() { srv.Close() })
	c := dialAll(t, srv, 2, vnetClient(t, nw, func(int) net.Config { return net.Config{Punch: pc} }))
	fp := &failoverPair{t: t, nw: nw, a: c[0], b: c[1], next: time.Now()}
	for i := range 2 {
		fp.sentU[i] = map[uint64]time.Time{}
		fp.gotU[i] = map[uint64]time.Time{}
		fp.relayed[i] = true
	}
	peer(t, c)
	nw.SetFilter(func(from, to netip.AddrPort, _ []byte) bool {
		return fp.cut.Load() && from != srvAddr && to != srvAddr
	})
	if err := fp.a.Punch(fp.b.ID(), []netip.AddrPort{fp.b.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	if err := fp.b.Punch(fp.a.ID(), []netip.AddrPort{fp.a.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	fp.run(time.Second)
	if fp.relayed[0] || fp.relayed[1] {
		t.Fatalf("not direct after punching: a relayed %v, b relayed %v", fp.relayed[0], fp.relayed[1])
	}
	return fp
}

// run streams for d, a millisecond at a time, taking every event.
func (fp *failoverPair) run(d time.Duration) {
	fp.t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !time.Now().Before(fp.next) {
			fp.send()
			fp.next = fp.next.Add(streamPeriod)
		}
		fp.poll()
		time.Sleep(time.Millisecond)
	}
}

// drain takes events for d, sending nothing.
func (fp *failoverPair) drain(d time.Duration) {
	fp.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		fp.poll()
		time.Sleep(time.Millisecond)
	}
	fp.next = time.Now()
}

func (fp *failoverPair) send() {
	fp.t.Helper()
	fp.tick++
	hosts := [2]*net.Host{fp.a, fp.b}
	for dir, h := range hosts {
		to := hosts[1-dir].ID()
		var msg [9]byte
		binary.LittleEndian.PutUint64(msg[1:], uint64(fp.tick))
		fp.sentU[dir][uint64(fp.tick)] = time.Now()
		if err := h.Send(to, net.Unreliable, msg[:]); err != nil {
			fp.t.Fatal(err)
		}
		if fp.tick%3 == 0 {
			msg[0] = 'R'
			binary.LittleEndian.PutUint64(msg[1:], fp.sentR[dir])
			fp.sentR[dir]++
			fp.sentRAt[dir] = append(fp.sentRAt[dir], time.Now())
			if err := h.Send(to, net.Reliable, msg[:]); err != nil {
				fp.t.Fatal(err)
			}
		}
	}
}

func (fp *failoverPair) poll() {
	fp.t.Helper()
	for dir, h := range [2]*net.Host{fp.b, fp.a} { // b receives a's (direction 0)
		for {
			e, ok := h.Poll()
			if !ok {
				break
			}
			switch e.Kind {
			case net.EventMessage:
				n := binary.LittleEndian.Uint64(e.Data[1:])
				if e.Data[0] == 'R' {
					if n != fp.gotR[dir] {
						fp.t.Fatalf("direction %d: reliable message %d arrived, want %d", dir, n, fp.gotR[dir])
					}
					fp.maxRel[dir] = max(fp.maxRel[dir], e.Received.Sub(fp.sentRAt[dir][n]))
					fp.gotR[dir]++
				} else {
					fp.gotU[dir][n] = e.Received
				}
			case net.EventPathChange:
				side := 1 - dir // the host h is: a is side 0
				fp.relayed[side] = e.Relayed
				if e.Relayed {
					fp.switched[side] = e.Received
					fp.lostWhy[side] = e.Err
				} else {
					fp.back[side] = e.Received
				}
			default:
				fp.t.Fatalf("unexpected event %v from %v (err %v)", e.Kind, e.Peer, e.Err)
			}
		}
	}
}

// cutResult is what one cut of the direct path cost.
type cutResult struct {
	switched [2]time.Duration // from the cut to each side's move to the relay
	resumed  [2]time.Duration // from the cut until an unreliable message sent after it arrived
	lost     [2]int           // unreliable messages sent after the cut and never delivered
	reliable [2]time.Duration // the longest a reliable message took around the cut
}

// cutAndMeasure cuts the direct path (after phase), streams for hold, and
// reports when each side moved and how many unreliable messages were lost.
// It fails the test if a side does not move to the relay or a reliable
// message is lost.
func (fp *failoverPair) cutAndMeasure(phase, hold time.Duration) cutResult {
	fp.t.Helper()
	fp.run(phase)
	cut := time.Now()
	fp.maxRel = [2]time.Duration{}
	fp.cut.Store(true)
	fp.run(hold)
	var r cutResult
	for side := range 2 {
		if !fp.relayed[side] || fp.switched[side].Before(cut) {
			fp.t.Fatalf("side %d still direct %v after the cut", side, hold)
		}
		if !errors.Is(fp.lostWhy[side], net.ErrPathLost) {
			fp.t.Fatalf("side %d relayed because %v, want ErrPathLost", side, fp.lostWhy[side])
		}
		r.switched[side] = fp.switched[side].Sub(cut)
	}
	for dir := range 2 {
		first := time.Time{}
		for i, sent := range fp.sentU[dir] {
			if sent.Before(cut) || sent.After(cut.Add(hold-200*time.Millisecond)) {
				continue // before the cut, or maybe still in flight
			}
			got, ok := fp.gotU[dir][i]
			if !ok {
				r.lost[dir]++
			} else if first.IsZero() || got.Before(first) {
				first = got
			}
		}
		r.resumed[dir] = first.Sub(cut)
		r.reliable[dir] = fp.maxRel[dir]
		if fp.gotR[dir] != fp.sentR[dir] {
			// Give the stream a moment, sending nothing more: a segment
			// sent just before the end is in flight.
			fp.drain(time.Second)
			if fp.gotR[dir] != fp.sentR[dir] {
				fp.t.Fatalf("direction %d: %d reliable messages sent, %d received in order", dir, fp.sentR[dir], fp.gotR[dir])
			}
		}
	}
	return r
}

// heal restores the direct path and streams until both sides are direct
// again, then for settle more; it returns how long the return took.
func (fp *failoverPair) heal(settle time.Duration) time.Duration {
	fp.t.Helper()
	fp.cut.Store(false)
	start := time.Now()
	for fp.relayed[0] || fp.relayed[1] {
		if time.Since(start) > 2*time.Minute {
			fp.t.Fatalf("still relayed %v after the path healed", time.Since(start))
		}
		fp.run(10 * time.Millisecond)
	}
	last := fp.back[0]
	if fp.back[1].After(last) {
		last = fp.back[1]
	}
	back := last.Sub(start)
	fp.run(settle)
	// Only what is sent from here on counts in the next cut.
	for dir := range 2 {
		clear(fp.sentU[dir])
		clear(fp.gotU[dir])
	}
	return back
}

// A direct path cut while a game streams both ways (20 ms per hop) moves to
// the relay on both sides (ErrPathLost) with no reliable message lost or
// reordered; the time it took and the unreliable messages lost are logged
// (BENCHMARKS.md: TestFailoverMeasure). Once the path heals, the pair goes
// direct again.
func TestFailoverMidStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFailoverPair(t, 61)
		cut := time.Now().Add(500 * time.Millisecond)
		r := fp.cutAndMeasure(500*time.Millisecond, 2*time.Second)
		// Unreliable messages sent after the cut, while the sender was
		// still on the dead direct path, arrived: mirrored on the relay.
		for dir := range 2 {
			mirrored := 0
			for i, sent := range fp.sentU[dir] {
				if _, ok := fp.gotU[dir][i]; ok && sent.After(cut) && sent.Before(fp.switched[dir]) {
					mirrored++
				}
			}
			if mirrored == 0 {
				t.Errorf("direction %d: no unreliable message sent between the cut and the switch arrived", dir)
			}
		}
		t.Logf("cut at 20 ms per hop: relayed after %v (a), %v (b); unreliable resumed after %v (a to b), %v (b to a); %d, %d unreliable lost; reliable messages took at most %v, %v",
			r.switched[0], r.switched[1], r.resumed[0], r.resumed[1], r.lost[0], r.lost[1], r.reliable[0], r.reliable[1])
		back := fp.heal(time.Second)
		t.Logf("direct again %v after the path healed", back)
	})
}

// An idle direct path (only keepalives) that is cut is found lost too.
func TestFailoverIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFailoverPair(t, 62)
		fp.cut.Store(true)
		cut := time.Now()
		for range 300 {
			fp.poll()
			time.Sleep(10 * time.Millisecond)
		}
		for side := range 2 {
			if !fp.relayed[side] || !errors.Is(fp.lostWhy[side], net.ErrPathLost) {
				t.Fatalf("side %d: relayed %v (%v), want relayed, path lost", side, fp.relayed[side], fp.lostWhy[side])
			}
			t.Logf("idle: side %d relayed after %v", side, fp.switched[side].Sub(cut))
		}
	})
}

// A direct path that delivers, with a one-way stream (b never sends), stays
// direct: the silence of b is answered by probes, not taken for a loss.
func TestFailoverOneWayStreamStaysDirect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFailoverPair(t, 63)
		for range 3000 {
			var msg [9]byte
			if err := fp.a.Send(fp.b.ID(), net.Unreliable, msg[:]); err != nil {
				t.Fatal(err)
			}
			fp.poll()
			time.Sleep(10 * time.Millisecond)
		}
		if fp.relayed[0] || fp.relayed[1] || !fp.switched[0].IsZero() || !fp.switched[1].IsZero() {
			t.Fatalf("a one-way stream on a working path left it: relayed %v, switched at %v", fp.relayed, fp.switched)
		}
	})
}

// TestFailoverMeasure cuts the direct path -failover.cuts times (each after
// a random phase of the stream, and after the pair has been direct longer
// than the flapping window) and logs the median and 90th percentile of the
// time to the relay and of the unreliable messages lost per cut:
//
//	go test -run TestFailoverMeasure -failover.cuts=50 -v ./engine/net/
func TestFailoverMeasure(t *testing.T) {
	if *failoverCuts <= 0 {
		t.Skip("a measurement: set -failover.cuts")
	}
	synctest.Test(t, func(t *testing.T) {
		fp := newFailoverPair(t, 64)
		rng := rand.New(rand.NewPCG(64, 64))
		var switched, resumed, reliable, backs []time.Duration
		var lost []int
		for range *failoverCuts {
			phase := 11*time.Second + time.Duration(rng.Int64N(int64(streamPeriod)))
			r := fp.cutAndMeasure(phase, 2*time.Second)
			for i := range 2 {
				switched = append(switched, r.switched[i])
				resumed = append(resumed, r.resumed[i])
				lost = append(lost, r.lost[i])
				reliable = append(reliable, r.reliable[i])
			}
			backs = append(backs, fp.heal(0))
		}
		pct := func(v []time.Duration, p int) time.Duration {
			slices.Sort(v)
			return v[(len(v)-1)*p/100]
		}
		slices.Sort(lost)
		t.Logf("%d cuts at %v per hop, both sides: relayed after p50 %v p90 %v max %v; unreliable resumed after p50 %v p90 %v; unreliable lost per cut and direction p50 %d p90 %d max %d; longest reliable delivery per cut p50 %v p90 %v; direct again after healing p50 %v p90 %v",
			*failoverCuts, hop, pct(switched, 50), pct(switched, 90), pct(switched, 100), pct(resumed, 50), pct(resumed, 90),
			lost[(len(lost)-1)/2], lost[(len(lost)-1)*9/10], lost[len(lost)-1], pct(reliable, 50), pct(reliable, 90), pct(backs, 50), pct(backs, 90))
	})
}

// A working direct path with loss and jitter (5% each way, 20±5 ms) keeps
// a streaming pair direct: the thresholds scale with the measured RTT and
// jitter, and a few lost datagrams are answered by probes, not taken for
// a dead path.
func TestFailoverLossyPathDoesNotFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFailoverPair(t, 65)
		fp.nw.SetConditions(vnet.Conditions{Delay: hop, Jitter: 5 * time.Millisecond, Loss: 0.05})
		start := time.Now()
		fp.run(60 * time.Second)
		st := fp.nw.Stats()
		t.Logf("%v: %d datagrams, %d lost; %d unreliable messages a to b of %d", time.Since(start), st.Sent, st.Dropped.Loss, len(fp.gotU[0]), len(fp.sentU[0]))
		if !fp.switched[0].IsZero() || !fp.switched[1].IsZero() {
			t.Fatalf("left a working path: relayed %v, at %v (%v, %v)", fp.relayed, fp.switched, fp.lostWhy[0], fp.lostWhy[1])
		}
	})
}

// With the full retries pushed out of reach (RetryMin an hour), a pair
// that lost its direct path still returns to it once it heals: the probes
// to the last direct address while relayed (PunchConfig.Recheck) find it.
func TestFailoverReturnsByRecheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFailoverPairWith(t, 66, net.PunchConfig{RetryMin: time.Hour, RetryMax: time.Hour})
		fp.cutAndMeasure(300*time.Millisecond, 5*time.Second)
		back := fp.heal(time.Second) // fails if still relayed after 2 minutes
		t.Logf("direct again %v after the path healed", back)
		if fp.relayed[0] || fp.relayed[1] {
			t.Fatal("relayed again after the return")
		}
	})
}

// A path cut one way only (a's datagrams to b vanish, b's reach a) moves
// both sides to the relay: b hears nothing from a directly, and a, whose
// probes b never answers, follows; no reliable message is lost.
func TestFailoverOneWayCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := newFailoverPair(t, 67)
		from := fp.a.LocalAddr()
		fp.nw.SetFilter(func(src, dst netip.AddrPort, _ []byte) bool {
			return fp.cut.Load() && src == from && dst != srvAddr
		})
		r := fp.cutAndMeasure(400*time.Millisecond, 3*time.Second)
		t.Logf("one-way cut: relayed after %v (a), %v (b); %d, %d unreliable lost", r.switched[0], r.switched[1], r.lost[0], r.lost[1])
		fp.heal(time.Second)
	})
}
