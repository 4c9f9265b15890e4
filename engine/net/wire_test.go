package net

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/skein-dev/skein/engine/net/vnet"
)

func TestKCPFlushLinked(t *testing.T) {
	n := 0
	k := newKCP(func(b []byte, size int) { n++ })
	k.Update()
	k.Send([]byte("x"))
	kcpFlush(k, kcp.IKCP_FLUSH_FULL)
	if n != 1 {
		t.Fatalf("kcpFlush produced %d datagrams, want 1: the linkname to kcp-go's flush is broken", n)
	}
}

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	accept := func(pn uint64, want bool) {
		t.Helper()
		got := w.check(pn)
		if got != want {
			t.Fatalf("check(%d) = %v, want %v", pn, got, want)
		}
		if got {
			w.accept(pn)
		}
	}
	accept(1, true)
	accept(1, false)
	accept(3, true)
	accept(2, true)
	accept(2, false)
	accept(10000, true)
	accept(10000-replayWindowSize+1, true)
	accept(10000-replayWindowSize, false) // too old
	accept(9999, true)
	accept(50000, true)
	accept(9999, false)
	accept(49999, true)
	// Every number in a long shuffled run is accepted exactly once.
	var w2 replayWindow
	for base := uint64(10); base < 100000; base += 64 {
		for _, off := range []uint64{5, 1, 63, 0, 32, 7} {
			if !w2.check(base + off) {
				t.Fatalf("%d refused", base+off)
			}
			w2.accept(base + off)
			if w2.check(base + off) {
				t.Fatalf("%d accepted twice", base+off)
			}
		}
	}
}

func seedFrames() [][]byte {
	var seeds [][]byte
	seeds = append(seeds, appendFrame(nil, frameKCP, bytes.Repeat([]byte{1}, 30)))
	seeds = append(seeds, appendFrame(appendFrame(nil, framePing, make([]byte, 8)), framePong, make([]byte, 10)))
	seeds = append(seeds, appendFrame(nil, frameUnreliable, []byte{3, 1, 0, 0, 0, 'h', 'i'}))
	seeds = append(seeds, appendFrame(nil, frameClose, []byte{closeKicked, 'b', 'y', 'e'}))
	// Fan-out to every member of group 900, to members 1000 and 1001, and a
	// fanned copy from 1000.
	seeds = append(seeds, appendFrame(nil, frameFanout, []byte{0x84, 3, 0, 0, 0, 3, 1, 0, 0, 0, 'h', 'i'}))
	seeds = append(seeds, appendFrame(nil, frameFanout, []byte{0x84, 3, 0, 0, 2, 0xe8, 3, 0, 0, 0xe9, 3, 0, 0, 3, 1, 0, 0, 0, 'h', 'i'}))
	seeds = append(seeds, appendFrame(nil, frameFanned, []byte{0xe8, 3, 0, 0, 3, 1, 0, 0, 0, 'h', 'i'}))
	seeds = append(seeds, []byte{}, []byte{0xff, 0xff, 0xff})
	return seeds
}

// FuzzFrames checks that parseFrames never panics and that what it accepts
// re-encodes to the same bytes.
func FuzzFrames(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		frames, err := parseFrames(p, nil)
		if err != nil {
			return
		}
		var re []byte
		for _, fr := range frames {
			re = appendFrame(re, fr.Type, fr.Body)
		}
		if !bytes.Equal(re, p) {
			t.Fatalf("re-encoded %x, input %x", re, p)
		}
	})
}

// FuzzHandshakePackets checks the cleartext handshake decoders: no panic, and
// a round trip for what they accept.
func FuzzHandshakePackets(f *testing.F) {
	var pub [keySize]byte
	pub[0] = 9
	f.Add(appendHello(nil, hello{Version: ProtocolVersion, Pub: pub}))
	f.Add(appendHello(nil, hello{Version: ProtocolVersion, Pub: pub, Cookie: make([]byte, cookieSize)}))
	f.Add(appendCookie(nil, &pub, make([]byte, cookieSize)))
	var sk ServerKey
	sk[3] = 7
	f.Add(appendCookieKey(nil, &pub, make([]byte, cookieSize), &sk, nil))
	f.Add(appendCookieKey(nil, &pub, make([]byte, cookieSize), &sk, make([]byte, certSize)))
	f.Add(appendHello(nil, hello{Version: ProtocolVersion, Flags: helloAuth, Pub: pub}))
	f.Add(appendHello(nil, hello{Version: ProtocolVersion, Flags: helloAuth | helloResume, Pub: pub, Cookie: make([]byte, cookieSize), Ticket: [ticketSize]byte{1, 2}, Auth: make([]byte, 40)}))
	f.Add(appendHello(nil, hello{Version: ProtocolVersion, Flags: helloAuth | helloCert, Pub: pub, Cookie: make([]byte, cookieSize), Auth: make([]byte, maxAuthBlock)}))
	f.Add(appendReject(nil, rejectFull, &pub))
	f.Add(appendReject(nil, rejectUnauthorized, &pub))
	f.Add(appendVersionReject(nil))
	f.Add([]byte{kindReject, rejectVersion, 5, 0})
	f.Add([]byte{kindReject, rejectBusy, 5, 0})
	f.Add(appendWelcomeBody(nil, welcomeBody{ClientID: 1000, Ping: 1000, Timeout: 10000}))
	f.Add(appendDataHeader(make([]byte, 0, 64), dataHeader{From: 1000, PN: maxPN})[:11])
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := parseHello(b); err == nil {
			re := appendHello(nil, h)
			if h2, err := parseHello(re); err != nil || h2.Version != h.Version || h2.Pub != h.Pub || !bytes.Equal(h2.Cookie, h.Cookie) ||
				h2.Flags != h.Flags || h2.Ticket != h.Ticket || !bytes.Equal(h2.Auth, h.Auth) {
				t.Fatalf("hello round trip: %v", err)
			}
			if len(h.Auth) > maxAuthBlock || (len(h.Auth) > 0 && len(h.Cookie) == 0) {
				t.Fatalf("hello accepted with a %d-byte auth block, cookie %d", len(h.Auth), len(h.Cookie))
			}
		}
		if tag, c, k, cert, err := parseCookie(b); err == nil {
			var p [keySize]byte
			copy(p[:], tag)
			re := appendCookie(nil, &p, c)
			if k != nil {
				re = appendCookieKey(nil, &p, c, (*ServerKey)(k), cert)
			}
			if !bytes.Equal(re[3:], b[3:]) || len(tag) != dialTagSize || len(c) != cookieSize || (k != nil && len(k) != keySize) || (cert != nil && len(cert) != certSize) {
				t.Fatal("cookie round trip")
			}
		}
		if r, v, tag, err := parseReject(b); err == nil {
			var p [keySize]byte
			copy(p[:], tag)
			switch {
			case tag == nil && (r != rejectVersion || len(b) != versionRejectSize):
				t.Fatalf("an untagged reject taken: reason %d, version %d", r, v)
			case tag != nil && v == ProtocolVersion && !bytes.Equal(appendReject(nil, r, &p), b):
				t.Fatal("reject round trip")
			}
		}
		if w, err := parseWelcomeBody(b); err == nil && !bytes.Equal(appendWelcomeBody(nil, w), b) {
			t.Fatal("welcome round trip")
		}
		if len(b) >= dataHeaderSize+sealOverhead {
			if h, err := parseDataHeader(b); err == nil && !bytes.Equal(appendDataHeader(nil, h), b[:dataHeaderSize]) {
				t.Fatal("data header round trip")
			}
		}
	})
}

// fuzzPair is a server and a connected client on a real-time virtual network.
type fuzzPair struct {
	n        *vnet.Network
	srv, cli *Host
	srvAddr  netip.AddrPort
	cliAddr  netip.AddrPort
}

func newFuzzPair(tb testing.TB) *fuzzPair {
	tb.Helper()
	p := &fuzzPair{n: vnet.New(1), srvAddr: netip.MustParseAddrPort("10.0.0.1:1"), cliAddr: netip.MustParseAddrPort("10.0.0.2:1")}
	sc, _ := p.n.Listen(p.srvAddr)
	cc, _ := p.n.Listen(p.cliAddr)
	// Group 900 (for fan-out frames): the client, a client with no link,
	// and the server.
	members := func(g HostID, dst []HostID) ([]HostID, bool) {
		return append(dst, FirstClientID, FirstClientID+1, ServerID), g == 900
	}
	p.srv, _ = NewHost(sc, Config{Accept: true, GroupMembers: members})
	p.cli, _ = NewHost(cc, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.cli.Dial(ctx, p.srvAddr); err != nil {
		tb.Fatal(err)
	}
	return p
}

func (p *fuzzPair) close() {
	p.cli.Shutdown(context.Background())
	p.srv.Shutdown(context.Background())
	p.n.Close()
}

// FuzzDemux feeds arbitrary datagrams to both ends of a live link: nothing
// may panic, and every datagram is either processed or counted as dropped.
func FuzzDemux(f *testing.F) {
	p := newFuzzPair(f)
	defer p.close()
	var pub [keySize]byte
	f.Add(appendHello(nil, hello{Version: ProtocolVersion, Pub: pub}))
	f.Add(appendHello(nil, hello{Version: 7, Pub: pub, Cookie: make([]byte, cookieSize)}))
	f.Add(appendCookie(nil, &pub, make([]byte, cookieSize)))
	f.Add(appendReject(nil, rejectBadCookie, &pub))
	f.Add(appendVersionReject(nil))
	f.Add(append([]byte{kindWelcome}, make([]byte, welcomeHeader+welcomeBodySize+sealOverhead-1)...))
	f.Add(appendDataHeader(nil, dataHeader{From: p.cli.ID(), PN: 1 << 40}))
	f.Add(append(appendDataHeader(nil, dataHeader{From: ServerID, PN: 5}), make([]byte, 40)...))
	f.Add([]byte{})
	f.Add([]byte{0x77})
	f.Add(append([]byte{kindHairpin}, make([]byte, 16)...))
	f.Add([]byte{kindHairpin, 1})
	f.Add(append(appendDataHeader(nil, dataHeader{From: p.cli.ID(), PN: 9}), make([]byte, MaxDatagram)...)) // oversize
	f.Fuzz(func(t *testing.T, b []byte) {
		p.srv.demux(bytes.Clone(b), p.cliAddr, time.Now(), new(rxScratch), p.srv.conn)
		p.cli.demux(bytes.Clone(b), p.srvAddr, time.Now(), new(rxScratch), p.cli.conn)
	})
}

// FuzzSealedFrames seals arbitrary plaintext with a real link's keys, as a
// buggy (authenticated) peer would send it: the receiver must not panic and
// must keep serving the link or close it cleanly.
func FuzzSealedFrames(f *testing.F) {
	p := newFuzzPair(f)
	defer func() { p.close() }()
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Add(appendFrame(nil, frameKCP, make([]byte, kcp.IKCP_OVERHEAD)))
	f.Add(appendFrame(nil, frameKCP, kcpSegment(3, 0, []byte("gap"))))             // held out of order
	f.Add(appendFrame(nil, frameKCP, kcpSegment(kcpRecvWindow, 0, []byte("far")))) // past the window: shed
	f.Fuzz(func(t *testing.T, plain []byte) {
		l := p.cli.link(ServerID)
		if l == nil || p.srv.link(p.cli.ID()) == nil {
			// A close frame ended the link: start again.
			p.close()
			p = newFuzzPair(t)
			l = p.cli.link(ServerID)
		}
		if len(plain) > maxFramesPayload {
			plain = plain[:maxFramesPayload]
		}
		b, pn := l.startDatagram()
		b = l.sealDatagram(append(b, plain...), pn)
		p.srv.demux(b, p.cliAddr, time.Now(), new(rxScratch), p.srv.conn)
		// The same frames from the server (fanned frames go this way).
		if sl := p.srv.link(p.cli.ID()); sl != nil {
			b, pn := sl.startDatagram()
			b = sl.sealDatagram(append(b, plain...), pn)
			p.cli.demux(b, p.srvAddr, time.Now(), new(rxScratch), p.cli.conn)
		}
	})
}

func TestFanoutFrameLayout(t *testing.T) {
	body := []byte{0x84, 3, 0, 0, 2, 0xe8, 3, 0, 0, 0xe9, 3, 0, 0, 3, 1, 0, 0, 0, 'h', 'i'}
	frames, err := parseFrames(appendFrame(nil, frameFanout, body), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, list, unrel := splitFanout(frames[0].Body)
	if g != 900 || len(list) != 8 || list[0] != 0xe8 || !bytes.Equal(unrel, []byte{3, 1, 0, 0, 0, 'h', 'i'}) {
		t.Fatalf("split: group %v list %x unreliable %x", g, list, unrel)
	}
	// A list running into the payload, and an empty payload, are malformed.
	for _, bad := range [][]byte{{0x84, 3, 0, 0, 2, 0xe8, 3, 0, 0, 3, 1, 0, 0, 0, 'h'}, {0x84, 3, 0, 0, 0, 3, 1, 0, 0, 0}} {
		if _, err := parseFrames(appendFrame(nil, frameFanout, bad), nil); err == nil {
			t.Fatalf("%x accepted", bad)
		}
	}
	if _, err := parseFrames(appendFrame(nil, frameFanned, []byte{0xe8, 3, 0, 0, 3, 1, 0, 0, 0}), nil); err == nil {
		t.Fatal("empty fanned payload accepted")
	}
	// The largest unreliable message fits both frames.
	if !fanoutFits(0, MaxUnreliable) || !fanoutFits(7, MaxUnreliable) || fanoutFits(256, 1) {
		t.Fatal("fan-out budget")
	}
	if dataHeaderSize+frameHeader+fannedHeader+unrelHeader+MaxUnreliable+sealOverhead > MaxDatagram {
		t.Fatal("a fanned copy of the largest unreliable message does not fit")
	}
}

// TestParseHelloOtherVersion: a hello of another version is read for its
// version (and key) alone, whatever its layout, so that the server can
// answer it with the version reject the protocol promises; the layout
// checks of this version apply to this version's hellos only.
func TestParseHelloOtherVersion(t *testing.T) {
	b := make([]byte, helloSize)
	b[0] = kindHello
	binary.LittleEndian.PutUint16(b[1:3], ProtocolVersion+1)
	b[3] = helloAuth | helloResume
	b[helloCookieLen] = 5 // no cookie length of this version
	h, err := parseHello(b)
	if err != nil || h.Version != ProtocolVersion+1 {
		t.Fatalf("another version's hello: %+v, %v; want its version and no error", h, err)
	}
	binary.LittleEndian.PutUint16(b[1:3], ProtocolVersion)
	if _, err := parseHello(b); err == nil {
		t.Fatal("this version's hello with a 5-byte cookie was accepted")
	}
	if _, err := parseHello(b[:helloSize-1]); err == nil {
		t.Fatal("a short hello was accepted")
	}
}
