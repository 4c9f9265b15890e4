package attacktest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/internal/lobbytest"
	"github.com/skein-dev/skein/server/lobby"
)

// LegitAddr is the loopback address of the legitimate client; attackers
// use other addresses of 127.0.0.0/8.
const (
	LegitAddr = "127.0.0.9"
	PeerAddr  = "127.0.0.10"
	// DialTimeout bounds one legitimate connect: the only time bound the
	// short form asserts, which only a starved or hung server exceeds.
	DialTimeout = 10 * time.Second
)

// probeResult is what the legitimate client saw during an attack.
type probeResult struct {
	attempts, failures int
	connect, rtt       []time.Duration
	errs               []string
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxOf(d []time.Duration) (m time.Duration) {
	for _, v := range d {
		m = max(m, v)
	}
	return m
}

func (p probeResult) String() string {
	return fmt.Sprintf("%d/%d connects ok, connect median %v max %v, reliable RTT median %v over %d",
		p.attempts-p.failures, p.attempts, median(p.connect).Round(time.Microsecond), maxOf(p.connect).Round(time.Microsecond),
		median(p.rtt).Round(time.Microsecond), len(p.rtt))
}

// probeOnce connects a fresh legitimate client from LegitAddr, makes
// rounds reliable round trips (a lobby ListMatches page answered by the
// server)
// and disconnects. It gives up at once if the server process exits.
func probeOnce(srv *server, rounds int, p *probeResult) {
	p.attempts++
	ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
	defer cancel()
	go func() {
		select {
		case <-srv.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	var cfg sync.ClientConfig
	if srv.creds != nil {
		cfg.Credentials = srv.creds()
	}
	start := time.Now()
	c, err := lobbytest.DialFrom(ctx, LegitAddr+":0", srv.udp, cfg)
	if err != nil {
		p.failures++
		p.errs = append(p.errs, "connect: "+err.Error())
		return
	}
	defer c.Close()
	p.connect = append(p.connect, time.Since(start))
	for range rounds {
		t0 := time.Now()
		// One page of one match: a call the server answers (OK or
		// RateLimited), whatever the attack put in the list.
		if _, err := c.ListPage(ctx, 0, 1); err != nil {
			p.failures++
			p.errs = append(p.errs, "round trip: "+err.Error())
			return
		}
		p.rtt = append(p.rtt, time.Since(t0))
	}
}

// startProbe runs probeOnce over and over (at least once, and at least
// minAttempts times unless 3 failed) until stop is closed; the result
// comes on the channel.
func startProbe(srv *server, stop <-chan struct{}, minAttempts int) <-chan probeResult {
	out := make(chan probeResult, 1)
	go func() {
		var p probeResult
		for {
			probeOnce(srv, 3, &p)
			select {
			case <-stop:
				// Enough attempts for the figures, or enough failures to
				// know (each may have waited DialTimeout).
				if p.attempts >= minAttempts || p.failures >= 3 {
					out <- p
					return
				}
			case <-srv.exited:
				<-stop
				out <- p
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return out
}

// checkProbe fails t unless every legitimate connect and round trip worked.
func checkProbe(t *testing.T, p probeResult) {
	t.Helper()
	t.Logf("legitimate client: %v", p)
	if p.attempts == 0 || p.failures > 0 {
		errs := p.errs
		if len(errs) > 3 {
			errs = append(errs[:3:3], fmt.Sprintf("and %d more", len(p.errs)-3))
		}
		t.Errorf("the legitimate client failed %d of %d attempts: %q", p.failures, p.attempts, errs)
	}
}

// The peer: a legitimate client in a match with the attacker, in its own
// process so that a peer killed by the attack does not take the suite
// with it. TestMain runs peerMain when peerEnv is set.
const (
	peerEnv      = "SKEIN_ATTACK_PEER"       // the server's UDP address
	peerMatchEnv = "SKEIN_ATTACK_PEER_MATCH" // the match to join
)

// peerLine is one line the peer process prints.
type peerLine struct {
	ID           uint32 `json:"id,omitempty"`
	Joined       int    `json:"joined,omitempty"`
	RTTus        int64  `json:"rtt_us,omitempty"`
	Drops        uint64 `json:"drops,omitempty"`
	Err          string `json:"err,omitempty"`
	Disconnected string `json:"disconnected,omitempty"`
}

func peerMain() int {
	enc := json.NewEncoder(os.Stdout)
	srv, err := netip.ParseAddrPort(os.Getenv(peerEnv))
	match, err2 := strconv.ParseUint(os.Getenv(peerMatchEnv), 10, 32)
	if err != nil || err2 != nil {
		enc.Encode(peerLine{Err: fmt.Sprint("bad peer env: ", err, err2)})
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
	defer cancel()
	c, err := lobbytest.DialFrom(ctx, PeerAddr+":0", srv, sync.ClientConfig{})
	if err != nil {
		enc.Encode(peerLine{Err: err.Error()})
		return 2
	}
	r, _, err := c.Join(ctx, net.HostID(match))
	if err != nil || r != lobby.ResultOK {
		enc.Encode(peerLine{Err: fmt.Sprintf("join %d: %v %v", match, r, err)})
		return 2
	}
	enc.Encode(peerLine{ID: uint32(c.ID()), Joined: 1})
	stdin := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stdin) }()
	for {
		select {
		case <-stdin:
			c.Close()
			return 0
		case e, ok := <-c.Events:
			if !ok || e.Kind == sync.EventDisconnected {
				enc.Encode(peerLine{Disconnected: fmt.Sprint(e.Err)})
				return 3
			}
		case <-time.After(100 * time.Millisecond):
			ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
			t0 := time.Now()
			_, err := c.ListPage(ctx, 0, 1)
			cancel()
			l := peerLine{RTTus: time.Since(t0).Microseconds(), Drops: c.Host().Stats().Drops.Total()}
			if err != nil {
				l = peerLine{Err: err.Error()}
			}
			enc.Encode(l)
		}
	}
}

// peer is the peer process as the test sees it.
type peer struct {
	id     uint32
	cmd    *exec.Cmd
	lines  chan peerLine
	exited chan struct{}
	stdin  io.WriteCloser
}

func startPeer(t *testing.T, srv *server, match uint32) *peer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), peerEnv+"="+srv.udp.String(), peerMatchEnv+"="+strconv.FormatUint(uint64(match), 10))
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &peer{cmd: cmd, lines: make(chan peerLine, 1024), exited: make(chan struct{}), stdin: stdin}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l peerLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				select {
				case p.lines <- l:
				default:
				}
			}
		}
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case l := <-p.lines:
		if l.Joined != 1 {
			t.Fatalf("peer: %+v", l)
		}
		p.id = l.ID
	case <-p.exited:
		t.Fatal("the peer process ended before joining")
	case <-time.After(2 * DialTimeout):
		t.Fatal("the peer did not join")
	}
	return p
}

// checkUp fails t unless the peer is running, was never disconnected and
// makes a reliable round trip now. It returns the peer's drop count.
func (p *peer) checkUp(t *testing.T) uint64 {
	t.Helper()
	// Forget the lines from before, then wait for a fresh one.
	var bad []peerLine
	for {
		select {
		case l := <-p.lines:
			if l.Err != "" || l.Disconnected != "" {
				bad = append(bad, l)
			}
			continue
		default:
		}
		break
	}
	if len(bad) > 0 {
		t.Errorf("the peer failed during the attack: %+v", bad)
	}
	deadline := time.After(2 * DialTimeout)
	for {
		select {
		case l := <-p.lines:
			if l.Err != "" || l.Disconnected != "" {
				t.Fatalf("the peer is down: %+v", l)
			}
			return l.Drops
		case <-p.exited:
			t.Fatalf("the peer process died (%v)", p.cmd.ProcessState)
		case <-deadline:
			t.Fatal("the peer makes no round trips any more")
		}
	}
}
