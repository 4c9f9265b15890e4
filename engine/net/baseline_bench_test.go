package net_test

// Baselines for Skein's transport benchmarks, measured in the same run:
//
//	BenchmarkBaselineRawUDP: two *net.UDPConn in one process (the limit).
//	BenchmarkBaselineKCP:    kcp-go v5.6.72's UDPSession with the fast profile
//	                         (what Skein must beat; see issue 2).
//
// Everything runs on 127.0.0.1 with port 0, with 4 MiB kernel buffers on every
// socket (the same buffers Skein's sockets get). The loops themselves live in
// benchutil_test.go.

import (
	"errors"
	"math/rand/v2"
	stdnet "net"
	"net/netip"
	"sync"
	"testing"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// sockBuf is the kernel buffer size requested for every socket (4 MiB).
const sockBuf = 4 << 20

// listenLoopback opens a UDP socket on 127.0.0.1:0 with sockBuf buffers; it is
// closed when the benchmark ends.
func listenLoopback(b *testing.B) *stdnet.UDPConn {
	b.Helper()
	c, err := stdnet.ListenUDP("udp4", &stdnet.UDPAddr{IP: stdnet.IPv4(127, 0, 0, 1)})
	mustNil(b, err, "listen 127.0.0.1:0")
	b.Cleanup(func() { _ = c.Close() })
	mustNil(b, c.SetReadBuffer(sockBuf), "SetReadBuffer")
	mustNil(b, c.SetWriteBuffer(sockBuf), "SetWriteBuffer")
	return c
}

func addrPort(c *stdnet.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*stdnet.UDPAddr).AddrPort()
}

func BenchmarkBaselineRawUDP(b *testing.B) {
	b.Run("pingpong64", func(b *testing.B) {
		checkGoroutines(b)
		client, server := listenLoopback(b), listenLoopback(b)
		to := addrPort(server)

		var wg sync.WaitGroup
		b.Cleanup(wg.Wait) // runs after the sockets are closed (LIFO)
		b.Cleanup(func() { _ = server.Close() })
		wg.Go(func() { // echo
			buf := make([]byte, recvBufSize)
			for {
				n, from, err := server.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if _, err := server.WriteToUDPAddrPort(buf[:n], from); err != nil && errors.Is(err, stdnet.ErrClosed) {
					return
				}
			}
		})

		send := func(m []byte) error { _, err := client.WriteToUDPAddrPort(m, to); return err }
		recv := func(p []byte) (int, error) { n, _, err := client.ReadFromUDPAddrPort(p); return n, err }
		stop := func() { _ = client.Close() }
		mustNil(b, send(payload(64)), "warm-up send")
		_, err := recv(make([]byte, recvBufSize))
		mustNil(b, err, "warm-up recv")

		runPingPong(b, 64, send, recv, stop)
	})

	for _, size := range []int{64, 1024} {
		b.Run(oneWayName(size), func(b *testing.B) {
			checkGoroutines(b)
			client, server := listenLoopback(b), listenLoopback(b)
			to := addrPort(server)
			send := func(m []byte) error { _, err := client.WriteToUDPAddrPort(m, to); return err }
			recv := func(p []byte) (int, error) { n, _, err := server.ReadFromUDPAddrPort(p); return n, err }
			stop := func() { _ = server.SetReadDeadline(time.Unix(1, 0)) }
			runOneWay(b, size, send, recv, stop)
		})
	}
}

func oneWayName(size int) string {
	if size == 64 {
		return "oneway64"
	}
	return "oneway1024"
}

// kcpPair is a client session and the listener's side of it, both
// configured with the fast profile.
type kcpPair struct {
	client, server *kcp.UDPSession
	// closeServer closes the listener, then the server session; it is
	// idempotent.
	closeServer func()
}

// fastProfile applies the baselines' fast KCP profile to s: no delay, 10 ms
// interval, fast resend after 2, no congestion control, 1024-segment
// windows, no write delay, MTU 1400 (message mode, not stream mode:
// kcp-go's default, so no call sets it).
func fastProfile(s *kcp.UDPSession) {
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetWriteDelay(false)
	s.SetMtu(1400)
}

// newKCPPair listens on 127.0.0.1:0, dials it, sends one warm-up message of
// size bytes and accepts the server side (reading the warm-up message), so
// that nothing of the set-up is timed. Everything is closed when b ends.
//
// Close order matters: a datagram reaching the listener after the server
// session was closed makes the listener create (and queue for Accept) a new
// session, whose goroutine nobody ends. So the listener is closed first, then
// the server session, then the client.
//
// The client is created like kcp.DialWithOptions(addr, nil, 0, 0) does it
// (NewConn4 with a random conversation ID on a socket the session owns), but
// on a socket bound to 127.0.0.1:0 instead of the wildcard address that
// DialWithOptions binds.
func newKCPPair(b *testing.B, size int) kcpPair {
	b.Helper()
	l, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	mustNil(b, err, "kcp listen")
	var server *kcp.UDPSession
	closeServer := sync.OnceFunc(func() {
		_ = l.Close()
		// The listener's read loop may still be dispatching a batch read
		// just before Close: let it finish while the session is still known.
		time.Sleep(5 * time.Millisecond)
		if server != nil {
			_ = server.Close()
		}
	})
	b.Cleanup(closeServer)
	mustNil(b, l.SetReadBuffer(sockBuf), "listener SetReadBuffer")
	mustNil(b, l.SetWriteBuffer(sockBuf), "listener SetWriteBuffer")

	conn, err := stdnet.ListenUDP("udp4", &stdnet.UDPAddr{IP: stdnet.IPv4(127, 0, 0, 1)})
	mustNil(b, err, "listen 127.0.0.1:0")
	client, err := kcp.NewConn4(rand.Uint32(), l.Addr(), nil, 0, 0, true, conn)
	if err != nil {
		_ = conn.Close()
		b.Fatalf("kcp client: %v", err)
	}
	// Registered after closeServer, so it runs before it: swap the order.
	closeAll := func() { closeServer(); _ = client.Close() } // closes conn too
	b.Cleanup(closeAll)
	mustNil(b, client.SetReadBuffer(sockBuf), "client SetReadBuffer")
	mustNil(b, client.SetWriteBuffer(sockBuf), "client SetWriteBuffer")
	fastProfile(client)

	_, err = client.Write(payload(size))
	mustNil(b, err, "warm-up write")
	mustNil(b, l.SetDeadline(time.Now().Add(5*time.Second)), "listener deadline")
	server, err = l.AcceptKCP()
	mustNil(b, err, "kcp accept")
	fastProfile(server)
	mustNil(b, server.SetReadDeadline(time.Now().Add(5*time.Second)), "server deadline")
	_, err = server.Read(make([]byte, recvBufSize))
	mustNil(b, err, "warm-up read")
	mustNil(b, server.SetReadDeadline(time.Time{}), "server deadline")
	return kcpPair{client, server, closeServer}
}

func BenchmarkBaselineKCP(b *testing.B) {
	b.Run("pingpong64", func(b *testing.B) {
		checkGoroutines(b)
		var wg sync.WaitGroup
		b.Cleanup(wg.Wait) // after the sessions are closed (LIFO)
		p := newKCPPair(b, 64)
		wg.Go(func() { // echo; ends when the server session is closed
			buf := make([]byte, recvBufSize)
			for {
				n, err := p.server.Read(buf)
				if err != nil {
					return
				}
				if _, err := p.server.Write(buf[:n]); err != nil {
					return
				}
			}
		})
		send := func(m []byte) error { _, err := p.client.Write(m); return err }
		recv := func(buf []byte) (int, error) { return p.client.Read(buf) }
		stop := func() { _ = p.client.Close() }
		runPingPong(b, 64, send, recv, stop)
	})

	for _, size := range []int{64, 1024} {
		b.Run(oneWayName(size), func(b *testing.B) {
			checkGoroutines(b)
			p := newKCPPair(b, size)
			send := func(m []byte) error { _, err := p.client.Write(m); return err }
			recv := func(buf []byte) (int, error) { return p.server.Read(buf) }
			stop := p.closeServer // unblocks Read (a read deadline would not)
			runOneWay(b, size, send, recv, stop)
		})
	}
}
