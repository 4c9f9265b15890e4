package net

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// kcpGoVersion is the kcp-go release whose private parts Skein reaches
// (kcpcore.go: flush through go:linkname; budget.go: the receive state by
// reflection offsets). Changing it in go.mod fails TestKCPGoPinned until
// someone has read the new release's kcp.go and updated this constant.
const kcpGoVersion = "v5.6.72"

// TestKCPGoPinned fails when go.mod moves kcp-go off the release
// kcpcore.go was checked against: the linked flush and the reflected
// receive layout are private API, and only the guards named at the top of
// kcpcore.go (TestKCPFlushLinked, TestKCPRecvLayout) tell whether they
// still hold. Read the new release's (*KCP).flush and the KCP struct's
// receive fields, run those tests, then update kcpGoVersion.
func TestKCPGoPinned(t *testing.T) {
	// A test binary's build info lists no dependencies: read go.mod.
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatalf("reading go.mod: %v", err)
	}
	if err := checkKCPGoPin(string(mod)); err != nil {
		t.Fatalf("%v: see the top of kcpcore.go", err)
	}
	// The check itself: each of these go.mod files must fail it.
	for _, bad := range []string{
		"module m\n\nrequire github.com/xtaci/kcp-go/v5 v5.6.73\n",
		"module m\n\nrequire (\n\tgithub.com/xtaci/kcp-go/v5 v5.6.72\n)\n\nreplace github.com/xtaci/kcp-go/v5 => ../kcp-go\n",
		"module m\n",
	} {
		if checkKCPGoPin(bad) == nil {
			t.Errorf("checkKCPGoPin accepted %q", bad)
		}
	}
}

// checkKCPGoPin checks that go.mod text requires kcp-go at kcpGoVersion
// and does not replace it.
func checkKCPGoPin(mod string) error {
	const path = "github.com/xtaci/kcp-go/v5"
	var required []string
	for line := range strings.Lines(mod) {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == path {
			required = append(required, f[1])
		}
		if slices.Contains(f, "=>") && slices.Contains(f, path) {
			return fmt.Errorf("go.mod replaces kcp-go (%s); kcpcore.go and budget.go were checked against %s %s only", strings.TrimSpace(line), path, kcpGoVersion)
		}
	}
	if len(required) != 1 || required[0] != kcpGoVersion {
		return fmt.Errorf("go.mod requires kcp-go %v; kcpcore.go and budget.go were checked against %s", required, kcpGoVersion)
	}
	return nil
}

// kcpMemPair is two KCP cores wired back to back in memory: what one
// outputs, the other inputs.
type kcpMemPair struct {
	a, b     *kcp.KCP
	toA, toB [][]byte
	recv     []byte
}

func newKCPMemPair() *kcpMemPair {
	p := &kcpMemPair{recv: make([]byte, 2048)}
	p.a = newKCP(func(b []byte, n int) { p.toB = append(p.toB, append([]byte(nil), b[:n]...)) })
	p.b = newKCP(func(b []byte, n int) { p.toA = append(p.toA, append([]byte(nil), b[:n]...)) })
	return p
}

// roundTrip sends msg from a to b, b echoes it, and a receives the echo.
// flush makes a core put what it has on the wire, past the n datagrams
// already in out (an ACK the core sent while it took the last input); it
// reports false when it gave up.
func (p *kcpMemPair) roundTrip(b *testing.B, msg []byte, flush func(k *kcp.KCP, out *[][]byte, n int) bool) {
	if p.a.Send(msg) < 0 || !flush(p.a, &p.toB, len(p.toB)) {
		b.Fatal("a: message not sent")
	}
	for _, d := range p.toB {
		p.b.Input(d, kcp.IKCP_PACKET_REGULAR, false)
	}
	p.toB = p.toB[:0]
	n := p.b.Recv(p.recv)
	if n != len(msg) {
		b.Fatalf("b received %d bytes, want %d", n, len(msg))
	}
	if p.b.Send(p.recv[:n]) < 0 || !flush(p.b, &p.toA, len(p.toA)) {
		b.Fatal("b: echo not sent")
	}
	for _, d := range p.toA {
		p.a.Input(d, kcp.IKCP_PACKET_REGULAR, false)
	}
	p.toA = p.toA[:0]
	if n := p.a.Recv(p.recv); n != len(msg) {
		b.Fatalf("a received %d bytes, want %d", n, len(msg))
	}
}

// BenchmarkKCPFlush is why kcpcore.go links kcp-go's private flush: one
// reliable 64-byte round trip between two KCP cores in memory, where each
// side puts its message on the wire as soon as it is written.
//
//   - linkname: kcpFlush (what Skein does).
//   - public-Update: kcp-go's public API, Update, called until the message
//     leaves. Update flushes only when the core's interval (10 ms at the
//     fastest NoDelay allows) has run since its last flush, so a message
//     written just after a flush (a reply, or the next message of a
//     stream) waits for it. Each op gives up after a second.
//
// kcp-go's other public way, its UDPSession, owns the socket, the
// goroutines and the framing; BenchmarkSkein and BenchmarkBaseline compare
// Skein with it over loopback (BENCHMARKS.md).
func BenchmarkKCPFlush(b *testing.B) {
	msg := make([]byte, 64)
	b.Run("linkname", func(b *testing.B) {
		p := newKCPMemPair()
		flush := func(k *kcp.KCP, out *[][]byte, n int) bool {
			kcpFlush(k, kcp.IKCP_FLUSH_FULL)
			return len(*out) > n
		}
		for b.Loop() {
			p.roundTrip(b, msg, flush)
		}
	})
	b.Run("public-Update", func(b *testing.B) {
		p := newKCPMemPair()
		flush := func(k *kcp.KCP, out *[][]byte, n int) bool {
			deadline := time.Now().Add(time.Second)
			for {
				k.Update()
				if len(*out) > n {
					return true
				}
				if time.Now().After(deadline) {
					return false
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
		for b.Loop() {
			p.roundTrip(b, msg, flush)
		}
	})
}
