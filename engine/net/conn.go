package net

import (
	"errors"
	"fmt"
	stdnet "net"
	"net/netip"
	"time"
)

// PacketConn is the datagram socket a Host owns. The real implementation wraps
// a UDP socket (see ListenUDP); tests use the in-memory network of package
// vnet. Addresses are netip.AddrPort so that the hot path never allocates.
//
// ReadFrom blocks until a datagram arrives or the conn is closed, in which case
// it returns an error that satisfies errors.Is(err, net.ErrClosed).
// WriteTo never blocks for long: a full queue drops the datagram (as a kernel
// socket would) and may return nil.
type PacketConn interface {
	ReadFrom(b []byte) (n int, from netip.AddrPort, err error)
	WriteTo(b []byte, to netip.AddrPort) (int, error)
	LocalAddr() netip.AddrPort
	Close() error
}

// Message is one datagram of a batch (BatchWriter, BatchReader).
type Message struct {
	// Buf holds the datagram to write, or the buffer a datagram is read
	// into.
	Buf []byte
	// Addr is where a datagram is written to, or where one came from.
	Addr netip.AddrPort
	// N is the number of bytes written or read.
	N int
	// Truncated reports that a datagram read was longer than Buf: only its
	// first len(Buf) bytes arrived.
	Truncated bool
}

// BatchWriter is implemented by a PacketConn that can write several
// datagrams with one system call (on Linux, the UDP sockets of ListenUDP
// and UDP: sendmmsg). A Host writes through it when a flush or a relay frame
// produces more than one datagram; other conns get one WriteTo per datagram.
//
// WriteBatch writes ms[0], ms[1], ... in order, each to its own Addr, sets
// their N and returns how many were written. When that is less than
// len(ms), err says why ms[n] was not: the caller may skip it and write the
// rest. Like WriteTo it never blocks for long, and after Close it returns
// an error that satisfies errors.Is(err, net.ErrClosed).
type BatchWriter interface {
	WriteBatch(ms []Message) (n int, err error)
}

// BatchReader is implemented by a PacketConn that can read several
// datagrams with one system call (on Linux, the UDP sockets of ListenUDP
// and UDP: recvmmsg). A Host's reader uses it when its conn has it.
//
// ReadBatch blocks until at least one datagram arrives, then fills ms[0],
// ms[1], ... (Buf is read into; N, Addr and Truncated are set) with
// datagrams already waiting, up to len(ms), and returns how many. It never
// waits for more than the first, and may return fewer than are waiting.
// After Close it returns an error that satisfies errors.Is(err,
// net.ErrClosed).
type BatchReader interface {
	ReadBatch(ms []Message) (n int, err error)
}

// SocketBuffer is the receive and send buffer size requested for real UDP
// sockets (4 MiB): with the OS default, bursts of KCP traffic overflow the
// buffer and turn into retransmissions (kcp-go's 1 KiB throughput fell from
// about 50k to 17k messages/s on this project's machine with the default).
const SocketBuffer = 4 << 20

// ListenUDP opens a UDP socket on addr (for example "127.0.0.1:0" or ":7777")
// with SocketBuffer-sized kernel buffers and returns it as a PacketConn.
func ListenUDP(addr string) (PacketConn, error) {
	ua, err := stdnet.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("skein/net: resolve %q: %w", addr, err)
	}
	c, err := stdnet.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("skein/net: listen %q: %w", addr, err)
	}
	_ = c.SetReadBuffer(SocketBuffer)
	_ = c.SetWriteBuffer(SocketBuffer)
	return UDP(c), nil
}

// UDP adapts a *net.UDPConn to PacketConn. On Linux the result is also a
// BatchReader and a BatchWriter (recvmmsg and sendmmsg).
func UDP(c *stdnet.UDPConn) PacketConn {
	u := &udpConn{c: c}
	u.sys.init(c)
	return u
}

type udpConn struct {
	c   *stdnet.UDPConn
	sys sysConn // what batched I/O needs (nothing off Linux)
}

func (u *udpConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, ap, err := u.c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, ap, err
	}
	return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func (u *udpConn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	return u.c.WriteToUDPAddrPort(b, to)
}

func (u *udpConn) LocalAddr() netip.AddrPort {
	if ua, ok := u.c.LocalAddr().(*stdnet.UDPAddr); ok {
		ap := ua.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func (u *udpConn) Close() error { return u.c.Close() }

// SetReadDeadline makes a blocked read (ReadFrom, ReadBatch) return
// os.ErrDeadlineExceeded at t: the host's reader baton (baton.go)
// interrupts a read this way.
func (u *udpConn) SetReadDeadline(t time.Time) error { return u.c.SetReadDeadline(t) }

// isClosed reports whether err means the conn was closed.
func isClosed(err error) bool { return errors.Is(err, stdnet.ErrClosed) }
