package portmap_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/portmap"
)

// fakeGateway answers PCP and NAT-PMP on a loopback port as a router would,
// and records the requests it saw.
type fakeGateway struct {
	t    *testing.T
	conn *net.UDPConn
	ext  netip.Addr

	pcpOff   bool   // answer PCP as a NAT-PMP-only router does
	refuse   byte   // PCP result code to answer with (0: success)
	lifetime uint32 // granted lifetime (0: as asked)
	// junk, if set, gives datagrams to send before each answer to req
	// (bad, foreign or stray answers the Mapper must drop).
	junk   func(req []byte) [][]byte
	reqs   chan []byte
	silent atomic.Bool // answer nothing (the daemon went away)
	// epochStart is when the gateway's epoch was epochBase seconds; a
	// restart (restart) sets it back to 0.
	epochStart atomic.Int64 // unix nanoseconds
	epochBase  atomic.Uint32
}

// epoch is the gateway's epoch now (seconds since its state began).
func (g *fakeGateway) epoch() uint32 {
	return g.epochBase.Load() + uint32(time.Since(time.Unix(0, g.epochStart.Load()))/time.Second)
}

// restart makes the gateway lose its state: its epoch starts again at 0.
func (g *fakeGateway) restart() {
	g.epochBase.Store(0)
	g.epochStart.Store(time.Now().UnixNano())
}

// announce sends b from the gateway's port to to (an announcement).
func (g *fakeGateway) announce(t *testing.T, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := g.conn.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

// pcpAnnounce is a PCP ANNOUNCE response with the given epoch.
func pcpAnnounce(epoch uint32) []byte {
	b := make([]byte, 24)
	b[0], b[1] = 2, 0x80
	binary.BigEndian.PutUint32(b[8:12], epoch)
	return b
}

func newFakeGateway(t *testing.T, set func(*fakeGateway)) *fakeGateway {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{t: t, conn: c, ext: netip.MustParseAddr("198.51.100.7"), reqs: make(chan []byte, 64)}
	g.epochBase.Store(1000) // up for a while before the test
	g.epochStart.Store(time.Now().UnixNano())
	if set != nil {
		set(g) // before serve starts: no lock needed
	}
	done := make(chan struct{})
	go g.serve(done)
	t.Cleanup(func() { c.Close(); <-done })
	return g
}

func (g *fakeGateway) port() uint16 { return g.conn.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

func (g *fakeGateway) serve(done chan struct{}) {
	defer close(done)
	buf := make([]byte, 1500)
	for {
		n, from, err := g.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		req := append([]byte(nil), buf[:n]...)
		select {
		case g.reqs <- req:
		default:
		}
		if g.junk != nil && !g.silent.Load() {
			for _, j := range g.junk(req) {
				g.conn.WriteToUDPAddrPort(j, from)
			}
		}
		if out := g.answer(req); out != nil {
			g.conn.WriteToUDPAddrPort(out, from)
		}
	}
}

func (g *fakeGateway) answer(req []byte) []byte {
	if g.silent.Load() {
		return nil
	}
	switch {
	case len(req) >= 2 && req[0] == 2 && !g.pcpOff: // PCP
		if len(req) != 60 || req[1] != 1 {
			return nil
		}
		out := make([]byte, 60)
		out[0], out[1], out[3] = 2, 0x81, g.refuse
		life := binary.BigEndian.Uint32(req[4:8])
		if g.lifetime != 0 && life != 0 {
			life = g.lifetime
		}
		binary.BigEndian.PutUint32(out[4:8], life)
		binary.BigEndian.PutUint32(out[8:12], g.epoch())
		copy(out[24:], req[24:60]) // nonce, protocol, ports
		ip := g.ext.As16()
		copy(out[44:60], ip[:])
		return out
	case len(req) >= 2 && req[0] == 2: // PCP to a NAT-PMP-only router
		return []byte{0, 128 + req[1], 0, 1, 0, 0, 0, 0}
	case len(req) == 2 && req[0] == 0 && req[1] == 0: // NAT-PMP address
		ip := g.ext.As4()
		out := binary.BigEndian.AppendUint32([]byte{0, 128, 0, 0}, g.epoch())
		return append(out, ip[:]...)
	case len(req) == 12 && req[0] == 0 && req[1] == 1: // NAT-PMP map
		out := binary.BigEndian.AppendUint32([]byte{0, 129, 0, 0}, g.epoch())
		out = append(out, req[4:6]...)
		ext := binary.BigEndian.Uint16(req[6:8])
		life := binary.BigEndian.Uint32(req[8:12])
		if life == 0 {
			ext = 0
		} else if g.lifetime != 0 {
			life = g.lifetime
		}
		out = binary.BigEndian.AppendUint16(out, ext)
		return binary.BigEndian.AppendUint32(out, life)
	}
	return nil
}

// next returns the next request the gateway saw.
func (g *fakeGateway) next(t *testing.T) []byte {
	t.Helper()
	select {
	case r := <-g.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the fake gateway saw no request in 10 s")
	}
	return nil
}

func startFake(t *testing.T, g *fakeGateway, cfg portmap.Config) (*portmap.Mapper, chan portmap.Status) {
	ch := make(chan portmap.Status, 16)
	cfg.Gateway = netip.MustParseAddr("127.0.0.1")
	cfg.OnChange = func(s portmap.Status) { ch <- s }
	m := portmap.Start(context.Background(), 40000, portmap.WithPorts(cfg, g.port(), 9))
	t.Cleanup(func() { m.Close() })
	return m, ch
}

func nextOf(t *testing.T, ch chan portmap.Status) portmap.Status {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no status in 10 s")
	}
	return portmap.Status{}
}

// PCP maps, renews with the same nonce and the port it got, and deletes
// with lifetime 0 on Close.
func TestPCPMapRenewDelete(t *testing.T) {
	g := newFakeGateway(t, func(g *fakeGateway) { g.lifetime = 2 }) // renewed after 1 s
	m, ch := startFake(t, g, portmap.Config{Protocols: []portmap.Protocol{portmap.PCP}})
	s := nextOf(t, ch)
	if s.State != portmap.Mapped || s.Mapping.Protocol != portmap.PCP || s.Mapping.External != netip.MustParseAddrPort("198.51.100.7:40000") || s.Mapping.Lifetime != 2*time.Second {
		t.Fatalf("status %+v", s)
	}
	first := g.next(t)
	if s := nextOf(t, ch); s.State != portmap.Mapped || s.Err != nil {
		t.Fatalf("after renewal: %+v", s)
	}
	renew := g.next(t)
	if string(renew[24:36]) != string(first[24:36]) {
		t.Fatal("the renewal used another nonce")
	}
	if binary.BigEndian.Uint16(renew[42:44]) != 40000 || binary.BigEndian.Uint16(renew[40:42]) != 40000 {
		t.Fatalf("renewal asks for ports %x", renew[40:44])
	}
	m.Close()
	var del []byte
	for del == nil || binary.BigEndian.Uint32(del[4:8]) != 0 {
		del = g.next(t) // a late renewal may come first
	}
	if string(del[24:36]) != string(first[24:36]) {
		t.Fatal("the deletion used another nonce")
	}
	if s := m.Status(); s.State != portmap.Closed || !errors.Is(s.Err, portmap.ErrClosed) {
		t.Fatalf("after Close: %+v", s)
	}
}

// A router that speaks NAT-PMP only answers PCP with version 0: the Mapper
// goes on to NAT-PMP, which maps.
func TestFallsBackToNATPMP(t *testing.T) {
	g := newFakeGateway(t, func(g *fakeGateway) { g.pcpOff = true })
	_, ch := startFake(t, g, portmap.Config{Protocols: []portmap.Protocol{portmap.PCP, portmap.NATPMP}})
	s := nextOf(t, ch)
	if s.State != portmap.Mapped || s.Mapping.Protocol != portmap.NATPMP || s.Mapping.External != netip.MustParseAddrPort("198.51.100.7:40000") {
		t.Fatalf("status %+v: want NAT-PMP's mapping", s)
	}
}

// A refusal is a *ResultError with the code; with every protocol failing the
// Mapper says Unavailable and why.
func TestRefusalIsReported(t *testing.T) {
	g := newFakeGateway(t, func(g *fakeGateway) { g.refuse = 2 }) // NOT_AUTHORIZED
	_, ch := startFake(t, g, portmap.Config{Protocols: []portmap.Protocol{portmap.PCP}, Retry: time.Hour})
	s := nextOf(t, ch)
	var re *portmap.ResultError
	if s.State != portmap.Unavailable || !errors.Is(s.Err, portmap.ErrRefused) || !errors.As(s.Err, &re) || re.Code != 2 || re.Protocol != portmap.PCP {
		t.Fatalf("status %+v: want refused, NOT_AUTHORIZED", s)
	}
}

// No answer at all: ErrTimeout, within the timeout.
func TestSilentGatewayTimesOut(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch := make(chan portmap.Status, 4)
	cfg := portmap.Config{Gateway: netip.MustParseAddr("127.0.0.1"), Protocols: []portmap.Protocol{portmap.PCP, portmap.NATPMP}, Timeout: 300 * time.Millisecond, Retry: time.Hour, OnChange: func(s portmap.Status) { ch <- s }}
	m := portmap.Start(context.Background(), 40000, portmap.WithPorts(cfg, c.LocalAddr().(*net.UDPAddr).AddrPort().Port(), 9))
	defer m.Close()
	s := nextOf(t, ch)
	if s.State != portmap.Unavailable || !errors.Is(s.Err, portmap.ErrTimeout) {
		t.Fatalf("status %+v: want unavailable, timed out", s)
	}
}

// Closing while the first attempt waits ends the Mapper promptly.
func TestCloseDuringAttempt(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := portmap.Config{Gateway: netip.MustParseAddr("127.0.0.1"), Protocols: []portmap.Protocol{portmap.PCP}, Timeout: time.Hour}
	m := portmap.Start(context.Background(), 40000, portmap.WithPorts(cfg, c.LocalAddr().(*net.UDPAddr).AddrPort().Port(), 9))
	buf := make([]byte, 100)
	c.ReadFromUDP(buf) // the first request is out
	m.Close()
	if s := m.Status(); s.State != portmap.Closed {
		t.Fatalf("status %+v", s)
	}
}

// A gateway that stops answering: the renewal fails and is retried while
// the mapping holds (Mapped, with the error), then the mapping lapses
// (Pending) and the Mapper asks every protocol again (Unavailable).
func TestMappingLapses(t *testing.T) {
	g := newFakeGateway(t, func(g *fakeGateway) { g.lifetime = 2 })
	_, ch := startFake(t, g, portmap.Config{Protocols: []portmap.Protocol{portmap.PCP}, Timeout: 300 * time.Millisecond, Retry: time.Hour})
	if s := nextOf(t, ch); s.State != portmap.Mapped {
		t.Fatalf("status %+v", s)
	}
	g.silent.Store(true)
	var states []string
	for {
		s := nextOf(t, ch)
		states = append(states, s.State.String())
		if s.State == portmap.Mapped && !errors.Is(s.Err, portmap.ErrTimeout) {
			t.Fatalf("a failed renewal: %+v", s)
		}
		if s.State == portmap.Unavailable {
			break
		}
	}
	if len(states) < 3 || states[0] != "mapped" || states[len(states)-2] != "pending" {
		t.Fatalf("states %v: want mapped (renewal failed)..., pending (lapsed), unavailable", states)
	}
}
