package net

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// countingConn counts the bytes written to each address.
type countingConn struct {
	PacketConn
	mu  sync.Mutex
	out map[netip.AddrPort]int
}

func (c *countingConn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	c.mu.Lock()
	c.out[to] += len(b)
	c.mu.Unlock()
	return c.PacketConn.WriteTo(b, to)
}

func (c *countingConn) sent(to netip.AddrPort) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out[to]
}

// natFuzzPair is a client linked to a server that has one alternate
// NAT-probe endpoint; the server's writes are counted.
type natFuzzPair struct {
	n         *vnet.Network
	srv, cli  *Host
	main, alt *countingConn
}

func newNATFuzzPair(tb testing.TB) *natFuzzPair {
	tb.Helper()
	p := &natFuzzPair{n: vnet.New(3)}
	sc, _ := p.n.Listen(netip.MustParseAddrPort("10.0.0.1:1"))
	ac, _ := p.n.Listen(netip.MustParseAddrPort("10.0.0.1:2"))
	cc, _ := p.n.Listen(netip.MustParseAddrPort("10.0.0.2:1"))
	p.main = &countingConn{PacketConn: sc, out: map[netip.AddrPort]int{}}
	p.alt = &countingConn{PacketConn: ac, out: map[netip.AddrPort]int{}}
	p.srv, _ = NewHost(p.main, Config{Accept: true})
	if err := p.srv.AddProbeConn(p.alt); err != nil {
		tb.Fatal(err)
	}
	p.cli, _ = NewHost(cc, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.cli.Dial(ctx, sc.LocalAddr()); err != nil {
		tb.Fatal(err)
	}
	return p
}

func (p *natFuzzPair) close() {
	p.cli.Shutdown(context.Background())
	p.srv.Shutdown(context.Background())
	p.n.Close()
}

func seedNATFrames() [][]byte {
	var body [natBodySize]byte
	req := appendNATBody(nil, natMsg{kind: natRequest, token: 7})
	change := appendNATBody(nil, natMsg{kind: natRequest, token: 8, flags: natChangePort})
	reply := appendNATBody(nil, natMsg{kind: natReply, token: 7, mapped: netip.MustParseAddrPort("1.2.3.4:5")})
	bad := appendNATBody(nil, natMsg{kind: natRequest})
	bad[natEndpointsOff] = 9
	return [][]byte{
		appendFrame(nil, frameNAT, req),
		appendFrame(nil, frameNAT, change),
		appendFrame(nil, frameNAT, appendNATBody(nil, natMsg{kind: natRequest, flags: natChangeAddr | natChangePort})),
		appendFrame(nil, frameNAT, reply),
		appendFrame(nil, frameNAT, bad),
		appendFrame(nil, frameNAT, body[:10]),
		appendFrame(appendFrame(nil, frameNAT, req), frameNAT, req),
		appendFrame(appendFrame(nil, frameNAT, req), framePunch, append([]byte{punchProbe}, make([]byte, 8)...)),
	}
}

// FuzzNATFrames seals arbitrary frames with a client's keys in the probe
// space and feeds them to the server, at its main endpoint or its
// alternate one, from the client's address or another one (a client
// forging its source): nothing panics, and the server never sends an
// address that is not the client's more bytes than came from it (NAT
// replies are no larger than their requests, one per request). Bodies
// that decode re-encode to the same fields.
func FuzzNATFrames(f *testing.F) {
	p := newNATFuzzPair(f)
	defer func() { p.close() }()
	for _, s := range seedNATFrames() {
		f.Add(s, false, false)
		f.Add(s, true, true)
	}
	other := netip.MustParseAddrPort("10.0.0.9:9")
	received := 0
	f.Fuzz(func(t *testing.T, plain []byte, alt, spoofed bool) {
		cl := p.cli.link(ServerID)
		if cl == nil || p.srv.link(p.cli.ID()) == nil {
			p.close()
			p = newNATFuzzPair(t)
			cl, received = p.cli.link(ServerID), 0
		}
		if len(plain) > maxFramesPayload {
			plain = plain[:maxFramesPayload]
		}
		if f, _, err := nextFrame(plain); err == nil && f.Type == frameNAT && checkNATBody(f.Body) == nil {
			m := parseNATBody(f.Body)
			if n := parseNATBody(appendNATBody(nil, m)); n.kind != m.kind || n.token != m.token || n.flags != m.flags || n.mapped != m.mapped || len(n.endpoints) != len(m.endpoints) {
				t.Fatalf("%+v re-encoded as %+v", m, n)
			}
		}
		b, pn := cl.startProbeDatagram()
		b = cl.sealDatagram(append(b, plain...), pn)
		from := p.cli.LocalAddr()
		if spoofed {
			from = other
			received += len(b)
		}
		conn := PacketConn(p.main)
		if alt {
			conn = p.alt
		}
		p.srv.demux(b, from, time.Now(), new(rxScratch), conn)
		if sent := p.main.sent(other) + p.alt.sent(other); sent > received {
			t.Fatalf("the server sent %d bytes to a forged source that sent %d", sent, received)
		}
	})
}

// The server answers a client's NAT probes within natProbeRate; the rest
// are dropped and counted.
func TestNATProbeRateLimit(t *testing.T) {
	p := newNATFuzzPair(t)
	defer p.close()
	cl := p.cli.link(ServerID)
	req := appendFrame(nil, frameNAT, appendNATBody(nil, natMsg{kind: natRequest, token: 1}))
	from := netip.MustParseAddrPort("10.0.0.9:9")
	for range 3 * natProbeRate {
		b, pn := cl.startProbeDatagram()
		p.srv.demux(cl.sealDatagram(append(b, req...), pn), from, time.Now(), new(rxScratch), p.main)
	}
	per := dataHeaderSize + frameHeader + natBodySize + sealOverhead
	if got := p.main.sent(from); got > (natProbeRate+1)*per || got < natProbeRate*per {
		t.Fatalf("answered %d bytes, want about %d replies of %d", got, natProbeRate, per)
	}
	if d := p.srv.Stats().Drops[DropRateLimited]; d < natProbeRate {
		t.Fatalf("rate-limited drops %d, want at least %d", d, natProbeRate)
	}
}
