package net

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	stdnet "net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Attacks on admission (docs/PROTOCOL.md, "Admission"), on loopback. In
// each, the attacker sends from 127.0.0.1 and a legitimate client from
// 127.0.0.9 (another source) must still connect and get a reliable round
// trip.

func admitServer(t *testing.T, cfg Config) *Host {
	t.Helper()
	cfg.Accept = true
	srv, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// nextEvent waits for the next event of h that match accepts, skipping
// others (the attacker's links come and go meanwhile).
func nextEvent(t *testing.T, h *Host, what string, match func(Event) bool) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		e, err := h.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(e) {
			return e
		}
	}
}

// legitRoundTrip connects a client from local (a loopback address other
// than the attacker's) over conn (nil: UDP) and checks a reliable round
// trip with the server.
func legitRoundTrip(t *testing.T, srv *Host, conn PacketConn) *Host {
	t.Helper()
	if conn == nil {
		c, err := ListenUDP("127.0.0.9:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	}
	cli, err := NewHost(conn, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatalf("legitimate client: %v", err)
	}
	roundTrip(t, srv, cli)
	return cli
}

// roundTrip sends a reliable message each way between a server and one of
// its connected clients.
func roundTrip(t *testing.T, srv, cli *Host) {
	t.Helper()
	id := cli.ID()
	msg := []byte("ping " + id.String())
	if err := cli.Send(ServerID, Reliable, msg); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, srv, "the client's message", func(e Event) bool {
		return e.Kind == EventMessage && e.Peer == id && bytes.Equal(e.Data, msg)
	})
	if err := srv.Send(id, Reliable, []byte("pong")); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, cli, "the server's answer", func(e Event) bool {
		return e.Kind == EventMessage && e.Peer == ServerID && string(e.Data) == "pong"
	})
}

// rawPeer is an attacker's UDP socket speaking the handshake by hand.
type rawPeer struct {
	c   *stdnet.UDPConn
	pub [keySize]byte
	buf []byte
}

func newRawPeer(t *testing.T, local string) *rawPeer {
	t.Helper()
	c, err := stdnet.ListenUDP("udp", stdnet.UDPAddrFromAddrPort(netip.MustParseAddrPort(local)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &rawPeer{c: c, buf: make([]byte, 2048)}
	rand.Read(p.pub[:])
	return p
}

func (p *rawPeer) hello(to netip.AddrPort, cookie []byte) {
	p.c.WriteToUDPAddrPort(appendHello(nil, hello{Version: ProtocolVersion, Pub: p.pub, Cookie: cookie}), to)
}

// read returns the next datagram, or nil after wait.
func (p *rawPeer) read(wait time.Duration) []byte {
	p.c.SetReadDeadline(time.Now().Add(wait))
	n, _, err := p.c.ReadFromUDPAddrPort(p.buf)
	if err != nil {
		return nil
	}
	return p.buf[:n]
}

// echoCookie runs the handshake up to the welcome without ever using a
// key: hello, then hello with the cookie echoed. It returns the kind of
// the server's last answer (0: none).
func (p *rawPeer) echoCookie(to netip.AddrPort) byte {
	p.hello(to, nil)
	b := p.read(2 * time.Second)
	if b == nil {
		return 0
	}
	_, c, _, _, err := parseCookie(b)
	if err != nil {
		return b[0]
	}
	p.hello(to, c)
	if b = p.read(2 * time.Second); b == nil {
		return 0
	}
	return b[0]
}

// Echoing cookies from many source ports, never proving possession of a
// key: the attacker's source holds at most SourcePending slots, they expire
// after PendingTimeout, and a client from another source connects
// meanwhile.
func TestAdmitCookieEchoFlood(t *testing.T) {
	cfg := Config{MaxLinks: 128, MaxPending: 48, SourcePending: 16, SourceLinks: 64, SourceHandshakeRate: -1, PendingTimeout: 2 * time.Second}
	srv := admitServer(t, cfg)
	to := srv.LocalAddr()
	const ports = 200
	peers := make([]*rawPeer, ports)
	for i := range peers {
		peers[i] = newRawPeer(t, "127.0.0.1:0")
	}
	flood := func() (welcomes int) {
		for _, p := range peers {
			if p.echoCookie(to) == kindWelcome {
				welcomes++
			}
			if st := srv.Stats().Admission; st.Pending > cfg.SourcePending {
				t.Fatalf("%d unconfirmed links from one source (limit %d)", st.Pending, cfg.SourcePending)
			}
		}
		return welcomes
	}
	start := time.Now()
	// SourcePending slots, taken again as they expire on a slow machine.
	if w, rounds := flood(), 1+int(time.Since(start)/cfg.PendingTimeout); w > cfg.SourcePending*rounds {
		t.Fatalf("%d welcomes for one source (limit %d per %v)", w, cfg.SourcePending, cfg.PendingTimeout)
	}
	st := srv.Stats()
	if st.Links > cfg.SourcePending || st.Admission.SourceFull == 0 || st.HandshakeFailures == 0 {
		t.Fatalf("after the flood: %d links, admission %+v, %d handshake failures", st.Links, st.Admission, st.HandshakeFailures)
	}
	// The attacker's slots are still held: another source gets in.
	legitRoundTrip(t, srv, nil)
	// They expire, uncounted as clients and unreported.
	deadline := time.Now().Add(10 * time.Second)
	for srv.Stats().Admission.Pending > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("unconfirmed links never expire: %+v", srv.Stats().Admission)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st = srv.Stats()
	if st.Links != 1 || st.Admission.Expired < uint64(cfg.SourcePending) || st.Handshakes != 1 {
		t.Fatalf("after expiry: %d links, %d handshakes, admission %+v", st.Links, st.Handshakes, st.Admission)
	}
	// Freed slots can be taken again (and the legitimate client stays).
	if w := flood(); w == 0 {
		t.Fatal("no slot after expiry")
	}
	if srv.Stats().Links < 2 {
		t.Fatalf("links %d", srv.Stats().Links)
	}
}

// One source cannot hold every slot with real, confirmed clients.
func TestAdmitSourceLinksCapped(t *testing.T) {
	srv := admitServer(t, Config{SourceLinks: 8})
	var full, ok int
	for range 12 {
		c, err := Listen("127.0.0.1:0", Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = c.Dial(ctx, srv.LocalAddr())
		cancel()
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrServerFull):
			full++
		default:
			t.Fatalf("dial: %v", err)
		}
	}
	st := srv.Stats()
	if ok != 8 || full != 4 || st.Admission.SourceFull != 4 || st.HandshakeFailures != 4 {
		t.Fatalf("%d connected, %d refused; admission %+v, %d failures", ok, full, st.Admission, st.HandshakeFailures)
	}
	legitRoundTrip(t, srv, nil)
}

// A hello flood on one conn (the UDP socket, or the TCP fallback) does not
// starve the clients of the other: each conn has its own budget.
func TestAdmitConnFloodIsolated(t *testing.T) {
	for _, floodTCP := range []bool{true, false} {
		name := map[bool]string{true: "tcp flood, udp client", false: "udp flood, tcp client"}[floodTCP]
		t.Run(name, func(t *testing.T) {
			// No source rate: the flood comes from one source, and only
			// the conn budget is under test.
			srv, ln := listenWithTCP(t, Config{HandshakeRate: 100, SourceHandshakeRate: -1})
			if err := srv.AddConn(NewTCPMux(ln, 16)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var fc PacketConn
			var err error
			if floodTCP {
				fc, err = DialTCP(ctx, srv.LocalAddr())
			} else {
				fc, err = ListenUDP("127.0.0.1:0")
			}
			if err != nil {
				t.Fatal(err)
			}
			defer fc.Close()
			go func() { // drain the answers
				b := make([]byte, 2048)
				for {
					if _, _, err := fc.ReadFrom(b); err != nil {
						return
					}
				}
			}()
			var pub [keySize]byte
			h := appendHello(nil, hello{Version: ProtocolVersion, Pub: pub})
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				end := time.Now().Add(20 * time.Second)
				for i := 0; i < 200_000 && time.Now().Before(end); i++ {
					select {
					case <-stop:
						return
					default:
					}
					fc.WriteTo(h, srv.LocalAddr())
				}
			})
			defer func() { close(stop); fc.Close(); wg.Wait() }()
			// Wait until the flooded conn is over its budget.
			for srv.Stats().Admission.ConnLimited == 0 {
				if ctx.Err() != nil {
					t.Fatal("the flood never exceeded the conn budget")
				}
				time.Sleep(5 * time.Millisecond)
			}
			var lc PacketConn
			if floodTCP {
				lc, err = ListenUDP("127.0.0.9:0")
			} else {
				lc, err = DialTCP(ctx, srv.LocalAddr())
			}
			if err != nil {
				t.Fatal(err)
			}
			legitRoundTrip(t, srv, lc)
			if st := srv.Stats(); st.Drops[DropRateLimited] == 0 || st.Admission.Busy == 0 {
				t.Fatalf("flood not counted: drops %v, admission %+v", st.Drops, st.Admission)
			}
		})
	}
}

// Over its source's handshake rate, a client gets a busy reject (Dial:
// ErrServerBusy); busy rejects are small and themselves rate limited.
func TestAdmitBusyReject(t *testing.T) {
	srv := admitServer(t, Config{SourceHandshakeRate: 2})
	to := srv.LocalAddr()
	p := newRawPeer(t, "127.0.0.1:0")
	var got []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			b := p.read(time.Second)
			if b == nil {
				return
			}
			got = append(got, len(b))
			if b[0] == kindReject && b[1] != rejectBusy {
				t.Errorf("reject reason %d", b[1])
			}
		}
	}()
	const sent = 500
	start := time.Now()
	for range sent {
		p.hello(to, nil)
	}
	<-done
	st := srv.Stats()
	elapsed := time.Since(start) // every busy reject counted was sent within it
	busy := 0
	for _, n := range got {
		if n > helloSize {
			t.Fatalf("answer of %d bytes to a %d-byte hello", n, helloSize)
		}
		if n == rejectSize {
			busy++
		}
	}
	// One busy reject per source per busyGap at most. (The socket may lose
	// some hellos under load, and the client some answers.)
	if busy == 0 || uint64(busy) > st.Admission.Busy || st.Admission.Busy > uint64(elapsed/busyGap)+1 {
		t.Fatalf("%d busy rejects received, %d sent, for %d hellos in %v; admission %+v", busy, st.Admission.Busy, sent, elapsed, st.Admission)
	}
	if st.Admission.SourceLimited < sent/5 || st.Drops[DropRateLimited] != st.Admission.SourceLimited ||
		st.Admission.Busy+st.Admission.BusyWithheld != st.Admission.SourceLimited {
		t.Fatalf("refusals not counted: drops %v, admission %+v", st.Drops, st.Admission)
	}
	// The source's budget is spent: a client from it is told it is busy.
	c, err := Listen("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Empty the source's bucket again, and let busyGap pass so that the
	// next busy reject is the client's.
	for range 4*sourceBurst + 4 {
		p.hello(to, nil)
	}
	time.Sleep(2 * busyGap)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Dial(ctx, to)
	var re *RejectError
	if !errors.Is(err, ErrServerBusy) || !errors.As(err, &re) {
		t.Fatalf("dial over the source's rate: %v", err)
	}
	legitRoundTrip(t, srv, nil)
}

// recordConn keeps the hellos its host sends.
type recordConn struct {
	PacketConn
	mu     sync.Mutex
	hellos [][]byte
}

func (r *recordConn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	if len(b) > 0 && b[0] == kindHello {
		r.mu.Lock()
		r.hellos = append(r.hellos, bytes.Clone(b))
		r.mu.Unlock()
	}
	return r.PacketConn.WriteTo(b, to)
}

// A replayed hello with its cookie, from the client's own address, with the
// client's key or another, never rebuilds or replaces the live link.
func TestAdmitReplayKeepsLiveLink(t *testing.T) {
	srv := admitServer(t, Config{PendingTimeout: 500 * time.Millisecond})
	to := srv.LocalAddr()
	uc, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordConn{PacketConn: uc}
	cli, err := NewHost(rc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, to); err != nil {
		t.Fatal(err)
	}
	id := cli.ID()
	nextEvent(t, srv, "the client", func(e Event) bool { return e.Kind == EventConnected && e.Peer == id })
	roundTrip(t, srv, cli)
	rc.mu.Lock()
	last := rc.hellos[len(rc.hellos)-1]
	rc.mu.Unlock()
	if hl, err := parseHello(last); err != nil || len(hl.Cookie) == 0 {
		t.Fatalf("recorded hello: %v", err)
	}
	// The same hello, key and cookie, from the client's address.
	for range 3 {
		uc.WriteTo(last, to)
	}
	// Another key with a valid cookie for the client's address (an
	// attacker on the path can get one; so does a client restarted on the
	// same port).
	var pub [keySize]byte
	rand.Read(pub[:])
	other := appendHello(nil, hello{Version: ProtocolVersion, Pub: pub, Cookie: srv.cookies.make(time.Now(), uc.LocalAddr(), pub[:])})
	uc.WriteTo(other, to)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := srv.Stats()
		if st.Admission.Replayed >= 3 && st.Admission.Expired >= 1 && st.Admission.Pending == 0 {
			if st.Drops[DropReplay] < 3 || st.Links != 1 {
				t.Fatalf("drops %v, links %d", st.Drops, st.Links)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replays not refused: %+v", st.Admission)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The live link is untouched and was never reported down.
	if p := srv.Peers(); len(p) != 1 || p[0] != id {
		t.Fatalf("server peers %v, want [%v]", p, id)
	}
	if a, ok := srv.RemoteAddr(id); !ok || a != uc.LocalAddr() {
		t.Fatalf("link address %v %v", a, ok)
	}
	roundTrip(t, srv, cli)
	for {
		e, ok := srv.Poll()
		if !ok {
			break
		}
		if e.Kind == EventDisconnected {
			t.Fatalf("server reported %v down: %v", e.Peer, e.Err)
		}
	}
	legitRoundTrip(t, srv, nil)
}

// The admission hook (stage 4, where a connect token will be checked) runs
// on proven addresses before any slot is taken or any key agreed.
func TestAdmitCheckBeforeSlot(t *testing.T) {
	srv := admitServer(t, Config{})
	var mu sync.Mutex
	seen := make(map[netip.Addr]int)
	errNoToken := errors.New("no token")
	srv.mu.Lock()
	srv.admitChecks = append(srv.admitChecks, func(hl hello, from netip.AddrPort) error {
		mu.Lock()
		defer mu.Unlock()
		if len(hl.Cookie) == 0 {
			t.Error("check before the cookie")
		}
		seen[from.Addr()]++
		if from.Addr() == netip.MustParseAddr("127.0.0.1") {
			return errNoToken
		}
		return nil
	})
	srv.mu.Unlock()
	c, err := Listen("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Dial(ctx, srv.LocalAddr()); !errors.Is(err, ErrServerBusy) {
		t.Fatalf("refused by the check: %v", err)
	}
	srv.mu.RLock()
	links, reserving, reserved := len(srv.byID), srv.adm.reserving, len(srv.reserved)
	srv.mu.RUnlock()
	if links != 0 || reserving != 0 || reserved != 0 {
		t.Fatalf("a refused hello took a slot: %d links, %d reserving, %d reserved", links, reserving, reserved)
	}
	legitRoundTrip(t, srv, nil)
	mu.Lock()
	defer mu.Unlock()
	if seen[netip.MustParseAddr("127.0.0.1")] == 0 || seen[netip.MustParseAddr("127.0.0.9")] == 0 {
		t.Fatalf("check ran on %v", seen)
	}
}

// IPv6 sources are grouped by /64, IPv4 by address; a TCP fallback
// client counts as its TCP peer.
func TestAdmitSourceOf(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7:1", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:9", "2001:db8:1:2::"},
		{"[2001:db8:1:2:ffff::1]:9", "2001:db8:1:2::"},
		{"[fe80::1%eth0]:9", "fe80::"},
	} {
		if got := admitSource(nil, netip.MustParseAddrPort(c.in)); got != netip.MustParseAddr(c.want) {
			t.Errorf("admitSource(%s) = %v, want %s", c.in, got, c.want)
		}
	}
}

// FuzzAdmission feeds arbitrary hellos, from a few sources, on two conns,
// to a server with small limits: nothing panics, and the limits hold.
func FuzzAdmission(f *testing.F) {
	cfg := Config{Accept: true, MaxLinks: 8, MaxPending: 4, SourcePending: 2, SourceLinks: 3, SourceHandshakeRate: 50, HandshakeRate: 100}
	c1, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv, err := NewHost(c1, cfg)
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	c2, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.AddConn(c2); err != nil {
		f.Fatal(err)
	}
	froms := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.2:1"), netip.MustParseAddrPort("127.0.0.2:2"),
		netip.MustParseAddrPort("127.0.0.3:1"), netip.MustParseAddrPort("[::1]:5"),
	}
	var pub [keySize]byte
	pub[0] = 9
	now := time.Now()
	for i, from := range froms {
		f.Add(byte(i), appendHello(nil, hello{Version: ProtocolVersion, Pub: pub}))
		f.Add(byte(i), appendHello(nil, hello{Version: ProtocolVersion, Flags: helloAES, Pub: pub, Cookie: srv.cookies.make(now, from, pub[:])}))
	}
	f.Add(byte(0), appendHello(nil, hello{Version: 7, Pub: pub}))
	f.Add(byte(5), appendHello(nil, hello{Version: ProtocolVersion, Pub: pub, Cookie: make([]byte, cookieSize)}))
	f.Add(byte(1), []byte{kindHello, 2, 0})
	f.Fuzz(func(t *testing.T, sel byte, b []byte) {
		from := froms[int(sel)%len(froms)]
		conn := c1
		if sel&0x80 != 0 {
			conn = c2
		}
		b = bytes.Clone(b)
		// Let a fuzzed hello carry a valid cookie for its key and source.
		if hl, err := parseHello(b); err == nil && len(hl.Cookie) == cookieSize && sel&0x40 != 0 {
			copy(b[5+keySize:], srv.cookies.make(time.Now(), from, hl.Pub[:]))
		}
		srv.demux(b, from, time.Now(), new(rxScratch), conn)
		srv.mu.RLock()
		defer srv.mu.RUnlock()
		a := &srv.adm
		if len(srv.byID)+a.reserving > cfg.MaxLinks || a.npending > cfg.MaxPending || a.reserving != 0 {
			t.Fatalf("%d links, %d pending, %d reserving", len(srv.byID), a.npending, a.reserving)
		}
		for k, s := range a.sources {
			if s.links > cfg.SourceLinks || s.pending > cfg.SourcePending || s.links < 0 || s.pending < 0 {
				t.Fatalf("source %v: %d links, %d pending", k, s.links, s.pending)
			}
		}
	})
}

// BenchmarkAdmitHello measures what one hello costs a server's reading
// goroutine: over its source's rate (dropped, busy rejects rate limited),
// and within it (a cookie: one HMAC and a 27-byte answer).
func BenchmarkAdmitHello(b *testing.B) {
	for _, tc := range []struct {
		name string
		rate int
	}{{"over-rate", 2}, {"cookie", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := ListenUDP("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv, err := NewHost(c, Config{Accept: true, SourceHandshakeRate: tc.rate, HandshakeRate: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			sink, err := ListenUDP("127.0.0.2:0") // receives the answers, never read
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			from := sink.LocalAddr()
			var pub [keySize]byte
			h := appendHello(nil, hello{Version: ProtocolVersion, Pub: pub})
			rx := new(rxScratch)
			b.ReportAllocs()
			for b.Loop() {
				srv.demux(h, from, time.Now(), rx, c)
			}
		})
	}
}

// A TCP fallback client counts against the address of its TCP peer, not
// the per-connection address the mux gives it.
func TestAdmitTCPSource(t *testing.T) {
	srv, ln := listenWithTCP(t, Config{SourceLinks: 1})
	mux := NewTCPMux(ln, 16)
	if err := srv.AddConn(mux); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func() (*Host, error) {
		tc, err := DialTCP(ctx, srv.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewHost(tc, Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h, h.Dial(ctx, srv.LocalAddr())
	}
	h, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := srv.RemoteAddr(h.ID())
	if !ok || !IsTCPAddr(a) {
		t.Fatalf("client at %v", a)
	}
	if got, ok := mux.SourceAddr(a); !ok || got != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("SourceAddr(%v) = %v, %v", a, got, ok)
	}
	if got := admitSource(mux, a); got != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("source %v", got)
	}
	// Another TCP connection from the same host is the same source.
	if _, err := dial(); !errors.Is(err, ErrServerFull) {
		t.Fatalf("second client from 127.0.0.1 over TCP: %v", err)
	}
	if _, ok := mux.SourceAddr(netip.MustParseAddrPort("[fd73:6b6e:7463::ffff]:1")); ok {
		t.Fatal("an unknown mux address has a source")
	}
	legitRoundTrip(t, srv, nil)
}
