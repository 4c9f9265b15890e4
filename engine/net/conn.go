package net

import (
	"errors"
	"fmt"
	stdnet "net"
	"net/netip"
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

// SocketBuffer is the receive and send buffer size requested for real UDP
// sockets (4 MiB): with the OS default, bursts of KCP traffic overflow the
// buffer and turn into retransmissions (see shared/BASELINES.md).
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

// UDP adapts a *net.UDPConn to PacketConn.
func UDP(c *stdnet.UDPConn) PacketConn { return udpConn{c} }

type udpConn struct{ c *stdnet.UDPConn }

func (u udpConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, ap, err := u.c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, ap, err
	}
	return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func (u udpConn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	return u.c.WriteToUDPAddrPort(b, to)
}

func (u udpConn) LocalAddr() netip.AddrPort {
	if ua, ok := u.c.LocalAddr().(*stdnet.UDPAddr); ok {
		ap := ua.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func (u udpConn) Close() error { return u.c.Close() }

// isClosed reports whether err means the conn was closed.
func isClosed(err error) bool { return errors.Is(err, stdnet.ErrClosed) }
