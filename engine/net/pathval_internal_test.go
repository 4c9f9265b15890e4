package net

import (
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProtocolDocPathValidation holds what docs/PROTOCOL.md states about
// path validation and the probe space to the code.
func TestProtocolDocPathValidation(t *testing.T) {
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
		v, err := strconv.ParseInt(m[1], 0, 64)
		if err != nil {
			t.Fatalf("%q: %v", pattern, err)
		}
		return int(v)
	}
	check := func(what string, doc, code int) {
		t.Helper()
		if doc != code {
			t.Errorf("PROTOCOL.md: %s is %d, the code has %d", what, doc, code)
		}
	}
	check("probe space start", 1<<num(`probes from 2\^(\d+) \+ 1`), probePNBase)
	check("probe space start", 1<<num(`\*\*probe space\*\*, from 2\^(\d+) \+ 1`), probePNBase)
	check("probe replay window", num(`probe space, the highest and a bitmap of the (\d+) below it`), 63)
	check("challenge datagram", num(`8-byte token \((\d+) bytes in all\)`), pathDatagram)
	check("challenge token", num(`unpredictable (\d+)-byte token`), 8)
	check("retry floor (ms)", num(`twice the RTT \(at least (\d+) ms\)`), int(pathRetryMin/time.Millisecond))
	check("check timeout (s)", num(`until the answer comes or (\d+) s have passed`), int(pathCheckTimeout/time.Second))
	check("amplification limit", num(`is at most \*\*(\d+)x\*\*`), amplificationLimit)
	check("path challenge type", num("`(0x[0-9a-f]+)` \\| path challenge \\|"), int(framePathChallenge))
	check("path response type", num("`(0x[0-9a-f]+)` \\| path response \\|"), int(framePathResponse))
	check("punch token", num(`ack\) ‖ token \((\d+)\)`), 8)
}

func TestProbeWindow(t *testing.T) {
	var w probeWindow
	accept := func(pn uint64, want bool) {
		t.Helper()
		if got := w.accept(probePNBase + pn); got != want {
			t.Fatalf("accept(base+%d) = %v, want %v", pn, got, want)
		}
	}
	accept(1, true)
	accept(1, false)
	accept(3, true)
	accept(2, true)
	accept(2, false)
	accept(66, true)
	accept(4, true)  // 62 below the highest: in the window
	accept(3, false) // 63 below: in the window, seen
	accept(2, false) // 64 below: too old
	accept(1000, true)
	accept(66, false)
	accept(999, true)
	if isProbePN(probePNBase) || !isProbePN(probePNBase+1) || isProbePN(maxPN>>1) {
		t.Fatal("probe space bounds")
	}
}

// seedPathFrames are plaintexts that belong in the probe space.
func seedPathFrames() [][]byte {
	tok := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	return [][]byte{
		appendFrame(nil, framePathChallenge, tok),
		appendFrame(nil, framePathResponse, tok),
		appendFrame(appendFrame(nil, framePathChallenge, tok), framePathChallenge, tok),
		appendFrame(nil, framePunch, append([]byte{punchProbe}, tok...)),
		appendFrame(appendFrame(nil, framePathResponse, tok), framePing, make([]byte, 8)),
	}
}

// FuzzPathFrames seals arbitrary frames with a live link's keys, in either
// packet-number space, from the peer's address or another one (a peer
// forging its source): nothing panics, no forged datagram moves the path,
// and what went to an address being checked stays within 3x what came
// from it.
func FuzzPathFrames(f *testing.F) {
	p := newFuzzPair(f)
	defer func() { p.close() }()
	for _, s := range seedPathFrames() {
		f.Add(s, true, false)
		f.Add(s, true, true)
	}
	for _, s := range seedFrames() {
		f.Add(s, false, true)
	}
	other := netip.MustParseAddrPort("10.0.0.9:9")
	check := func(t *testing.T, l *link, home netip.AddrPort) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if a, ok := directAddr(l.path); !ok || a != home {
			t.Fatalf("path moved to %v", pathString(l.path))
		}
		if pc := l.pathCheck; pc != nil && pc.tx > amplificationLimit*pc.rx {
			t.Fatalf("sent %d bytes to %v for %d received", pc.tx, pc.addr, pc.rx)
		}
	}
	f.Fuzz(func(t *testing.T, plain []byte, probe, spoofed bool) {
		cl, sl := p.cli.link(ServerID), p.srv.link(p.cli.ID())
		if cl == nil || sl == nil {
			// A close frame ended the link: start again.
			p.close()
			p = newFuzzPair(t)
			cl, sl = p.cli.link(ServerID), p.srv.link(p.cli.ID())
		}
		if len(plain) > maxFramesPayload {
			plain = plain[:maxFramesPayload]
		}
		seal := func(l *link) []byte {
			b, pn := l.startDatagram()
			if probe {
				b, pn = l.startProbeDatagram()
			}
			return l.sealDatagram(append(b, plain...), pn)
		}
		from, to := p.cliAddr, p.srvAddr
		if spoofed {
			from, to = other, other
		}
		p.srv.demux(seal(cl), from, time.Now(), new(rxScratch), p.srv.conn)
		check(t, sl, p.cliAddr)
		p.cli.demux(seal(sl), to, time.Now(), new(rxScratch), p.cli.conn)
		check(t, cl, p.srvAddr)
	})
}
