package net

import (
	"net/netip"
	"testing"
	"time"
)

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
