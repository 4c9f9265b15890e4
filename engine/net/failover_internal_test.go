package net

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProtocolDocFailover holds what docs/PROTOCOL.md states about
// failover timing to the code.
func TestProtocolDocFailover(t *testing.T) {
	raw, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(raw)), " ")
	num := func(pattern string) int {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(doc)
		if m == nil {
			t.Fatalf("PROTOCOL.md no longer says %q", pattern)
		}
		v, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatalf("%q: %v", pattern, err)
		}
		return v
	}
	ms := func(d time.Duration) int { return int(d / time.Millisecond) }
	check := func(what string, doc, code int) {
		t.Helper()
		if doc != code {
			t.Errorf("PROTOCOL.md: %s is %d, the code has %d", what, doc, code)
		}
	}
	def := PunchConfig{}.withDefaults()
	check("probe floor (ms)", num(`of silence \(at least (\d+) ms\)`), ms(probeFloor))
	check("probe gap floor (ms)", num(`every .rto/2. \(at least (\d+) ms\)`), ms(gapFloor))
	check("lost floor (ms)", num(`\(at least (\d+) ms in all`), ms(lostFloor))
	check("keepalive (ms)", num(`probes the path every (\d+) ms`), ms(def.Keepalive))
	check("flap window (s)", num(`lost within (\d+) s of being taken`), int(flapWindow/time.Second))
	check("flap scaling", num(`\(up to (\d+) times, never past`), 1<<maxFlaps)
	check("recheck (s)", int(def.Recheck/time.Second), 1)
	check("rechecks before doubling", num(`doubled after every (\d+) unanswered ones`), recheckRun)
	check("longest recheck (s)", num(`unanswered ones, up to (\d+) s\)`), int(def.Recheck<<3/time.Second))
	check("retry min (s)", num(`retried after (\d+) s, doubling`), int(def.RetryMin/time.Second))
	check("retry max (s)", num(`doubling up to (\d+) s`), int(def.RetryMax/time.Second))
}

// lossTimes scale with the direct path's RTT and jitter, keep their order
// (probe before mirror before lost), and respect the floors, Lost and the
// flaps.
func TestLossTimes(t *testing.T) {
	h := &Host{punchCfg: PunchConfig{}.withDefaults()}
	at := func(srtt, jitter time.Duration, flaps int) lossTimes {
		l := &link{h: h, punch: &punchState{}}
		l.punch.flaps = flaps
		if srtt > 0 {
			l.punch.rtt = rttEstimator{srtt: srtt, jitter: jitter, samples: 2}
		}
		return h.lossTimesLocked(l)
	}
	for _, c := range []struct {
		srtt, jitter time.Duration
		flaps        int
		want         lossTimes
	}{
		// 20 ms per hop: probe after 80 ms, lost after 180 ms.
		{40 * time.Millisecond, 0, 0, lossTimes{probe: 80 * time.Millisecond, gap: 20 * time.Millisecond, mirror: 130 * time.Millisecond, lost: 180 * time.Millisecond}},
		// The LAN: the floors.
		{time.Millisecond, 0, 0, lossTimes{probe: 50 * time.Millisecond, gap: 20 * time.Millisecond, mirror: 61 * time.Millisecond, lost: 150 * time.Millisecond}},
		// Jitter widens everything.
		{40 * time.Millisecond, 10 * time.Millisecond, 0, lossTimes{probe: 120 * time.Millisecond, gap: 40 * time.Millisecond, mirror: 210 * time.Millisecond, lost: 320 * time.Millisecond}},
		// A far peer is capped by Lost.
		{time.Second, 0, 0, lossTimes{probe: 750 * time.Millisecond, gap: 500 * time.Millisecond, mirror: 1500 * time.Millisecond, lost: 1500 * time.Millisecond}},
		// Flaps double the probe and lost times.
		{40 * time.Millisecond, 0, 2, lossTimes{probe: 320 * time.Millisecond, gap: 20 * time.Millisecond, mirror: 370 * time.Millisecond, lost: 720 * time.Millisecond}},
	} {
		if got := at(c.srtt, c.jitter, c.flaps); got != c.want {
			t.Errorf("srtt %v jitter %v flaps %d: %+v, want %+v", c.srtt, c.jitter, c.flaps, got, c.want)
		}
	}
	// No RTT measured yet: conservative.
	if got := at(0, 0, 0); got.lost < 500*time.Millisecond || got.probe >= got.lost {
		t.Errorf("no RTT: %+v", got)
	}
}

// The rechecks while relayed slow down after a run of unanswered ones, up
// to 8 times Recheck, and start over once the path is direct again.
func TestRecheckBackoff(t *testing.T) {
	h := &Host{punchCfg: PunchConfig{}.withDefaults()}
	ps := &punchState{}
	var got []time.Duration
	for range 5 * recheckRun {
		got = append(got, h.recheckAfter(ps))
		ps.rechecks++
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if d := got[i*recheckRun]; d != want {
			t.Errorf("after %d rechecks: %v, want %v", i*recheckRun, d, want)
		}
	}
	ps.flaps = 2
	ps.rechecks = 0
	if d := h.recheckAfter(ps); d != 4*time.Second {
		t.Errorf("two flaps: %v, want 4s", d)
	}
}
