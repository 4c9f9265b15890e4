package net_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	stdnet "net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// tcpServer starts a server on loopback with a TCPMux configured by tcfg.
func tcpServer(t *testing.T, hcfg net.Config, tcfg net.TCPConfig) (*net.Host, *net.TCPMux) {
	t.Helper()
	srv, ln := net.ListenWithTCP(t, hcfg)
	mux := net.NewTCPMuxConfig(ln, tcfg)
	if err := srv.AddConn(mux); err != nil {
		t.Fatal(err)
	}
	return srv, mux
}

// rawTCP opens a bare TCP connection to the server from the loopback
// address from.
func rawTCP(t *testing.T, from netip.Addr, to netip.AddrPort) *stdnet.TCPConn {
	t.Helper()
	d := stdnet.Dialer{LocalAddr: stdnet.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*stdnet.TCPConn)
}

// refused opens a TCP connection from the loopback address from and checks
// that the server closes it at once (the reset may even beat the dial).
func refused(t *testing.T, from netip.Addr, to netip.AddrPort, what string) {
	t.Helper()
	d := stdnet.Dialer{LocalAddr: stdnet.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	defer c.Close()
	waitClosed(t, c, 5*time.Second, what)
}

// waitClosed reads c until the server closes it; it fails the test if the
// connection is still open after limit.
func waitClosed(t *testing.T, c stdnet.Conn, limit time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 2048)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: still open after %v", what, limit)
		}
		return
	}
}

// tcpClient connects a host over TCP from the loopback address from and
// checks a reliable round trip with the server.
func tcpRoundTrip(t *testing.T, srv *net.Host, from netip.Addr) *net.Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := net.DialTCPFrom(ctx, from, srv.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	cli, err := net.NewHost(tc, net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	if err := cli.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatalf("TCP client from %v: %v", from, err)
	}
	expect(t, cli, net.EventConnected, net.ServerID)
	expect(t, srv, net.EventConnected, cli.ID())
	cli.Send(net.ServerID, net.Reliable, []byte("ping over tcp"))
	if e := expect(t, srv, net.EventMessage, cli.ID()); string(e.Data) != "ping over tcp" {
		t.Fatalf("server got %q", e.Data)
	}
	srv.Send(cli.ID(), net.Reliable, []byte("pong over tcp"))
	if e := expect(t, cli, net.EventMessage, net.ServerID); string(e.Data) != "pong over tcp" {
		t.Fatalf("client got %q", e.Data)
	}
	return cli
}

func frameHeader(n int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(n)) }

var (
	attacker = netip.MustParseAddr("127.0.0.1")
	legit    = netip.MustParseAddr("127.0.0.9")
)

// Idle connections and half-sent frames from one source are closed within
// the mux's deadlines, each counted by reason; the goroutines they held
// end; meanwhile a legitimate TCP client connects and gets a reliable
// round trip.
func TestTCPMuxClosesStalledConnections(t *testing.T) {
	srv, mux := tcpServer(t, net.Config{}, net.TCPConfig{
		MaxConnsPerIP:     200,
		FirstFrameTimeout: time.Second,
		FrameTimeout:      200 * time.Millisecond,
		IdleTimeout:       time.Second,
	})
	base := runtime.NumGoroutine()
	const n = 10
	type attack struct {
		name  string
		bytes []byte
		want  net.TCPCloseReason
	}
	attacks := []attack{
		{"idle", nil, net.TCPFirstFrameTimeout},
		{"one header byte", []byte{0}, net.TCPFrameTimeout},
		{"half a frame", append(frameHeader(500), make([]byte, 100)...), net.TCPFrameTimeout},
		{"slowloris", frameHeader(100), net.TCPFrameTimeout}, // then a byte every 50 ms
		{"one short hello, then idle", append(frameHeader(20), append([]byte{1}, make([]byte, 19)...)...), net.TCPIdleTimeout},
		{"garbage first frame", append(frameHeader(20), make([]byte, 20)...), net.TCPBadFrame},
		{"empty frame", frameHeader(0), net.TCPBadFrame},
		{"oversized frame", append(frameHeader(net.MaxDatagram+1), make([]byte, 64)...), net.TCPBadFrame},
	}
	type conn struct {
		c    *stdnet.TCPConn
		what string
	}
	var conns []conn
	var trickles atomic.Int32
	for _, a := range attacks {
		for i := range n {
			c := rawTCP(t, attacker, srv.LocalAddr())
			if len(a.bytes) > 0 {
				if _, err := c.Write(a.bytes); err != nil {
					t.Fatal(err)
				}
			}
			if a.name == "slowloris" {
				trickles.Add(1)
				go func() { // ends when the server closes the connection, or after 100 bytes
					defer trickles.Add(-1)
					for range 100 {
						time.Sleep(50 * time.Millisecond)
						if _, err := c.Write([]byte{1}); err != nil {
							return
						}
					}
				}()
			}
			conns = append(conns, conn{c, fmt.Sprintf("%s #%d", a.name, i)})
		}
	}
	// The attack does not keep a legitimate client out.
	cli := tcpRoundTrip(t, srv, legit)
	cli.Close()

	for _, c := range conns {
		waitClosed(t, c.c, 10*time.Second, c.what)
	}
	eventually(t, "mux empty", func() (bool, string) {
		st := mux.Stats()
		return st.Open == 0, fmt.Sprintf("%+v", st)
	})
	st := mux.Stats()
	want := map[net.TCPCloseReason]uint64{}
	for _, a := range attacks {
		want[a.want] += n
	}
	for r, w := range want {
		if st.Closed[r] != w {
			t.Errorf("closed for %v: %d, want %d (%+v)", r, st.Closed[r], w, st)
		}
	}
	var closed uint64
	for r, v := range st.Closed {
		if r != int(net.TCPRefusedFull) && r != int(net.TCPRefusedPerIP) {
			closed += v
		}
	}
	if st.Accepted != uint64(len(conns))+1 || closed != st.Accepted {
		t.Errorf("accepted %d, closed %d, of %d connections: %+v", st.Accepted, closed, len(conns)+1, st)
	}
	eventually(t, "goroutines back to the baseline", func() (bool, string) {
		g := runtime.NumGoroutine()
		return g <= base && trickles.Load() == 0, fmt.Sprintf("%d goroutines, %d before the attack", g, base)
	})
}

// One source cannot take more than MaxConnsPerIP connections, nor anyone
// more than MaxConns: the rest are refused at once and counted, and a
// client from another address still gets in.
func TestTCPMuxConnectionCaps(t *testing.T) {
	srv, mux := tcpServer(t, net.Config{}, net.TCPConfig{MaxConns: 10, MaxConnsPerIP: 8})
	var held []*stdnet.TCPConn
	for range 8 {
		held = append(held, rawTCP(t, attacker, srv.LocalAddr()))
	}
	eventually(t, "8 connections open", func() (bool, string) {
		st := mux.Stats()
		return st.Open == 8, fmt.Sprintf("%+v", st)
	})
	for i := range 4 {
		refused(t, attacker, srv.LocalAddr(), fmt.Sprintf("connection %d over the per-source cap", 9+i))
	}
	if st := mux.Stats(); st.Closed[net.TCPRefusedPerIP] != 4 || st.Open != 8 {
		t.Fatalf("per-source refusals: %+v", st)
	}
	tcpRoundTrip(t, srv, legit)
	other := rawTCP(t, netip.MustParseAddr("127.0.0.10"), srv.LocalAddr()) // the 10th
	eventually(t, "10 connections open", func() (bool, string) {
		st := mux.Stats()
		return st.Open == 10, fmt.Sprintf("%+v", st)
	})
	refused(t, netip.MustParseAddr("127.0.0.11"), srv.LocalAddr(), "connection over MaxConns")
	if st := mux.Stats(); st.Closed[net.TCPRefusedFull] != 1 {
		t.Fatalf("refusals when full: %+v", st)
	}
	// Closing them frees the places.
	for _, c := range append(held, other) {
		c.Close()
	}
	eventually(t, "held connections gone", func() (bool, string) {
		st := mux.Stats()
		return st.Open == 1 && st.Closed[net.TCPClientClosed] == 9, fmt.Sprintf("%+v", st)
	})
	tcpRoundTrip(t, srv, attacker)
}

// mutedConn drops every datagram its host writes once muted, and reports
// when its reads fail (the server closed the connection).
type mutedConn struct {
	net.PacketConn
	muted    atomic.Bool
	readDone chan error
}

func (m *mutedConn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	if m.muted.Load() {
		return len(b), nil
	}
	return m.PacketConn.WriteTo(b, to)
}

func (m *mutedConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := m.PacketConn.ReadFrom(b)
	if err != nil {
		select {
		case m.readDone <- err:
		default:
		}
	}
	return n, from, err
}

// When the server's link to a TCP client times out, the mux closes the
// client's TCP connection (it is not left to the idle timeout).
func TestTCPLinkTimeoutClosesConnection(t *testing.T) {
	srv, mux := tcpServer(t, net.Config{PingInterval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond}, net.TCPConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := net.DialTCP(ctx, srv.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	mc := &mutedConn{PacketConn: tc, readDone: make(chan error, 1)}
	cli, err := net.NewHost(mc, net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expect(t, cli, net.EventConnected, net.ServerID)
	expect(t, srv, net.EventConnected, cli.ID())
	mc.muted.Store(true)
	if e := expect(t, srv, net.EventDisconnected, cli.ID()); !errors.Is(e.Err, net.ErrTimeout) {
		t.Fatalf("server's link ended with %v, want a timeout", e.Err)
	}
	select {
	case <-mc.readDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the TCP connection of a timed-out link is still open")
	}
	eventually(t, "counted as link gone", func() (bool, string) {
		st := mux.Stats()
		return st.Closed[net.TCPLinkGone] == 1 && st.Open == 0, fmt.Sprintf("%+v", st)
	})
}

// A TCP client kicked by the server learns why: the close frames queued
// before the link's removal reach it before its connection is closed.
func TestTCPKickReachesClient(t *testing.T) {
	srv, mux := tcpServer(t, net.Config{}, net.TCPConfig{})
	for i := range 5 {
		cli := tcpRoundTrip(t, srv, legit)
		if err := srv.Kick(cli.ID(), "bye over tcp"); err != nil {
			t.Fatal(err)
		}
		e := expect(t, cli, net.EventDisconnected, net.ServerID)
		var ce *net.CloseError
		if !errors.As(e.Err, &ce) || !errors.Is(e.Err, net.ErrKicked) || ce.Message != "bye over tcp" {
			t.Fatalf("kick %d: client's link ended with %v", i, e.Err)
		}
		expect(t, srv, net.EventDisconnected, cli.ID())
		cli.Close()
	}
	eventually(t, "connections closed as their links went", func() (bool, string) {
		st := mux.Stats()
		return st.Open == 0 && st.Closed[net.TCPLinkGone]+st.Closed[net.TCPClientClosed] == 5, fmt.Sprintf("%+v", st)
	})
}

// tcpUserServer is a server with a TCP mux whose Authenticate takes the
// credentials for the user ID, holding a session it stops hearing from
// (after 500 ms) suspended for a minute; with a 20 s context for the
// test's dials and the credentials of user "alice".
func tcpUserServer(t *testing.T) (*net.Host, *net.TCPMux, context.Context, net.DialOptions) {
	t.Helper()
	scfg := net.Config{PingInterval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond, ResumeGrace: time.Minute}
	scfg.Authenticate = func(_ context.Context, r *net.AuthRequest) (net.AuthResult, error) {
		return net.AuthResult{User: string(r.Credentials)}, nil
	}
	srv, mux := tcpServer(t, scfg, net.TCPConfig{IdleTimeout: 5 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return srv, mux, ctx, net.DialOptions{Credentials: []byte("alice")}
}

// A TCP client whose session is suspended (its process hung, its
// connection still open) and taken over by a restarted client of the same
// user: the mux closes the old connection as the session passes to the
// new one (TCPLinkGone), rather than leaving it to the idle timeout.
func TestTCPTakenOverSessionClosesItsConnection(t *testing.T) {
	srv, mux, ctx, creds := tcpUserServer(t)
	tc, err := net.DialTCP(ctx, srv.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	mc := &mutedConn{PacketConn: tc, readDone: make(chan error, 1)}
	first, err := net.NewHost(mc, net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := first.DialWith(ctx, srv.LocalAddr(), creds); err != nil {
		t.Fatal(err)
	}
	id := first.ID()
	expect(t, srv, net.EventConnected, id)
	mc.muted.Store(true)
	expect(t, srv, net.EventAway, id)

	tc2, err := net.DialTCP(ctx, srv.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	second, err := net.NewHost(tc2, net.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := second.DialWith(ctx, srv.LocalAddr(), creds); err != nil {
		t.Fatal(err)
	}
	if second.ID() != id {
		t.Fatalf("the restarted client is %v, its session was %v", second.ID(), id)
	}
	if e := expect(t, srv, net.EventBack, id); !errors.Is(e.Err, net.ErrSessionRestarted) {
		t.Fatalf("back: %v", e.Err)
	}
	select {
	case <-mc.readDone:
	case <-ctx.Done():
		t.Fatal("the TCP connection of the session taken over is still open")
	}
	eventually(t, "the old connection counted as link gone, the new one open", func() (bool, string) {
		st := mux.Stats()
		return st.Closed[net.TCPLinkGone] == 1 && st.Open == 1, fmt.Sprintf("%+v", st)
	})
}

// deafConn is a PacketConn that, while cut, neither sends nor receives:
// its datagrams are dropped both ways, its connection stays open.
type deafConn struct {
	net.PacketConn
	cut atomic.Bool
}

func (d *deafConn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	if d.cut.Load() {
		return len(b), nil
	}
	return d.PacketConn.WriteTo(b, to)
}

func (d *deafConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := d.PacketConn.ReadFrom(b)
		if err != nil || !d.cut.Load() {
			return n, from, err
		}
	}
}

// A TCP client (without resume) whose link timed out logs in again over
// the same connection while the server still holds its session suspended:
// the login takes the session over, and the connection it came on stays
// open (the taken-over link's connection is that one: it is not closed).
func TestTCPTakeOverOnTheSameConnectionKeepsIt(t *testing.T) {
	srv, mux, ctx, creds := tcpUserServer(t)
	tc, err := net.DialTCP(ctx, srv.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	dc := &deafConn{PacketConn: tc}
	cli, err := net.NewHost(dc, net.Config{PingInterval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.DialWith(ctx, srv.LocalAddr(), creds); err != nil {
		t.Fatal(err)
	}
	id := cli.ID()
	expect(t, cli, net.EventConnected, net.ServerID)
	expect(t, srv, net.EventConnected, id)
	dc.cut.Store(true)
	expect(t, srv, net.EventAway, id)
	if e := expect(t, cli, net.EventDisconnected, net.ServerID); !errors.Is(e.Err, net.ErrTimeout) {
		t.Fatalf("client's link ended with %v", e.Err)
	}
	dc.cut.Store(false)
	if err := cli.DialWith(ctx, srv.LocalAddr(), creds); err != nil {
		t.Fatalf("login again over the same connection: %v", err)
	}
	if cli.ID() != id {
		t.Fatalf("the client is %v again, its session was %v", cli.ID(), id)
	}
	if e := expect(t, srv, net.EventBack, id); !errors.Is(e.Err, net.ErrSessionRestarted) {
		t.Fatalf("back: %v", e.Err)
	}
	expect(t, cli, net.EventConnected, net.ServerID)
	cli.Send(net.ServerID, net.Reliable, []byte("still here"))
	if e := expect(t, srv, net.EventMessage, id); string(e.Data) != "still here" {
		t.Fatalf("server got %q", e.Data)
	}
	if st := mux.Stats(); st.Open != 1 || st.Closed[net.TCPLinkGone] != 0 {
		t.Fatalf("the connection of the session taken over was closed: %+v", st)
	}
}
