package net

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	stdnet "net"
	"net/netip"
	"sync"
	"time"
)

// TCP fallback. Where a network blocks UDP altogether, a client reaches the
// server over TCP: the same datagrams (same handshake, same seal), each
// framed on the stream as a 2-byte big-endian length and the bytes. Peers
// cannot be reached over TCP, so every peer of such a client is relayed.

// maxTCPQueue bounds the datagrams waiting to be written to one TCP peer;
// beyond it they are dropped, as a full socket buffer would (the reliable
// stream retransmits, and the server's slow-client policy applies).
const maxTCPQueue = 256

// tcpPrefix is the private IPv6 prefix of the addresses a TCPMux gives its
// clients, so they can never be mistaken for a UDP source address.
var tcpPrefix = [6]byte{0xfd, 0x73, 0x6b, 0x6e, 0x74, 0x63} // fd73:6b6e:7463::/48, "skntc"

// IsTCPAddr reports whether a is an address a TCPMux gave one of its
// connections (not a UDP address peers could try).
func IsTCPAddr(a netip.AddrPort) bool {
	b := a.Addr().As16()
	return a.Addr().Is6() && [6]byte(b[:6]) == tcpPrefix
}

func writeFrame(w *bufio.Writer, b []byte) error {
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], uint16(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// readFrame reads one framed datagram into buf; a frame larger than
// MaxDatagram is a protocol error.
func readFrame(r *bufio.Reader, buf []byte) (int, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > MaxDatagram || n > len(buf) {
		return 0, fmt.Errorf("skein/net: TCP frame of %d bytes", n)
	}
	_, err := io.ReadFull(r, buf[:n])
	return n, err
}

// tcpPacket is a datagram read from a TCP peer.
type tcpPacket struct {
	from netip.AddrPort
	b    []byte
}

// TCPMux is the server side of the TCP fallback: it accepts TCP connections
// and presents them as one PacketConn, each connection under an address of
// its own (in fd73:6b6e:7463::/48). Give it to Host.AddConn. It has one
// reader goroutine per connection (TCP clients are the exception) and one
// writer each.
type TCPMux struct {
	ln       stdnet.Listener
	maxConns int
	in       chan tcpPacket
	done     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns map[netip.AddrPort]*tcpPeer
	next  uint32
}

type tcpPeer struct {
	c   stdnet.Conn
	out chan []byte
}

// NewTCPMux starts accepting on ln; maxConns bounds the connections.
func NewTCPMux(ln stdnet.Listener, maxConns int) *TCPMux {
	m := &TCPMux{ln: ln, maxConns: maxConns, in: make(chan tcpPacket, 1024), done: make(chan struct{}), conns: make(map[netip.AddrPort]*tcpPeer)}
	m.wg.Add(1)
	go m.accept()
	return m
}

func (m *TCPMux) accept() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		if len(m.conns) >= m.maxConns {
			m.mu.Unlock()
			c.Close()
			continue
		}
		m.next++
		var a [16]byte
		copy(a[:], tcpPrefix[:])
		binary.BigEndian.PutUint32(a[12:], m.next)
		addr := netip.AddrPortFrom(netip.AddrFrom16(a), uint16(m.next))
		p := &tcpPeer{c: c, out: make(chan []byte, maxTCPQueue)}
		m.conns[addr] = p
		m.mu.Unlock()
		m.wg.Add(2)
		go m.read(addr, p)
		go m.write(p)
	}
}

func (m *TCPMux) read(addr netip.AddrPort, p *tcpPeer) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		delete(m.conns, addr)
		m.mu.Unlock()
		close(p.out) // ends the writer, which closes the conn
	}()
	r := bufio.NewReader(p.c)
	for {
		buf := make([]byte, MaxDatagram)
		n, err := readFrame(r, buf)
		if err != nil {
			return
		}
		select {
		case m.in <- tcpPacket{from: addr, b: buf[:n]}:
		case <-m.done:
			return
		}
	}
}

func (m *TCPMux) write(p *tcpPeer) {
	defer m.wg.Done()
	defer p.c.Close()
	w := bufio.NewWriter(p.c)
	for b := range p.out {
		p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if writeFrame(w, b) != nil {
			p.c.Close() // the reader sees the error and cleans up
			continue
		}
		if len(p.out) == 0 && w.Flush() != nil {
			p.c.Close()
		}
	}
}

// ReadFrom returns the next datagram from any TCP client.
func (m *TCPMux) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	select {
	case p := <-m.in:
		return copy(b, p.b), p.from, nil
	case <-m.done:
		return 0, netip.AddrPort{}, stdnet.ErrClosed
	}
}

// WriteTo queues b for the TCP client at to; a full queue drops it.
func (m *TCPMux) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	m.mu.Lock()
	p := m.conns[to]
	m.mu.Unlock()
	if p == nil {
		return 0, fmt.Errorf("skein/net: no TCP client at %v", to)
	}
	select {
	case p.out <- append([]byte(nil), b...):
	default:
	}
	return len(b), nil
}

// LocalAddr returns the listener's address.
func (m *TCPMux) LocalAddr() netip.AddrPort {
	if a, ok := m.ln.Addr().(*stdnet.TCPAddr); ok {
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (m *TCPMux) Close() error {
	m.once.Do(func() {
		close(m.done)
		m.ln.Close()
		m.mu.Lock()
		for _, p := range m.conns {
			p.c.Close()
		}
		m.mu.Unlock()
	})
	m.wg.Wait()
	return nil
}

// tcpClient is the client side: a PacketConn over one TCP connection to the
// server. Datagrams for anyone else are dropped (peers are relayed).
type tcpClient struct {
	c      stdnet.Conn
	server netip.AddrPort
	r      *bufio.Reader
	mu     sync.Mutex
	w      *bufio.Writer
}

// DialTCP connects to the server's TCP fallback at addr (the same address
// as its UDP socket) and returns it as a PacketConn for NewHost.
func DialTCP(ctx context.Context, addr netip.AddrPort) (PacketConn, error) {
	var d stdnet.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("skein/net: TCP to %v: %w", addr, err)
	}
	return &tcpClient{c: c, server: addr, r: bufio.NewReader(c), w: bufio.NewWriter(c)}, nil
}

func (t *tcpClient) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, err := readFrame(t.r, b)
	if err != nil {
		// The stream is gone or out of step: either way it is over.
		t.c.Close()
		return 0, netip.AddrPort{}, fmt.Errorf("%w: %w", stdnet.ErrClosed, err)
	}
	return n, t.server, nil
}

func (t *tcpClient) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	if to != t.server {
		return len(b), nil // only the server is reachable over TCP
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := writeFrame(t.w, b); err != nil {
		return 0, err
	}
	return len(b), t.w.Flush()
}

func (t *tcpClient) LocalAddr() netip.AddrPort {
	if a, ok := t.c.LocalAddr().(*stdnet.TCPAddr); ok {
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func (t *tcpClient) Close() error { return t.c.Close() }
