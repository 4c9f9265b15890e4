package attacktest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"
)

var (
	long = flag.Bool("attack.long", false, "run every attack at full size and print the figures table for BENCHMARKS.md")
	// extraArgs adapts the suite to server flags added later without a code
	// change, e.g. -attack.server-args "-max-unconfirmed 64".
	extraArgs = flag.String("attack.server-args", os.Getenv("SKEIN_ATTACK_SERVER_ARGS"), "extra flags for every server the suite starts ($SKEIN_ATTACK_SERVER_ARGS)")
)

// RSSBudget is the documented memory budget of the server under attack
// (issue 11: peak RSS with 300 clients pinning out-of-order data).
const RSSBudget = 150 << 20

// serverBin is the server binary, built once by TestMain; keyDir holds
// its key file (every server of the run shares one key).
var serverBin, keyDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(peerEnv) != "" {
		os.Exit(peerMain())
	}
	dir, err := os.MkdirTemp("", "attacktest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "server")
	keyDir = dir
	build := exec.Command("go", "build", "-o", serverBin, "github.com/skein-dev/skein/server")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the server:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serverOpts are what an attack changes in the server's command line.
type serverOpts struct {
	maxClients int // 0: the server's default
	args       []string
	// owner, if set, is the test whose end stops the server (a parent,
	// for a server that outlives the subtest that started it).
	owner *testing.T
}

// serverArgs is the one place that builds the server's command line.
// Flags for limits other branches add go here (or in -attack.server-args).
func serverArgs(o serverOpts) []string {
	a := []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-log-json", "-log-level", "info", "-shutdown-timeout", "2s",
		"-key-file", filepath.Join(keyDir, "server.key")}
	if o.maxClients > 0 {
		a = append(a, "-max-clients", strconv.Itoa(o.maxClients))
	}
	a = append(a, o.args...)
	return append(a, strings.Fields(*extraArgs)...)
}

// server is the server binary running in its own process.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	udp    netip.AddrPort
	admin  string
	exited chan struct{}
	mu     stdsync.Mutex
	tail   []string // the last lines of its stderr (a panic, if it died)
	// creds, if set, gives each legitimate connect its credentials (a
	// fresh connect token for a server run with -auth token).
	creds func() []byte
}

func startServer(t *testing.T, o serverOpts) *server {
	t.Helper()
	cmd := exec.Command(serverBin, serverArgs(o)...)
	cmd.Env = os.Environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, exited: make(chan struct{})}
	owner := t
	if o.owner != nil {
		owner = o.owner
	}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.tail = append(s.tail, line)
			if len(s.tail) > 60 {
				s.tail = s.tail[len(s.tail)-60:]
			}
			s.mu.Unlock()
			var l map[string]any
			if !once && json.Unmarshal([]byte(line), &l) == nil && l["@message"] == "listening" {
				s.udp = netip.MustParseAddrPort(l["udp"].(string))
				s.admin, _ = l["admin"].(string)
				once = true
				close(found)
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(s.exited)
	}()
	owner.Cleanup(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-s.exited
		}
	})
	select {
	case <-found:
	case <-s.exited:
		t.Fatalf("server exited at start:\n%s", s.stderrTail())
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return s
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stderrTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// checkRunning fails the test, with the server's last output, if its
// process exited.
func (s *server) checkRunning(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		t.Fatalf("the server died (%v); its last output:\n%s", s.cmd.ProcessState, s.stderrTail())
	default:
	}
}

// checkAlive fails the test if the process exited or /healthz is not ok.
func (s *server) checkAlive(t *testing.T) {
	t.Helper()
	s.checkRunning(t)
	c := http.Client{Timeout: 10 * time.Second}
	res, err := c.Get("http://" + s.admin + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("healthz: %s %s", res.Status, b)
	}
}

// metrics scrapes /metrics: every sample, keyed by name{labels}.
func (s *server) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	res, err := c.Get("http://" + s.admin + "/metrics")
	if err != nil {
		select {
		case <-s.exited:
			t.Fatalf("the server died; its last output:\n%s", s.stderrTail())
		default:
		}
		t.Fatalf("metrics: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return parseMetrics(b)
}

func parseMetrics(b []byte) map[string]float64 {
	m := map[string]float64{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		i := bytes.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(line[i+1:]), 64)
		if err != nil {
			continue
		}
		m[string(line[:i])] = v
	}
	return m
}

// delta is after - before for every skein_ sample that changed.
func delta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if strings.HasPrefix(k, "skein_") && !strings.HasPrefix(k, "skein_client_rtt") && v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

func formatDelta(d map[string]float64) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "\n  %s +%g", k, d[k])
	}
	return sb.String()
}

// procMem reads VmRSS and VmHWM (peak) of the server, in bytes.
func (s *server) procMem(t *testing.T) (rss, hwm uint64) {
	t.Helper()
	s.checkRunning(t)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		t.Fatalf("server status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// procCPU is the server's user+system CPU time so far.
func (s *server) procCPU(t *testing.T) time.Duration {
	t.Helper()
	s.checkRunning(t)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid()))
	if err != nil {
		t.Fatalf("server stat: %v", err)
	}
	// Fields after the command name (which is in parentheses).
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		t.Fatalf("server stat: %q", b)
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks
}

// expect says which refusal counters an attack must increase: at least
// one metric of each group (a group lists names the fixes may count under).
type expect [][]string

// refusals is every metric that counts refused input.
var refusals = []string{"skein_drops_total", "skein_login_refused_total", "skein_handshake_failures_total", "skein_lobby_bad_calls_total", "skein_lobby_chat_dropped_total", "skein_match_queue_full_total", "skein_slow_client_kicks_total", "skein_lobby_refused_total", "skein_lobby_rate_limited_total", "skein_tcp_refused_total", "skein_tcp_closed_total", "skein_admission_refused_total", "skein_busy_rejects_total", "skein_pending_expired_total"}

// checkCounters fails t unless each group in e saw an increase. A name
// without labels matches every label set of that metric but one:
// skein_drops_total{reason="unknown_peer"}, which the legitimate client's
// own goodbyes increase (the close frames it repeats after the server
// removed its link), so it counts only when named.
func checkCounters(t *testing.T, d map[string]float64, e expect) {
	t.Helper()
	for _, group := range e {
		ok := false
		for _, name := range group {
			for k, v := range d {
				if k == `skein_drops_total{reason="unknown_peer"}` && k != name {
					continue
				}
				if v > 0 && (k == name || strings.HasPrefix(k, name+"{")) {
					ok = true
				}
			}
		}
		if !ok {
			t.Errorf("none of %v increased: the refused input was not counted in /metrics", group)
		}
	}
}

// ctxFor is a context bounded by d and the test's deadline.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
