// Package loadtest drives the real match server binary with many clients on
// loopback. The defaults are small enough for CI; BENCHMARKS.md's figures
// come from
//
//	go test -run TestLoad -v ./server/internal/loadtest -load.clients 200 -load.duration 30s
package loadtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/internal/lobbytest"
	"github.com/skein-dev/skein/server/lobby"
)

var (
	clients      = flag.Int("load.clients", 40, "clients")
	groupSize    = flag.Int("load.group", 8, "players per match")
	duration     = flag.Duration("load.duration", 5*time.Second, "how long every client sends")
	unreliableHz = flag.Int("load.unreliable-hz", 20, "unreliable group messages per second per client")
	reliableHz   = flag.Int("load.reliable-hz", 2, "reliable group messages per second per client")
	p2p          = flag.Bool("load.p2p", false, "let peers punch direct paths (by default every peer is relayed, so the server carries all traffic)")
)

// serverProc is the server binary running in its own process.
type serverProc struct {
	cmd   *exec.Cmd
	udp   netip.AddrPort
	admin string
}

func startServer(t *testing.T) *serverProc {
	bin := filepath.Join(t.TempDir(), "server")
	build := exec.Command("go", "build", "-o", bin, "github.com/skein-dev/skein/server")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building the server: %v", err)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-log-json", "-log-level", "info", "-max-clients", "10000",
		"-key-file", filepath.Join(t.TempDir(), "server.key"),
		// Every client comes from 127.0.0.1: no per-source admission limits.
		"-source-handshake-rate", "-1", "-source-links", "-1", "-source-pending", "-1")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
	})
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["@message"] == "listening" {
				p.udp = netip.MustParseAddrPort(l["udp"].(string))
				p.admin = l["admin"].(string)
				close(found)
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not say where it listens")
	}
	return p
}

// usage reads the process's CPU time and resident memory from /proc.
func (p *serverProc) usage() (cpu time.Duration, rss int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err == nil {
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		cpu = time.Duration(u+s) * 10 * time.Millisecond
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
				rss = kb << 10
			}
		}
	}
	return cpu, rss
}

// metric reads one sample from /metrics.
func (p *serverProc) metric(name string) float64 {
	res, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

// player is one load client and what it saw.
type player struct {
	c            *lobbytest.Client
	match        net.HostID
	sentReliable atomic.Uint32
	gotReliable  map[net.HostID]uint32 // next expected sequence per sender
	errors       atomic.Int64
	unreliable   atomic.Int64
	mu           stdsync.Mutex
}

func TestLoad(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), *duration+5*time.Minute)
	defer cancel()
	time.Sleep(500 * time.Millisecond)
	_, rss0 := srv.usage()

	// Connect everyone, then form matches through the lobby.
	players := make([]*player, *clients)
	var wg stdsync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range players {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := lobbytest.Dial(ctx, srv.udp, sync.ClientConfig{Net: net.Config{DisableP2P: !*p2p}})
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			players[i] = &player{c: c, gotReliable: map[net.HostID]uint32{}}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	defer func() {
		for _, p := range players {
			wg.Go(func() { p.c.Close() })
		}
		wg.Wait()
	}()
	// Memory per idle connected client, before any match exists.
	time.Sleep(3 * time.Second)
	cpuIdle0, _ := srv.usage()
	time.Sleep(2 * time.Second)
	cpuIdle1, rssIdle := srv.usage()
	t.Logf("idle: %d clients cost the server %.1f KiB each (RSS %.1f → %.1f MiB), CPU %.1f%% of one core",
		len(players), float64(rssIdle-rss0)/1024/float64(len(players)), float64(rss0)/(1<<20), float64(rssIdle)/(1<<20),
		100*(cpuIdle1-cpuIdle0).Seconds()/2)
	// Each lobby call gets its own deadline: the synchronous client
	// never times a request out by itself (no rmi Tick), so a lost answer
	// would otherwise wait for the whole test's context.
	call := func() context.Context {
		c, cancel := context.WithTimeout(ctx, lobbyCallTimeout)
		t.Cleanup(cancel)
		return c
	}
	matchSize := map[net.HostID]int{} // match → its players
	for i := 0; i < len(players); i += *groupSize {
		r, m, err := players[i].c.Create(call(), fmt.Sprintf("load %d", i / *groupSize), min(*groupSize, lobbyMax), nil)
		if err != nil || r != lobby.ResultOK {
			t.Fatalf("create: %v %v", r, err)
		}
		players[i].match = m
		matchSize[m]++
		for _, p := range players[i+1 : min(i+*groupSize, len(players))] {
			if r, _, err := p.c.Join(call(), m); err != nil || r != lobby.ResultOK {
				t.Fatalf("join: %v %v", r, err)
			}
			p.match = m
			matchSize[m]++
		}
	}
	// Every player knows its whole match (its players and the server)
	// before sending. The last match has fewer players when the clients
	// do not divide into matches of -load.group: waiting for a full match
	// there waited for ever.
	knowBy := time.Now().Add(lobbyCallTimeout)
	for _, p := range players {
		for len(p.c.Members(p.match)) < matchSize[p.match]+1 {
			if time.Now().After(knowBy) {
				t.Fatalf("client %v knows %d members of match %v, want %d", p.c.ID(), len(p.c.Members(p.match)), p.match, matchSize[p.match]+1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Receivers check the reliable stream from every sender.
	for _, p := range players {
		wg.Go(func() {
			for e := range p.c.Events {
				if e.Kind != sync.EventMessage || e.Group != p.match || len(e.Data) < 9 {
					continue
				}
				if e.Data[0] == 'u' {
					p.unreliable.Add(1)
					continue
				}
				from := net.HostID(binary.LittleEndian.Uint32(e.Data[1:]))
				seq := binary.LittleEndian.Uint32(e.Data[5:])
				p.mu.Lock()
				if from != e.Peer || seq != p.gotReliable[from] {
					p.errors.Add(1)
				}
				p.gotReliable[from] = seq + 1
				p.mu.Unlock()
			}
		})
	}

	cpu0, _ := srv.usage()
	relayed0 := srv.metric("skein_relayed_datagrams_total")
	fanned0 := srv.metric("skein_fanout_messages_total")
	start := time.Now()
	sendCtx, stopSending := context.WithTimeout(ctx, *duration)
	var senders stdsync.WaitGroup
	var sendErrors atomic.Int64
	for i, p := range players {
		senders.Go(func() {
			period := time.Second / time.Duration(*unreliableHz)
			time.Sleep(period * time.Duration(i) / time.Duration(len(players))) // spread the ticks
			tk := time.NewTicker(period)
			defer tk.Stop()
			every := *unreliableHz / max(*reliableHz, 1)
			msg := make([]byte, 32)
			binary.LittleEndian.PutUint32(msg[1:], uint32(p.c.ID()))
			for n := 0; ; n++ {
				select {
				case <-sendCtx.Done():
					return
				case <-tk.C:
				}
				msg[0] = 'u'
				if p.c.Send(p.match, net.Unreliable, msg) != nil {
					sendErrors.Add(1)
				}
				if n%every == 0 {
					msg[0] = 'r'
					binary.LittleEndian.PutUint32(msg[5:], p.sentReliable.Load())
					if err := p.c.Send(p.match, net.Reliable, msg[:9]); err != nil {
						sendErrors.Add(1)
					} else {
						p.sentReliable.Add(1)
					}
				}
			}
		})
	}
	senders.Wait()
	elapsed := time.Since(start)
	cpu1, rss := srv.usage()
	relayed1 := srv.metric("skein_relayed_datagrams_total")
	fanned1 := srv.metric("skein_fanout_messages_total")
	stopSending()

	// Let the reliable streams drain, then check them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		missing := 0
		for _, p := range players {
			p.mu.Lock()
			for _, q := range players {
				if q != p && q.match == p.match && p.gotReliable[q.c.ID()] != q.sentReliable.Load() {
					missing++
				}
			}
			p.mu.Unlock()
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sender→receiver reliable streams incomplete after 10 s", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var reliable, unrel, errs int64
	for _, p := range players {
		errs += p.errors.Load()
		unrel += p.unreliable.Load()
		reliable += int64(p.sentReliable.Load())
	}
	if errs != 0 {
		t.Fatalf("%d reliable messages lost, duplicated or out of order", errs)
	}
	if sendErrors.Load() != 0 {
		t.Errorf("%d sends failed", sendErrors.Load())
	}
	var copies int64 // the copies of one unreliable message from every player
	for _, p := range players {
		copies += int64(matchSize[p.match] - 1)
	}
	expectUnrel := copies * int64(*unreliableHz) * int64(elapsed/time.Second)
	cpuPct := 100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	t.Logf("%d clients in matches of %d, %v: %d reliable group messages sent, all delivered in order to every member",
		len(players), *groupSize, elapsed.Round(time.Millisecond), reliable)
	t.Logf("unreliable copies received %d (about %d expected at full rate, %.1f%%)", unrel, expectUnrel, 100*float64(unrel)/float64(max(expectUnrel, 1)))
	t.Logf("server: CPU %.1f%% of one core, RSS %.1f MiB, relayed %.0f datagrams/s (of them fanned-out copies of %.0f group messages/s)",
		cpuPct, float64(rss)/(1<<20), (relayed1-relayed0)/elapsed.Seconds(), (fanned1-fanned0)/elapsed.Seconds())
}

const lobbyMax = 16

// lobbyCallTimeout bounds each lobby call, and the wait for every player
// to know its match: a minute, far beyond what a loaded machine running
// the clients under the race detector takes (a few seconds).
const lobbyCallTimeout = time.Minute
