package net

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// TestPinnedRSS measures the peak memory of a server whose clients pin
// out-of-order reliable data: a figure for BENCHMARKS.md, not an
// assertion on memory. It runs only when SKEIN_RSS is set to the number of
// attacking clients:
//
//	SKEIN_RSS=300 go test -count=1 -run TestPinnedRSS -v ./engine/net/
//
// SKEIN_RSS_PIN is how many segments each client sends past the gap it
// leaves (default 255: the most the receive window takes), SKEIN_RSS_BUDGET
// the server's LinkReceiveBudget (default: the default). The server runs
// in a child process (this test binary again), so VmHWM, its peak resident
// set, is the server's alone. Every client dials over loopback, then sends
// its segments twice (loopback drops a few under such a burst) through its
// link's seal; a legitimate client then needs its reliable round trip.
func TestPinnedRSS(t *testing.T) {
	if os.Getenv("SKEIN_RSS_CHILD") != "" {
		rssChild()
		return
	}
	clients, _ := strconv.Atoi(os.Getenv("SKEIN_RSS"))
	if clients <= 0 {
		t.Skip("a measurement: set SKEIN_RSS to the number of clients (e.g. 300)")
	}
	pin := 255
	if v, err := strconv.Atoi(os.Getenv("SKEIN_RSS_PIN")); err == nil && v > 0 {
		pin = v
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPinnedRSS$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SKEIN_RSS_CHILD=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	out := bufio.NewScanner(outPipe)
	line := func(prefix string) string {
		t.Helper()
		for out.Scan() {
			if s, ok := strings.CutPrefix(out.Text(), prefix); ok {
				return s
			}
		}
		t.Fatalf("server child: no %q line (%v)", prefix, out.Err())
		return ""
	}
	srvAddr := netip.MustParseAddrPort(line("addr "))
	stats := func(what string) string {
		t.Helper()
		fmt.Fprintln(in, "stats")
		s := line("stats ")
		t.Logf("%-28s %s", what+":", s)
		return s
	}

	dial := func() *Host {
		h, err := Listen("127.0.0.1:0", Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Dial(ctx, srvAddr); err != nil {
			t.Fatal(err)
		}
		return h
	}
	legit := dial()
	defer legit.Close()
	hosts := make([]*Host, clients)
	for i := range hosts {
		hosts[i] = dial()
		defer hosts[i].Close()
	}
	time.Sleep(500 * time.Millisecond)
	stats(fmt.Sprintf("%d clients connected", clients))
	pings := func(what string) {
		t.Helper()
		var rtts []time.Duration
		for range 5 {
			start := time.Now()
			if err := legit.Send(ServerID, Reliable, []byte("ping")); err != nil {
				t.Fatal(err)
			}
			for {
				e, err := legit.Next(ctx)
				if err != nil {
					t.Fatalf("legitimate client: %v", err)
				}
				if e.Kind == EventDisconnected {
					t.Fatalf("legitimate client disconnected: %v", e.Err)
				}
				if e.Kind == EventMessage && string(e.Data) == "ping" {
					break
				}
			}
			rtts = append(rtts, time.Since(start).Round(10*time.Microsecond))
		}
		t.Logf("%-28s %v", what+":", rtts)
	}
	pings("legitimate round trips")

	payload := bytes.Repeat([]byte{0xa5}, 1000)
	seg := make([]byte, kcp.IKCP_OVERHEAD+len(payload))
	for round := range 2 {
		for _, h := range hosts {
			l := h.link(ServerID)
			if l == nil {
				continue // shed
			}
			for sn := uint32(1); sn <= uint32(pin); sn++ { // sn 0 never comes
				binary.LittleEndian.PutUint32(seg, kcpConv)
				seg[4] = kcp.IKCP_CMD_PUSH
				binary.LittleEndian.PutUint16(seg[6:], 32)
				binary.LittleEndian.PutUint32(seg[12:], sn)
				binary.LittleEndian.PutUint32(seg[20:], uint32(len(payload)))
				copy(seg[kcp.IKCP_OVERHEAD:], payload)
				l.mu.Lock()
				b, pn := l.startDatagram()
				b = appendFrame(b, frameKCP, seg)
				l.queueLocked(l.sealDatagram(b, pn))
				o, p := l.takeLocked()
				l.mu.Unlock()
				l.writeOut(o, p)
				if sn%64 == 0 {
					time.Sleep(200 * time.Microsecond) // let the server read
				}
			}
		}
		time.Sleep(time.Second)
		stats(fmt.Sprintf("pinned, round %d", round+1))
	}

	// The legitimate client's round trips.
	pings("legitimate round trips after")
	stats("end")
}

// rssChild is the server of TestPinnedRSS: it echoes reliable messages,
// drains its events every 10 ms as a game server would, and answers
// "stats" on stdin with its memory and counters.
func rssChild() {
	budget, _ := strconv.Atoi(os.Getenv("SKEIN_RSS_BUDGET"))
	srv, err := Listen("127.0.0.1:0", Config{Accept: true, LinkReceiveBudget: budget})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("addr", srv.LocalAddr())
	go func() {
		for {
			time.Sleep(10 * time.Millisecond)
			srv.FrameMove(func(e Event) {
				if e.Kind == EventMessage && e.Delivery.Reliable {
					srv.Send(e.Peer, Reliable, e.Data)
				}
			})
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		st := srv.Stats()
		fmt.Printf("stats VmHWM=%s VmRSS=%s held=%.1fMB links=%d over_budget=%d\n",
			procStatus("VmHWM"), procStatus("VmRSS"), float64(srv.HeldBytes())/1e6, st.Links, st.Drops[DropOverBudget])
	}
	srv.Close()
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// procStatus returns a field of /proc/self/status, in MB.
func procStatus(field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return fmt.Sprintf("%.1fMB", float64(kb)/1024)
		}
	}
	return "?"
}
