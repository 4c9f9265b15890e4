package portmap_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/portmap"
)

// pcpJunk is what a hostile or confused LAN sends back to a PCP MAP request
// before the real answer, one datagram per drop reason.
func pcpJunk(req []byte) [][]byte {
	if len(req) != 60 || req[0] != 2 {
		return nil
	}
	answer := func() []byte {
		b := append([]byte(nil), req...)
		b[1] |= 0x80
		return b
	}
	version := answer()
	version[0] = 3
	otherNonce := answer()
	otherNonce[24] ^= 0xff
	odd := append(answer(), 0, 0)
	long := append(answer(), make([]byte, 1100)...)
	return [][]byte{
		{2, 0x81},  // short
		long,       // long
		version,    // version
		req,        // a request, not an answer: opcode
		otherNonce, // another request's answer: nonce
		odd,        // 62 bytes: malformed
	}
}

// Every bad answer is counted by reason and skipped: the real answer that
// follows still makes the mapping (before, the first bad one ended the
// attempt).
func TestPCPDropsAreCountedAndSkipped(t *testing.T) {
	g := newFakeGateway(t, func(g *fakeGateway) { g.junk = pcpJunk })
	m, ch := startFake(t, g, portmap.Config{Protocols: []portmap.Protocol{portmap.PCP}, Retry: time.Hour})
	s := nextOf(t, ch)
	if s.State != portmap.Mapped {
		t.Fatalf("status %+v: want mapped despite the junk", s)
	}
	var want [portmap.NumDropReasons]uint64
	for _, r := range []portmap.DropReason{portmap.DropShort, portmap.DropLong, portmap.DropVersion, portmap.DropOpcode, portmap.DropNonce, portmap.DropMalformed} {
		want[r] = 1
	}
	st := m.Stats()
	checkDrops(t, st, want, 1)
	if st.Answers != 1 || st.Mapped != 1 {
		t.Fatalf("stats %+v: want 1 answer, 1 mapping", st)
	}
	if s.Stats.Drops != st.Drops {
		t.Fatalf("the status's stats %+v, want the drops %v", s.Stats, st.Drops)
	}
}

// checkDrops checks the drops of st against want, the junk the fake
// gateway sends before its answers to the requests of exchanges
// exchanges. A retransmission (an answer later than 250 ms on a loaded
// machine) brings its exchange's junk again, so each count may be up to
// one more copy per extra request.
func checkDrops(t *testing.T, st portmap.Stats, want [portmap.NumDropReasons]uint64, exchanges uint64) {
	t.Helper()
	if st.Requests < exchanges {
		t.Fatalf("stats %+v: want at least %d requests", st, exchanges)
	}
	copies := st.Requests - exchanges + 1
	for r := range portmap.NumDropReasons {
		if st.Drops[r] < want[r] || st.Drops[r] > want[r]*copies {
			t.Errorf("drops %v: %d, want %d (all %v, %d requests)", r, st.Drops[r], want[r], st.Drops, st.Requests)
		}
	}
}

// natpmpJunk answers each NAT-PMP request with stray datagrams first.
func natpmpJunk(req []byte) [][]byte {
	if len(req) < 2 || req[0] != 0 {
		return nil
	}
	other := []byte{0, 129, 0, 0, 0, 0, 0, 1, 0x12, 0x34, 0x12, 0x34, 0, 0, 0x1c, 0x20} // another port's mapping
	zero := []byte{0, 129, 0, 0, 0, 0, 0, 1, 0x9c, 0x40, 0, 0, 0, 0, 0, 0}              // port 0 for 0 s
	switch req[1] {
	case 0: // address request
		return [][]byte{{0, 128, 0}, {2, 128, 0, 0, 0, 0, 0, 0}, other}
	case 1: // mapping request
		return [][]byte{other, zero, {0, 1, 0, 0, 0, 0, 0, 0}}
	}
	return nil
}

// The same for NAT-PMP's two exchanges (the external address, then the
// mapping).
func TestNATPMPDropsAreCountedAndSkipped(t *testing.T) {
	g := newFakeGateway(t, func(g *fakeGateway) { g.junk = natpmpJunk })
	m, ch := startFake(t, g, portmap.Config{Protocols: []portmap.Protocol{portmap.NATPMP}, Retry: time.Hour})
	if s := nextOf(t, ch); s.State != portmap.Mapped {
		t.Fatalf("status %+v: want mapped despite the junk", s)
	}
	st := m.Stats()
	want := [portmap.NumDropReasons]uint64{}
	want[portmap.DropShort] = 1     // 3 bytes
	want[portmap.DropVersion] = 1   // PCP's version to a NAT-PMP request
	want[portmap.DropOpcode] = 2    // a mapping answer to the address request; a request
	want[portmap.DropNonce] = 1     // another port's mapping
	want[portmap.DropMalformed] = 1 // port 0 for 0 s
	checkDrops(t, st, want, 2)
	if st.Answers != 2 {
		t.Fatalf("answers %d, want 2", st.Answers)
	}
}

// A gateway that answers only junk: the attempt times out, and its error
// says what the last answer was (malformed).
func TestOnlyJunkTimesOutMalformed(t *testing.T) {
	cfg := portmap.Config{Protocols: []portmap.Protocol{portmap.PCP}, Timeout: 300 * time.Millisecond, Retry: time.Hour}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A gateway of our own that answers every request with a short
	// datagram only.
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort([]byte{2, 0x81}, from)
		}
	}()
	ch := make(chan portmap.Status, 4)
	cfg.Gateway = netip.MustParseAddr("127.0.0.1")
	cfg.OnChange = func(s portmap.Status) { ch <- s }
	m := portmap.Start(t.Context(), 40000, portmap.WithPorts(cfg, c.LocalAddr().(*net.UDPAddr).AddrPort().Port(), 9))
	defer m.Close()
	s := nextOf(t, ch)
	if s.State != portmap.Unavailable || !errors.Is(s.Err, portmap.ErrTimeout) || !errors.Is(s.Err, portmap.ErrMalformed) {
		t.Fatalf("status %+v: want unavailable, timed out after malformed answers", s)
	}
	// The answer to the last retransmission may come after the timeout.
	if st := m.Stats(); st.Drops[portmap.DropShort] == 0 || st.Drops[portmap.DropShort] > st.Requests || st.Answers != 0 {
		t.Fatalf("stats %+v: want a short drop per request answered, no answer taken", st)
	}
}

// A refusal ends the attempt at once and is counted.
func TestRefusalIsCounted(t *testing.T) {
	g := newFakeGateway(t, func(g *fakeGateway) { g.refuse = 8 }) // NO_RESOURCES
	m, ch := startFake(t, g, portmap.Config{Protocols: []portmap.Protocol{portmap.PCP}, Retry: time.Hour})
	if s := nextOf(t, ch); s.State != portmap.Unavailable || !errors.Is(s.Err, portmap.ErrRefused) {
		t.Fatalf("status %+v", s)
	}
	if st := m.Stats(); st.Drops[portmap.DropResult] != 1 || st.Requests != 1 {
		t.Fatalf("stats %+v: want one request, one result drop", st)
	}
}

// announceSocket opens the socket a test Mapper hears announcements on
// and a ListenAnnounce that hands it over.
func announceSocket(t *testing.T) (netip.AddrPort, func(string, string) (net.PacketConn, error)) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), func(network, address string) (net.PacketConn, error) {
		if network != "udp4" || address != "0.0.0.0:5350" {
			t.Errorf("ListenAnnounce(%q, %q)", network, address)
		}
		return c, nil
	}
}

// A gateway that restarts and announces it (PCP ANNOUNCE, its epoch back
// at 0) gets the mapping again at once, not at half its hour-long
// lifetime. Announcements from elsewhere, and junk, are dropped and
// counted, and bring no renewal.
func TestAnnouncementRenewsAtOnce(t *testing.T) {
	g := newFakeGateway(t, nil)
	at, listen := announceSocket(t)
	cfg := portmap.Config{Protocols: []portmap.Protocol{portmap.PCP}, Lifetime: time.Hour, ListenAnnounce: listen}
	m, ch := startFake(t, g, portmap.WithAnnounceJitter(cfg, time.Millisecond))
	first := nextOf(t, ch)
	if first.State != portmap.Mapped {
		t.Fatalf("status %+v", first)
	}
	g.next(t) // the MAP request

	// Not from the gateway's port: foreign.
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.WriteToUDPAddrPort(pcpAnnounce(0), at); err != nil {
		t.Fatal(err)
	}
	g.announce(t, at, []byte{2, 0x80, 0})                         // short
	g.announce(t, at, append(pcpAnnounce(0)[:20], 0, 0, 0, 0, 1)) // malformed (25 bytes)
	bad := pcpAnnounce(0)
	bad[1] = 0x81 // a MAP answer on the announcement port
	g.announce(t, at, bad)

	g.restart()
	g.announce(t, at, pcpAnnounce(g.epoch()))
	s := nextOf(t, ch)
	if s.State != portmap.Mapped || s.Err != nil || s.Mapping.External != first.Mapping.External {
		t.Fatalf("after the announcement: %+v; want the mapping renewed", s)
	}
	if req := g.next(t); binary.BigEndian.Uint32(req[4:8]) == 0 {
		t.Fatal("the renewal was a deletion")
	}
	st := m.Stats()
	if st.Announcements != 1 || st.Remaps != 1 || st.Renewed != 1 || st.GatewayResets != 1 {
		t.Fatalf("stats %+v: want 1 announcement, 1 remap, 1 renewal, 1 gateway reset", st)
	}
	if st.Drops[portmap.DropForeign] != 1 || st.Drops[portmap.DropShort] != 1 || st.Drops[portmap.DropMalformed] != 1 || st.Drops[portmap.DropOpcode] != 1 {
		t.Fatalf("drops %v: want one foreign, short, malformed and opcode", st.Drops)
	}
}

// With no mapping (every protocol failed), an announcement makes the
// Mapper ask again at once instead of after Config.Retry.
func TestAnnouncementRetriesAtOnce(t *testing.T) {
	g := newFakeGateway(t, nil)
	g.silent.Store(true)
	at, listen := announceSocket(t)
	cfg := portmap.Config{Protocols: []portmap.Protocol{portmap.PCP}, Timeout: 300 * time.Millisecond, Retry: time.Hour, ListenAnnounce: listen}
	m, ch := startFake(t, g, portmap.WithAnnounceJitter(cfg, -1))
	if s := nextOf(t, ch); s.State != portmap.Unavailable {
		t.Fatalf("status %+v", s)
	}
	g.silent.Store(false) // the router came up
	g.restart()
	g.announce(t, at, []byte{0, 128, 0, 0, 0, 0, 0, 0, 198, 51, 100, 7}) // NAT-PMP's address announcement
	if s := nextOf(t, ch); s.State != portmap.Mapped {
		t.Fatalf("status %+v: want mapped at once", s)
	}
	if st := m.Stats(); st.Announcements != 1 || st.Remaps != 1 || st.Mapped != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// The gateway's epoch going back between two renewals (it restarted and
// lost the mapping, which the renewal made again) is counted.
func TestEpochBackOnRenewalIsCounted(t *testing.T) {
	g := newFakeGateway(t, func(g *fakeGateway) { g.lifetime = 2 })
	m, ch := startFake(t, g, portmap.Config{Protocols: []portmap.Protocol{portmap.NATPMP}})
	if s := nextOf(t, ch); s.State != portmap.Mapped {
		t.Fatalf("status %+v", s)
	}
	if st := m.Stats(); st.GatewayResets != 0 {
		t.Fatalf("stats %+v before the restart", st)
	}
	g.restart()
	// The first renewal after the restart sees the epoch back. (On a
	// loaded machine a renewal may have come between the mapping and
	// the restart: its status, with no reset yet, is skipped.)
	for i := 0; ; i++ {
		s := nextOf(t, ch)
		if s.State != portmap.Mapped || s.Err != nil {
			t.Fatalf("after the restart: %+v", s)
		}
		if s.Stats.GatewayResets > 0 {
			break
		}
		if i == 2 {
			t.Fatalf("stats %+v: three renewals and no reset seen", s.Stats)
		}
	}
	if st := m.Stats(); st.GatewayResets != 1 || st.Renewed == 0 {
		t.Fatalf("stats %+v: want the reset seen once, at a renewal", st)
	}
}

func TestEpochClock(t *testing.T) {
	for _, c := range []struct {
		prev    uint32
		elapsed time.Duration
		now     uint32
		lost    bool
	}{
		{1000, 10 * time.Second, 1010, false},
		{1000, 10 * time.Second, 1009, false}, // rounding
		{1000, 0, 998, false},                 // within the slack
		{1000, 0, 997, true},                  // back
		{1000, time.Hour, 5, true},            // restarted
		{1000, 100 * time.Second, 1086, false},
		{1000, 100 * time.Second, 1080, true},    // slower than 7/8 of the time here
		{1000, 100 * time.Second, 100000, false}, // faster: this host slept
		{4294967290, 10 * time.Second, 3, true},  // wrapped is back
	} {
		if got := portmap.EpochLost(c.prev, c.elapsed, c.now); got != c.lost {
			t.Errorf("epoch %d, %v later %d: lost %v, want %v", c.prev, c.elapsed, c.now, got, c.lost)
		}
	}
}
