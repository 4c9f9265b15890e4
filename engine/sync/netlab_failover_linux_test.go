package sync_test

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// labCuts, when set, makes TestNetlabFailover cut the direct path that
// many times and log the percentiles (BENCHMARKS.md, "Failover").
var labCuts = flag.Int("failover.cuts", 1, "TestNetlabFailover: direct path cuts (each waits out the flapping window first)")

// labStream is a game stream between two lab clients in real time: an
// unreliable message each way every 33 ms, a reliable one every third.
type labStream struct {
	t        *testing.T
	c        [2]*sync.Client
	tick     uint64
	next     time.Time
	sentU    [2]map[uint64]time.Time
	gotU     [2]map[uint64]time.Time
	sentR    [2]uint64
	gotR     [2]uint64
	relayed  [2]bool
	switched [2]time.Time
	back     [2]time.Time
	why      [2]error
}

func newLabStream(t *testing.T, a, b *sync.Client) *labStream {
	s := &labStream{t: t, c: [2]*sync.Client{a, b}, next: time.Now()}
	for i := range 2 {
		s.sentU[i] = map[uint64]time.Time{}
		s.gotU[i] = map[uint64]time.Time{}
	}
	return s
}

// run streams for d.
func (s *labStream) run(d time.Duration) {
	s.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		if now := time.Now(); !now.Before(s.next) {
			s.send()
			s.next = s.next.Add(33 * time.Millisecond)
			if s.next.Before(now) { // the machine stalled: do not burst
				s.next = now.Add(33 * time.Millisecond)
			}
		}
		s.poll()
		time.Sleep(time.Millisecond)
	}
}

func (s *labStream) send() {
	s.t.Helper()
	s.tick++
	for dir, c := range s.c {
		to := s.c[1-dir].ID()
		var msg [9]byte
		binary.LittleEndian.PutUint64(msg[1:], s.tick)
		s.sentU[dir][s.tick] = time.Now()
		if err := c.Send(to, net.Unreliable, msg[:]); err != nil {
			s.t.Fatal(err)
		}
		if s.tick%3 == 0 {
			msg[0] = 'R'
			binary.LittleEndian.PutUint64(msg[1:], s.sentR[dir])
			s.sentR[dir]++
			if err := c.Send(to, net.Reliable, msg[:]); err != nil {
				s.t.Fatal(err)
			}
		}
	}
}

func (s *labStream) poll() {
	s.t.Helper()
	for dir := range 2 {
		c := s.c[1-dir] // receives direction dir
		for {
			e, ok := c.Poll()
			if !ok {
				break
			}
			switch e.Kind {
			case sync.EventMessage:
				n := binary.LittleEndian.Uint64(e.Data[1:])
				if e.Data[0] == 'R' {
					if n != s.gotR[dir] {
						s.t.Fatalf("direction %d: reliable message %d arrived, want %d", dir, n, s.gotR[dir])
					}
					s.gotR[dir]++
				} else {
					s.gotU[dir][n] = e.Received
				}
			case sync.EventRelayStateChange:
				side := 1 - dir
				s.relayed[side] = e.Relayed
				if e.Relayed {
					s.switched[side], s.why[side] = e.Received, e.Err
				} else {
					s.back[side] = e.Received
				}
			default:
				// Membership and connection events: not this test's.
			}
		}
	}
}

// cutTimes estimates when the direct path was cut in each direction, from
// the stream: the send time of the last unreliable message (sent after
// before) that arrived before the first one lost. The path was cut after
// it, so times measured from it are an upper bound (by at most the
// stream's period). Without a loss, before.
func (s *labStream) cutTimes(before time.Time) (cut [2]time.Time) {
	for dir := range 2 {
		cut[dir] = before
		ticks := make([]uint64, 0, len(s.sentU[dir]))
		for k, sent := range s.sentU[dir] {
			if !sent.Before(before) {
				ticks = append(ticks, k)
			}
		}
		slices.Sort(ticks)
		last := before
		for _, k := range ticks {
			if _, ok := s.gotU[dir][k]; !ok {
				cut[dir] = last
				break
			}
			last = s.sentU[dir][k]
		}
	}
	return cut
}

// TestNetlabFailover cuts the direct path between two cone NATs (router
// ra stops forwarding between its LAN and rb's address) while a game
// streams both ways at 20 ms per hop, and checks that both sides move to
// the relay (ErrPathLost) with no reliable message lost or out of order,
// then that they return once the path heals. The times are logged, not
// asserted (the machine's load moves them):
//
//	go test -run TestNetlabFailover -v ./engine/sync/ -args -failover.cuts=50
func TestNetlabFailover(t *testing.T) {
	l := upLab(t, "--nat", "cone")
	for _, h := range []string{"server", "a1", "b1"} {
		l.run("impair", h, "--delay", "20ms")
	}
	g := l.game("a1", "b1")
	a, b := g.clients[0], g.clients[1]
	drain(a)
	drain(b)
	if _, err := g.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		_, ab := a.PeerState(b.ID())
		_, ba := b.PeerState(a.ID())
		if ab && ba {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("not peers 10 s after the group formed")
		}
	}
	s := newLabStream(t, a, b)
	s.relayed = [2]bool{true, true}
	for start := time.Now(); s.relayed[0] || s.relayed[1]; {
		if time.Since(start) > 10*time.Second {
			t.Fatal("not direct 10 s after the group formed")
		}
		s.run(50 * time.Millisecond)
	}
	rules := [][]string{{"-s", "10.1.0.0/24", "-d", "203.0.113.102"}, {"-s", "203.0.113.102", "-d", "10.1.0.0/24"}}
	// Both rules in one command (netlab exec costs a few hundred ms),
	// run while the stream goes on.
	iptables := func(op string) time.Duration {
		t0 := time.Now()
		var cmd []string
		for _, r := range rules {
			cmd = append(cmd, "iptables "+op+" FORWARD "+strings.Join(r, " ")+" -j DROP")
		}
		done := make(chan error, 1)
		go func() {
			c := exec.Command(l.netlab, "exec", "ra", "sh", "-c", strings.Join(cmd, " && "))
			c.Env = append(os.Environ(), "NETLAB_PREFIX="+labPrefix)
			out, err := c.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, out)
			}
			done <- err
		}()
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("iptables %s: %v", op, err)
				}
				return time.Since(t0)
			default:
				s.run(5 * time.Millisecond)
			}
		}
	}
	var switched, resumed, backs []time.Duration
	var lost []int
	for i := range *labCuts {
		// Direct for longer than the flapping window, so that each cut
		// meets the thresholds of a path that has been stable.
		if i > 0 {
			s.run(11 * time.Second)
		} else {
			s.run(time.Second)
		}
		for dir := range 2 {
			clear(s.sentU[dir])
			clear(s.gotU[dir])
		}
		sa, _ := a.Host().LinkStats(b.ID())
		sb, _ := b.Host().LinkStats(a.ID())
		before := time.Now()
		took := iptables("-I")
		s.run(3 * time.Second)
		cuts := s.cutTimes(before)
		cut := cuts[0] // the earlier of the two
		if cuts[1].Before(cut) {
			cut = cuts[1]
		}
		for side := range 2 {
			if !s.relayed[side] || s.switched[side].Before(cut) {
				t.Fatalf("cut %d: side %d still direct 3 s after the cut", i, side)
			}
			if !errors.Is(s.why[side], net.ErrPathLost) {
				t.Fatalf("cut %d: side %d relayed because %v, want ErrPathLost", i, side, s.why[side])
			}
			switched = append(switched, s.switched[side].Sub(cut))
		}
		var res [2]time.Duration // zero: nothing was lost that way
		for dir := range 2 {
			n, first := 0, time.Time{}
			for k, sent := range s.sentU[dir] {
				if !sent.After(cuts[dir]) || sent.After(cut.Add(2500*time.Millisecond)) {
					continue
				}
				if got, ok := s.gotU[dir][k]; !ok {
					n++
				} else if first.IsZero() || got.Before(first) {
					first = got
				}
			}
			lost = append(lost, n)
			if !first.IsZero() && n > 0 {
				res[dir] = first.Sub(cuts[dir])
				resumed = append(resumed, res[dir])
			}
		}
		t.Logf("cut %d (direct RTT %v±%v, %v±%v; %v after the command began, which took %v): relayed after %v (a), %v (b); unreliable resumed after %v, %v; lost %d, %d",
			i, sa.RTT.Round(time.Millisecond), sa.Jitter.Round(time.Millisecond), sb.RTT.Round(time.Millisecond), sb.Jitter.Round(time.Millisecond),
			cut.Sub(before).Round(time.Millisecond), took.Round(time.Millisecond), switched[2*i].Round(time.Millisecond), switched[2*i+1].Round(time.Millisecond),
			res[0].Round(time.Millisecond), res[1].Round(time.Millisecond), lost[2*i], lost[2*i+1])
		iptables("-D")
		healed := time.Now()
		for s.relayed[0] || s.relayed[1] {
			if time.Since(healed) > 65*time.Second { // RetryMax and an attempt
				t.Fatalf("cut %d: not direct again 65 s after the path healed", i)
			}
			s.run(20 * time.Millisecond)
		}
		last := s.back[0]
		if s.back[1].After(last) {
			last = s.back[1]
		}
		backs = append(backs, last.Sub(healed))
	}
	// No reliable message lost: everything sent arrives, in order.
	for end := time.Now().Add(5 * time.Second); (s.gotR[0] != s.sentR[0] || s.gotR[1] != s.sentR[1]) && time.Now().Before(end); {
		s.poll()
		time.Sleep(5 * time.Millisecond)
	}
	if s.gotR != s.sentR {
		t.Fatalf("reliable messages sent %v, received in order %v", s.sentR, s.gotR)
	}
	pct := func(v []time.Duration, p int) time.Duration {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[(len(v)-1)*p/100].Round(time.Millisecond)
	}
	slices.Sort(lost)
	if len(resumed) == 0 {
		resumed = append(resumed, 0)
	}
	t.Logf("%d cuts at 20 ms per hop (both sides): relayed after p50 %v p90 %v max %v; unreliable resumed after p50 %v p90 %v; unreliable lost per cut and direction p50 %d p90 %d max %d; direct again after healing p50 %v p90 %v; %d reliable messages each way, none lost",
		*labCuts, pct(switched, 50), pct(switched, 90), pct(switched, 100), pct(resumed, 50), pct(resumed, 90),
		lost[(len(lost)-1)/2], lost[(len(lost)-1)*9/10], lost[len(lost)-1], pct(backs, 50), pct(backs, 90), s.sentR[0])
}
