package net_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// TestHelperIdleServer is not a test: BenchmarkIdleLinks runs the test
// binary again with SKEIN_IDLE_SERVER=1 so that the server's CPU can be read
// from /proc apart from the clients'. It prints the server's address, then
// serves until its stdin closes.
func TestHelperIdleServer(t *testing.T) {
	if os.Getenv("SKEIN_IDLE_SERVER") != "1" {
		t.Skip("helper process for BenchmarkIdleLinks")
	}
	// Every client comes from 127.0.0.1: no per-source admission limits.
	srv, err := net.Listen("127.0.0.1:0", net.Config{Accept: true, MaxLinks: 5000,
		SourceHandshakeRate: -1, SourceLinks: -1, SourcePending: -1, MaxPending: -1})
	if err != nil {
		t.Fatal(err)
	}
	go func() { // drain events like a real server would
		for {
			if _, err := srv.Next(context.Background()); err != nil {
				return
			}
		}
	}()
	fmt.Println(srv.LocalAddr())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

// procCPU returns the user+system CPU time of process pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck, nil
}

// BenchmarkIdleLinks measures the CPU a server host spends on 1,000
// connected, idle clients (keepalives only). Each op is one second of
// measurement; run it with -benchtime 5x.
func BenchmarkIdleLinks(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("needs /proc")
	}
	const clients = 1000
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperIdleServer$")
	cmd.Env = append(os.Environ(), "SKEIN_IDLE_SERVER=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	addr, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		b.Fatal(err)
	}

	hosts := make([]*net.Host, clients)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed sync.Once
	for i := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			h, err := net.Listen("127.0.0.1:0", net.Config{})
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err = h.Dial(ctx, addr)
				cancel()
			}
			if err != nil {
				failed.Do(func() { b.Errorf("client %d: %v", i, err) })
			}
			hosts[i] = h
		}()
	}
	wg.Wait()
	defer func() {
		for _, h := range hosts {
			if h != nil {
				wg.Go(func() { h.Close() })
			}
		}
		wg.Wait()
	}()
	if b.Failed() {
		return
	}
	time.Sleep(2 * time.Second) // let the handshakes' work settle

	b.ResetTimer()
	c0, _ := procCPU(cmd.Process.Pid)
	t0 := time.Now()
	for range b.N {
		time.Sleep(time.Second)
	}
	c1, _ := procCPU(cmd.Process.Pid)
	wall := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(100*(c1-c0).Seconds()/wall.Seconds(), "server-cpu-%")
	b.ReportMetric(float64(clients), "links")
}
