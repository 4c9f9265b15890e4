package attacktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	stdnet "net"
	"net/netip"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/internal/hostile"
	"github.com/skein-dev/skein/server/internal/lobbytest"
	"github.com/skein-dev/skein/server/lobby"
)

var (
	tcpIdle = flag.Duration("attack.tcp-idle", 10*time.Second, "how long the server may hold a TCP connection that never completes a handshake")
	// The engine/sync tag byte precedes the ListMatches response frame.
	maxListReply = flag.Int("attack.max-list-reply", lobby.MaxPageBytes+1, "largest ListMatches answer, in bytes (lobby.MaxPageBytes and the tag byte)")
)

// size picks the short or the long form of a count.
func size(short, full int) int {
	if *long {
		return full
	}
	return short
}

// figure is one row of the long form's table.
type figure struct {
	name                   string
	connectMed, connectMax time.Duration
	rttMed                 time.Duration
	attempts, failures     int
	cpu                    float64 // server CPU, % of one core
	peakRSS                uint64
}

var (
	figMu   stdsync.Mutex
	figures []figure
)

// underAttack runs attack while the legitimate client connects and makes
// round trips over and over, then checks what every attack must leave
// true: the server is alive and healthy, every legitimate attempt worked
// (and one more after the attack), its peak RSS is under the budget, and
// the refusals in e were counted. It returns the metric deltas.
//
// The legitimate client starts when the attack calls started (an attack
// that fills the server's slots first calls it once they are full, and
// keeps up the pressure), or when attack returns if it never does.
func underAttack(t *testing.T, srv *server, e expect, attack func(started func())) map[string]float64 {
	t.Helper()
	before := srv.metrics(t)
	cpu0, t0 := srv.procCPU(t), time.Now()
	stop := make(chan struct{})
	var res <-chan probeResult
	var once stdsync.Once
	started := func() { once.Do(func() { res = startProbe(srv, stop, size(1, 30)) }) }
	attack(started)
	started()
	close(stop)
	p := <-res
	select {
	case <-srv.exited:
		checkProbe(t, p)
	default:
	}
	cpu := srv.procCPU(t) - cpu0
	wall := time.Since(t0)
	probeOnce(srv, 1, &p) // and once after the attack
	srv.checkAlive(t)
	d := delta(before, srv.metrics(t))
	t.Logf("metric deltas:%s", formatDelta(d))
	checkProbe(t, p)
	rss, hwm := srv.procMem(t)
	t.Logf("server: RSS %d MiB, peak %d MiB, CPU %.0f%% of a core over %v", rss>>20, hwm>>20, 100*cpu.Seconds()/wall.Seconds(), wall.Round(time.Millisecond))
	if hwm > RSSBudget {
		t.Errorf("server peak RSS %d MiB, budget %d MiB", hwm>>20, RSSBudget>>20)
	}
	checkCounters(t, d, e)
	figMu.Lock()
	figures = append(figures, figure{name: t.Name(), connectMed: median(p.connect), connectMax: maxOf(p.connect), rttMed: median(p.rtt),
		attempts: p.attempts, failures: p.failures, cpu: 100 * cpu.Seconds() / wall.Seconds(), peakRSS: hwm})
	figMu.Unlock()
	return d
}

// helloProbe sends n hellos from the legitimate address, one at a time
// and never again, while an attack runs, and counts those the server
// answered (with a cookie) within a second: a legitimate client's first
// hello must not be lost in a flood from other addresses.
func helloProbe(t *testing.T, srv *server, n int, stop <-chan struct{}) (answered, sent int) {
	c, err := hostile.Listen(LegitAddr + ":0")
	if err != nil {
		t.Error(err)
		return 0, 0
	}
	defer c.Close()
	hs, _ := hostile.NewHandshake(false)
	hello := hostile.AppendHello(nil, hostile.Version, 0, hs.Pub, nil)
	buf := make([]byte, 2048)
	for range n {
		select {
		case <-stop:
			return answered, sent
		default:
		}
		sent++
		c.WriteToUDPAddrPort(hello, srv.udp)
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			k, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if _, err := hostile.ParseCookie(buf[:k]); err == nil {
				answered++
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return answered, sent
}

// whileHelloProbe runs flood with helloProbe beside it and checks every
// probe hello was answered.
func whileHelloProbe(t *testing.T, srv *server, flood func()) {
	t.Helper()
	stop := make(chan struct{})
	type result struct{ answered, sent int }
	done := make(chan result, 1)
	go func() {
		a, s := helloProbe(t, srv, 50, stop)
		done <- result{a, s}
	}()
	flood()
	close(stop)
	r := <-done
	t.Logf("legitimate hellos answered during the flood: %d of %d", r.answered, r.sent)
	if r.answered < r.sent {
		t.Errorf("the server ignored %d of %d legitimate hellos during the flood (handshake starvation)", r.sent-r.answered, r.sent)
	}
}

// listAll reads every page of the match list, waiting out RateLimited
// answers.
func listAll(ctx context.Context, c *hostile.Client) ([]lobby.MatchInfo, error) {
	var all []lobby.MatchInfo
	after := uint32(0)
	for {
		a, err := c.ListPage(ctx, after, 0)
		if err != nil {
			return all, err
		}
		if a.Result == lobby.ResultRateLimited {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		all = append(all, a.Matches...)
		if a.Next == 0 {
			return all, nil
		}
		after = a.Next
	}
}

// tcpSource is the source address of the i-th TCP connection: 16 from
// each of 127.0.2.1 … 127.0.2.250, 127.0.3.1 …
func tcpSource(i int) string {
	a := i / 16
	return fmt.Sprintf("127.0.%d.%d", 2+a/250, 1+a%250)
}

// parallel runs f n times, k at a time.
func parallel(n, k int, f func()) {
	var wg stdsync.WaitGroup
	sem := make(chan struct{}, k)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f()
		}()
	}
	wg.Wait()
}

func dialHostile(t *testing.T, ctx context.Context, local string, srv *server) *hostile.Client {
	t.Helper()
	c, err := hostile.Dial(ctx, local, srv.udp)
	if err != nil {
		t.Fatalf("hostile client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialMany connects n hostile clients from local, 16 at a time.
// pinWindow is the receive window docs/PROTOCOL.md states (256 segments):
// an attacker pinning memory sends up to the window's end, since a segment
// past it sheds the link at once.
const pinWindow = 256

// clientsPerAddr is how many clients dialMany puts on one address when its
// local address is a pattern.
const clientsPerAddr = 10

func dialMany(t *testing.T, ctx context.Context, local string, srv *server, n int) []*hostile.Client {
	t.Helper()
	out := make([]*hostile.Client, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	var wg stdsync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			addr := local
			if strings.Contains(local, "%d") {
				// Spread over addresses, clientsPerAddr each, as a botnet
				// would, under the server's per-source limits.
				addr = fmt.Sprintf(local, 1+i/clientsPerAddr)
			}
			out[i], errs[i] = hostile.Dial(ctx, addr, srv.udp)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range out {
			if c != nil {
				c.Close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("hostile clients: %v", err)
	}
	return out
}

func createMatch(t *testing.T, ctx context.Context, c *hostile.Client, name string) uint32 {
	t.Helper()
	a, err := c.Create(ctx, name, 16, nil)
	if err != nil || a.Result != lobby.ResultOK {
		t.Fatalf("create match: %v %v", a.Result, err)
	}
	return a.Match
}

// emptyMessage is a KCP frame carrying one empty message at sn.
func emptyMessage(sn uint32) []byte {
	return hostile.AppendFrame(nil, hostile.FrameKCP, hostile.AppendSegment(nil, hostile.Segment{Cmd: hostile.KCPPush, Wnd: 1024, SN: sn}))
}

func TestAttacks(t *testing.T) {
	t.Cleanup(printFigures)

	t.Run("0-no-attack", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		underAttack(t, srv, nil, func(started func()) {
			started()
			time.Sleep(time.Duration(size(300, 5000)) * time.Millisecond)
		})
	})

	// 1. An empty reliable message (a 0-byte KCP message) to the match
	// server, and to a peer through the relay.
	t.Run("1-empty-message", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		ctx := ctxFor(t, 60*time.Second)
		a := dialHostile(t, ctx, "127.0.0.21:0", srv)
		match := createMatch(t, ctx, a, "empty")
		pr := startPeer(t, srv, match)
		p, err := a.WaitPeer(ctx, pr.id)
		if err != nil {
			t.Fatal(err)
		}
		peerDrops := pr.checkUp(t)
		b := dialHostile(t, ctx, "127.0.0.22:0", srv)
		underAttack(t, srv, expect{{"skein_drops_total"}}, func(started func()) {
			started()
			for i := range uint32(size(2, 20)) {
				// On the peer link's own stream (relayed), and on the
				// server link's stream after the messages b sent.
				if err := a.SendRelayed(p.ID, a.SealPeer(p, emptyMessage(i))); err != nil {
					t.Error(err)
				}
				if err := b.SendFrames(emptyMessage(b.TakeSN(1))); err != nil {
					t.Error(err)
				}
			}
			time.Sleep(500 * time.Millisecond)
		})
		if d := pr.checkUp(t); d <= peerDrops {
			t.Errorf("the peer counted no drop for the empty messages (drops %d → %d)", peerDrops, d)
		}
	})

	// 2. Reflection: members move their links to a victim's address with
	// spoofed datagrams, then one sends fan-out frames; the server must not
	// send the unvalidated address more than 3× what came from it.
	t.Run("2-reflection", func(t *testing.T) {
		raw, err := hostile.NewRawSender()
		if errors.Is(err, hostile.ErrNotPermitted) {
			t.Skipf("spoofing a source address needs root: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		srv := startServer(t, serverOpts{})
		ctx := ctxFor(t, 60*time.Second)
		victim, err := hostile.Listen("127.0.0.77:0")
		if err != nil {
			t.Fatal(err)
		}
		defer victim.Close()
		vaddr := victim.LocalAddr().(*stdnet.UDPAddr).AddrPort()
		var received atomic.Int64
		go func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := victim.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				received.Add(int64(n))
			}
		}()
		n := size(8, 15) // and the peer: 16, a match's maximum
		as := dialMany(t, ctx, "127.0.0.23:0", srv, n)
		match := createMatch(t, ctx, as[0], "reflect")
		for _, a := range as[1:] {
			if r, err := a.Join(ctx, match); err != nil || r.Result != lobby.ResultOK {
				t.Fatalf("join: %v %v", r.Result, err)
			}
		}
		pr := startPeer(t, srv, match)
		pr.checkUp(t)
		var spoofed int64
		send := func(b []byte) {
			if err := raw.Send(vaddr, srv.udp, b); err != nil {
				t.Fatal(err)
			}
			spoofed += int64(len(b))
		}
		underAttack(t, srv, expect{refusals}, func(started func()) {
			started()
			start := received.Load()
			for _, a := range as {
				a.Mute()
				send(a.Seal(hostile.AppendFrame(nil, hostile.FramePing, make([]byte, 8))))
			}
			// Not a lobby call (no engine/sync tag): only the reflection
			// may be counted, not the server's own lobby refusing it.
			payload := bytes.Repeat([]byte{0xee}, 1100)
			for i := range size(100, 2000) {
				body := hostile.AppendFanout(nil, match, nil, 1, uint32(i+1), payload)
				send(as[0].Seal(hostile.AppendFrame(nil, hostile.FrameFanout, body)))
				// 250 a second: the copies stay under the sender's relay
				// rate (4000/s by default), which is not what is tested.
				time.Sleep(4 * time.Millisecond)
			}
			time.Sleep(time.Second)
			got := received.Load() - start
			t.Logf("reflection: %d bytes sent from the victim's address, %d bytes sent to it (%.1f×)", spoofed, got, float64(got)/float64(spoofed))
			if got > 3*spoofed {
				t.Errorf("the server sent the unvalidated address %d bytes for %d received from it (%.1f×, limit 3×)", got, spoofed, float64(got)/float64(spoofed))
			}
		})
		pr.checkUp(t)
	})

	// 3. Memory pinning: clients each hold as many out-of-order KCP
	// segments as the server's receive window takes (the first one
	// missing), from 30 addresses (10 clients each, under the per-source
	// limits): the most a set of well-formed attackers can pin.
	t.Run("3-memory-pinning", func(t *testing.T) {
		n := size(30, 300)
		// The server's default host budget (32 MiB) for 300 attackers,
		// scaled down with them in the short form, so that the budget is
		// reached (and links shed and counted) in both.
		hostBudget := n * (32 << 20) / 300
		srv := startServer(t, serverOpts{args: []string{"-host-receive-budget", strconv.Itoa(hostBudget)}})
		ctx := ctxFor(t, 120*time.Second)
		cs := dialMany(t, ctx, "127.0.1.%d:0", srv, n)
		time.Sleep(200 * time.Millisecond)
		rss0, _ := srv.procMem(t)
		underAttack(t, srv, expect{refusals}, func(started func()) {
			started()
			data := make([]byte, hostile.KCPMTU-hostile.KCPOverhead)
			var wg stdsync.WaitGroup
			work := make(chan *hostile.Client)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for c := range work {
						base := c.TakeSN(pinWindow) // base itself is never sent
						for i := uint32(1); i < pinWindow; i++ {
							c.SendSegments(hostile.Segment{Cmd: hostile.KCPPush, Wnd: 1024, SN: base + i, Data: data})
							if i%16 == 0 {
								time.Sleep(time.Millisecond)
							}
						}
					}
				}()
			}
			for _, c := range cs {
				work <- c
			}
			close(work)
			wg.Wait()
			time.Sleep(time.Second)
		})
		_, hwm := srv.procMem(t)
		// The budget scaled to n clients: 150 MB for 300.
		allowed := uint64(n) * RSSBudget / 300
		t.Logf("pinning: RSS %d MiB before, peak %d MiB after, %d clients (allowed growth %d MiB)", rss0>>20, hwm>>20, n, allowed>>20)
		if hwm > rss0 && hwm-rss0 > allowed {
			t.Errorf("%d clients pinning out-of-order data grew the server by %d MiB (%d KiB each; budget %d KiB each)",
				n, (hwm-rss0)>>20, (hwm-rss0)>>10/uint64(n), RSSBudget>>10/300)
		}
	})

	// 4. Slot exhaustion: cookie echoes from many source ports that never
	// confirm, and one host holding more confirmed clients than the server
	// has slots.
	t.Run("4a-half-open", func(t *testing.T) {
		slots := size(256, 0)
		srv := startServer(t, serverOpts{maxClients: slots})
		ctx := ctxFor(t, 180*time.Second)
		n := size(320, 4200)
		var echoed atomic.Int64
		// echo sends one cookie echo from a new source port and never
		// finishes the handshake.
		echo := func() {
			c, err := hostile.Listen("127.0.0.25:0")
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			hs, _ := hostile.NewHandshake(false)
			if hs.GetCookie(ctx, c, srv.udp) == nil && hs.EchoCookie(c, srv.udp) == nil {
				echoed.Add(1)
			}
		}
		underAttack(t, srv, expect{refusals}, func(started func()) {
			parallel(n, 16, echo)
			t.Logf("%d of %d cookie echoes sent", echoed.Load(), n)
			// The slots are taken: the legitimate client tries now, while
			// the attacker goes on taking every slot that frees.
			started()
			end := time.Now().Add(time.Duration(size(1, 10)) * time.Second)
			for time.Now().Before(end) {
				parallel(16, 16, echo)
				time.Sleep(20 * time.Millisecond)
			}
		})
	})
	t.Run("4b-one-host", func(t *testing.T) {
		slots := size(256, 0)
		srv := startServer(t, serverOpts{maxClients: slots})
		ctx := ctxFor(t, 180*time.Second)
		n := size(300, 4200)
		var ok atomic.Int64
		dial := func() {
			c, err := hostile.Dial(ctx, "127.0.0.26:0", srv.udp)
			if err == nil {
				ok.Add(1)
				t.Cleanup(func() { c.Close() })
			}
		}
		underAttack(t, srv, expect{refusals}, func(started func()) {
			parallel(n, 16, dial)
			t.Logf("one host: %d of %d clients connected", ok.Load(), n)
			started()
			end := time.Now().Add(time.Duration(size(1, 10)) * time.Second)
			for time.Now().Before(end) {
				parallel(16, 16, dial)
				time.Sleep(20 * time.Millisecond)
			}
		})
	})

	// 5. Handshake starvation: a hello flood over UDP from many ports, and
	// over one TCP connection.
	t.Run("5a-hello-flood-udp", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		hs, _ := hostile.NewHandshake(false)
		hello := hostile.AppendHello(nil, hostile.Version, 0, hs.Pub, nil)
		underAttack(t, srv, expect{{"skein_drops_total"}}, func(started func()) {
			started()
			whileHelloProbe(t, srv, func() {
				st, err := hostile.Flood{Target: srv.udp, Sources: hostile.SourcePorts("127.0.0.27", 64), Rate: 100_000,
					Count: size(100_000, 1_000_000), Duration: time.Duration(size(2, 12)) * time.Second,
					Make: func(_ int, _ netip.AddrPort, b []byte) []byte { return append(b, hello...) }}.Run(context.Background())
				if err != nil {
					t.Error(err)
				}
				t.Logf("hello flood: %d datagrams in %v (%.0f/s)", st.Datagrams, st.Elapsed.Round(time.Millisecond), st.Rate())
			})
		})
	})
	t.Run("5b-hello-flood-tcp", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		hs, _ := hostile.NewHandshake(false)
		hello := hostile.TCPFrame(nil, hostile.AppendHello(nil, hostile.Version, 0, hs.Pub, nil))
		underAttack(t, srv, expect{refusals}, func(started func()) {
			started()
			c, err := stdnet.DialTimeout("tcp", srv.udp.String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go io.Copy(io.Discard, c)
			batch := make([]byte, 0, 64*len(hello))
			for range 64 {
				batch = append(batch, hello...)
			}
			whileHelloProbe(t, srv, func() {
				deadline := time.Now().Add(time.Duration(size(2, 12)) * time.Second)
				c.SetWriteDeadline(deadline)
				sent := 0
				for sent < size(300_000, 2_000_000) && time.Now().Before(deadline) {
					if _, err := c.Write(batch); err != nil {
						break
					}
					sent += 64
				}
				t.Logf("TCP hello flood: %d hellos", sent)
			})
		})
	})

	// 6. TCP fallback: idle connections and half-sent frames. The server
	// must close them all within -attack.tcp-idle; that is checked by the
	// last subtest, so that the wait overlaps the attacks in between.
	var tcpSrv *server
	var tcpConns []stdnet.Conn
	var tcpOpened time.Time
	var tcpBefore map[string]float64
	parent := t
	t.Cleanup(func() {
		for _, c := range tcpConns {
			c.Close()
		}
	})
	t.Run("6-tcp-idle", func(t *testing.T) {
		srv := startServer(t, serverOpts{owner: parent})
		idle, half := size(500, 4000), size(200, 1000)
		tcpBefore = srv.metrics(t)
		underAttack(t, srv, nil, func(started func()) {
			started()
			// 16 connections from each source address (a per-address cap
			// must not be what stops them), and 32 more from one address.
			refused := 0
			for i := range idle + half + 32 {
				src := tcpSource(i)
				if i >= idle+half {
					src = "127.0.1.1"
				}
				d := stdnet.Dialer{Timeout: 5 * time.Second, LocalAddr: &stdnet.TCPAddr{IP: stdnet.ParseIP(src)}}
				c, err := d.Dial("tcp", srv.udp.String())
				if err != nil {
					refused++
					continue
				}
				tcpConns = append(tcpConns, c)
				if i >= idle && i < idle+half {
					// A frame header for 1200 bytes and 10 of them.
					c.Write(append([]byte{0x04, 0xb0}, make([]byte, 10)...))
				}
			}
			tcpOpened = time.Now()
			t.Logf("%d TCP connections open, %d refused at connect", len(tcpConns), refused)
			time.Sleep(time.Second)
		})
		tcpSrv = srv
	})
	defer t.Run("6-tcp-idle-closed", func(t *testing.T) {
		if tcpSrv == nil {
			t.Skip("6-tcp-idle did not run")
		}
		// Every connection must be closed by the server within the bound.
		// (A read deadline already past fails at once, even with the
		// server's close waiting: give those half a second.)
		deadline := tcpOpened.Add(*tcpIdle)
		if soon := time.Now().Add(500 * time.Millisecond); deadline.Before(soon) {
			deadline = soon
		}
		var open atomic.Int64
		var wg stdsync.WaitGroup
		for _, c := range tcpConns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetReadDeadline(deadline)
				_, err := io.Copy(io.Discard, c)
				var ne stdnet.Error
				if errors.As(err, &ne) && ne.Timeout() {
					open.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := open.Load(); n > 0 {
			t.Errorf("%d of %d idle or half-sent TCP connections still open after %v", n, len(tcpConns), *tcpIdle)
		}
		tcpSrv.checkAlive(t)
		d := delta(tcpBefore, tcpSrv.metrics(t))
		t.Logf("metric deltas since the connections opened:%s", formatDelta(d))
		checkCounters(t, d, expect{refusals})
	})

	// 7. The lobby: huge ListMatches answers, call floods, QuickJoin races,
	// hostile names, chat bursts.
	t.Run("7a-list-flood", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		ctx := ctxFor(t, 120*time.Second)
		cs := dialMany(t, ctx, "127.0.0.28:0", srv, size(40, 200))
		opts := make([]byte, 4096)
		for i, c := range cs {
			if a, err := c.Create(ctx, fmt.Sprintf("%-32d", i)[:32], 16, opts); err != nil || a.Result != lobby.ResultOK {
				t.Fatalf("create: %v %v", a.Result, err)
			}
		}
		f := cs[0]
		underAttack(t, srv, expect{refusals}, func(started func()) {
			started()
			in0 := f.ReliableBytesIn.Load()
			lctx, cancel := context.WithTimeout(ctx, DialTimeout)
			_, err := f.ListPage(lctx, 0, 255)
			cancel()
			if one := f.ReliableBytesIn.Load() - in0; err != nil {
				// An answer over MaxReliable (256 KiB) cannot be sent at all.
				t.Errorf("ListMatches with %d matches open got no answer: %v", len(cs), err)
			} else {
				t.Logf("one ListMatches answer: %d bytes", one)
				if one > uint64(*maxListReply) {
					t.Errorf("one ListMatches answer is %d bytes (limit %d)", one, *maxListReply)
				}
			}
			out0, in1 := f.BytesOut.Load(), f.BytesIn.Load()
			calls := size(2000, 20000)
			for i := range calls {
				_ = f.ListRaw(uint32(1_000_000+i), 0, 255)
				if i%100 == 99 {
					time.Sleep(10 * time.Millisecond)
				}
			}
			time.Sleep(time.Second)
			t.Logf("call flood: %d calls, %d bytes up, %d bytes down", calls, f.BytesOut.Load()-out0, f.BytesIn.Load()-in1)
		})
	})
	t.Run("7b-quickjoin-race", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		ctx := ctxFor(t, 120*time.Second)
		cs := dialMany(t, ctx, "127.0.0.29:0", srv, size(40, 200))
		underAttack(t, srv, nil, func(started func()) {
			started()
			for range size(3, 10) {
				var wg stdsync.WaitGroup
				for _, c := range cs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c.QuickJoin(ctx)
					}()
				}
				wg.Wait()
				for _, c := range cs[:len(cs)/2] {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c.Leave(ctx)
					}()
				}
				wg.Wait()
			}
		})
		ms, err := listAll(ctx, cs[0])
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, m := range ms {
			total += int(m.Players)
			if m.Players > m.MaxPlayers {
				t.Errorf("match %d has %d players, max %d", m.ID, m.Players, m.MaxPlayers)
			}
		}
		if total > len(cs) {
			t.Errorf("the matches list %d players, only %d clients exist", total, len(cs))
		}
	})
	t.Run("7c-names-and-chat", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		ctx := ctxFor(t, 120*time.Second)
		listener, err := lobbytest.DialFrom(ctx, LegitAddr+":0", srv.udp, sync.ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer listener.Close()
		cs := dialMany(t, ctx, "127.0.0.30:0", srv, size(10, 50))
		names := []string{"\x1b[31mred\x07", strings.Repeat("n", 10000), "bad\xff\xfeutf8", "\u202eevil\u200b", "a\nb\rc\x00d"}
		var lines []lobbytest.ChatLine
		underAttack(t, srv, expect{{"skein_lobby_chat_dropped_total"}}, func(started func()) {
			started()
			for i, c := range cs {
				c.Lobby().SetName(net.ServerID, rmi.Reliable, names[i%len(names)])
			}
			for i := range size(100, 1000) {
				for j, c := range cs {
					text := names[(i+j)%len(names)]
					if i%7 == 0 {
						text = strings.Repeat("x", 5000)
					}
					c.Lobby().Chat(net.ServerID, rmi.Reliable, text)
				}
				if i%10 == 9 {
					time.Sleep(10 * time.Millisecond)
				}
			}
			deadline := time.After(time.Second)
		collect:
			for {
				select {
				case l := <-listener.Chat:
					lines = append(lines, l)
				case <-deadline:
					break collect
				}
			}
		})
		t.Logf("the listener got %d chat lines", len(lines))
		for _, l := range lines {
			if bad := badText(l.Name, 24); bad != "" {
				t.Errorf("chat name %q from %v: %s", l.Name, l.From, bad)
			}
			if bad := badText(l.Text, 280); bad != "" {
				t.Errorf("chat line %q from %v: %s", l.Text, l.From, bad)
			}
		}
	})

	// 8. Oversize datagrams through the relay, replayed hellos, garbage.
	t.Run("8a-oversize-relay", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		ctx := ctxFor(t, 60*time.Second)
		a := dialHostile(t, ctx, "127.0.0.31:0", srv)
		b := dialHostile(t, ctx, "127.0.0.32:0", srv)
		match := createMatch(t, ctx, a, "oversize")
		if r, err := b.Join(ctx, match); err != nil || r.Result != lobby.ResultOK {
			t.Fatalf("join: %v %v", r.Result, err)
		}
		p, err := a.WaitPeer(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		underAttack(t, srv, expect{{"skein_drops_total"}}, func(started func()) {
			started()
			// 11 + 3 + 6 + 1900 + 16 = 1936 bytes on the wire.
			inner := make([]byte, 1900-hostile.DataHeaderSize-hostile.TagSize)
			for range size(50, 500) {
				d := a.SealPeer(p, inner)
				if err := a.SendRelayed(b.ID, d); err != nil {
					t.Error(err)
				}
			}
			time.Sleep(500 * time.Millisecond)
		})
		if m := b.MaxIn.Load(); m > hostile.MaxDatagram {
			t.Errorf("the server relayed a %d-byte datagram (MaxDatagram %d)", m, hostile.MaxDatagram)
		}
	})
	t.Run("8b-replayed-hello", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		ctx := ctxFor(t, 60*time.Second)
		// A client's earlier handshake from the same socket (a reconnect
		// within the cookie lifetime): an attacker who saw its hello with
		// the cookie replays it later, from that address.
		sock, err := hostile.Listen("127.0.0.33:0")
		if err != nil {
			t.Fatal(err)
		}
		first, _ := hostile.NewHandshake(false)
		if err := first.GetCookie(ctx, sock, srv.udp); err != nil {
			t.Fatal(err)
		}
		if _, _, err := first.Finish(ctx, sock, srv.udp); err != nil {
			t.Fatal(err)
		}
		c, err := hostile.DialOn(ctx, sock, srv.udp)
		if err != nil {
			sock.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.List(ctx); err != nil {
			t.Fatal(err)
		}
		other, err := hostile.Listen("127.0.0.34:0")
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		before := srv.metrics(t)
		underAttack(t, srv, expect{{"skein_handshake_failures_total", "skein_drops_total"}}, func(started func()) {
			started()
			for range 5 {
				c.SendRaw(first.Hello)                        // the old one, from its address
				c.SendRaw(c.HS.Hello)                         // the live link's own
				other.WriteToUDPAddrPort(c.HS.Hello, srv.udp) // from another address
				other.WriteToUDPAddrPort(first.Hello, srv.udp)
			}
			time.Sleep(300 * time.Millisecond)
		})
		after := srv.metrics(t)
		// The legitimate probes connected and left meanwhile: count the
		// links the replays could have made, not the probes'.
		if after["skein_clients"] > before["skein_clients"] {
			t.Errorf("replayed hellos made links: clients %v → %v", before["skein_clients"], after["skein_clients"])
		}
		if c.ServerClosed.Load() {
			t.Error("the replayed hello closed the live link")
		}
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := c.List(lctx); err != nil {
			t.Errorf("the live link no longer works after the replay: %v", err)
		}
	})
	t.Run("8c-garbage-flood", func(t *testing.T) {
		srv := startServer(t, serverOpts{})
		noise := make([]byte, 64<<10)
		rand.Read(noise)
		underAttack(t, srv, expect{{"skein_drops_total"}}, func(started func()) {
			started()
			whileHelloProbe(t, srv, func() {
				st, err := hostile.Flood{Target: srv.udp, Sources: hostile.SourcePorts("127.0.0.35", 64), Rate: 100_000,
					Count: size(100_000, 1_000_000), Duration: time.Duration(size(2, 12)) * time.Second,
					Make: func(i int, _ netip.AddrPort, b []byte) []byte {
						off := (i * 7919) % (len(noise) - 1300)
						g := noise[off : off+1+i%1200]
						b = append(b, g...)
						switch i % 4 {
						case 0:
							b[0] = hostile.KindData // a data header naming any HostID
						case 1:
							b[0] = hostile.KindHello // a short or garbled hello
						}
						return b
					}}.Run(context.Background())
				if err != nil {
					t.Error(err)
				}
				t.Logf("garbage flood: %d datagrams in %v (%.0f/s)", st.Datagrams, st.Elapsed.Round(time.Millisecond), st.Rate())
			})
		})
	})

	// 9. Connect tokens that must be refused, from many sources, against
	// a server run with -auth token (token_test.go).
	t.Run("9-token-flood", attackTokenFlood)
}

// badText says what is wrong with a name or line the server passed on:
// control or format characters, invalid UTF-8, or more than max runes.
func badText(s string, max int) string {
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("%d characters (at most %d)", n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Sprintf("control character %U", r)
		}
	}
	return ""
}

func printFigures() {
	if !*long {
		return
	}
	figMu.Lock()
	defer figMu.Unlock()
	fmt.Println("\n| attack | legit connects ok | connect median | connect max | reliable RTT median | server CPU (% of a core) | server peak RSS |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	for _, f := range figures {
		med, mx, rtt := "–", "–", "–"
		if f.attempts > f.failures {
			med, mx = f.connectMed.Round(10*time.Microsecond).String(), f.connectMax.Round(10*time.Microsecond).String()
		}
		if f.rttMed > 0 {
			rtt = f.rttMed.Round(10 * time.Microsecond).String()
		}
		fmt.Printf("| %s | %d/%d | %s | %s | %s | %.0f%% | %d MiB |\n", strings.TrimPrefix(f.name, "TestAttacks/"), f.attempts-f.failures, f.attempts,
			med, mx, rtt, f.cpu, f.peakRSS>>20)
	}
}
