package net

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
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

// TCPConfig configures a TCPMux. The zero value is the defaults documented
// on each field.
type TCPConfig struct {
	// Logger receives the mux's logs under the name "tcp". Nil: no logs.
	Logger hclog.Logger
	// MaxConns bounds the open connections; more are refused at accept
	// (TCPRefusedFull). Zero means DefaultMaxLinks (4096).
	MaxConns int
	// MaxConnsPerIP bounds the open connections from one source: an IPv4
	// address, or an IPv6 /64 (one subscriber's usual allocation). More are
	// refused at accept (TCPRefusedPerIP). Zero means 16.
	MaxConnsPerIP int
	// FirstFrameTimeout: a new connection that has not delivered one
	// complete frame this long after it was accepted is closed
	// (TCPFirstFrameTimeout). Zero means 5 s.
	FirstFrameTimeout time.Duration
	// FrameTimeout: once the first byte of a frame has arrived, the frame
	// must be complete within this, or the connection is closed
	// (TCPFrameTimeout: a half-sent frame holds nothing for long). Zero
	// means 5 s.
	FrameTimeout time.Duration
	// IdleTimeout: a connection that delivers no complete frame for this
	// long is closed (TCPIdleTimeout). A live link pings every
	// Config.PingInterval, and a link that times out closes its connection
	// at once (Forget), so this only catches connections without a link.
	// Zero means 30 s.
	IdleTimeout time.Duration
}

func (c TCPConfig) withDefaults() TCPConfig {
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxLinks
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = 16
	}
	if c.FirstFrameTimeout <= 0 {
		c.FirstFrameTimeout = 5 * time.Second
	}
	if c.FrameTimeout <= 0 {
		c.FrameTimeout = 5 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// TCPCloseReason says why a TCPMux refused or closed a connection.
type TCPCloseReason int

const (
	// TCPRefusedFull: refused at accept, MaxConns were open.
	TCPRefusedFull TCPCloseReason = iota
	// TCPRefusedPerIP: refused at accept, MaxConnsPerIP were open from the
	// same source.
	TCPRefusedPerIP
	// TCPFirstFrameTimeout: no complete frame within FirstFrameTimeout of
	// accept.
	TCPFirstFrameTimeout
	// TCPFrameTimeout: a frame started and did not complete within
	// FrameTimeout.
	TCPFrameTimeout
	// TCPIdleTimeout: no complete frame for IdleTimeout.
	TCPIdleTimeout
	// TCPBadFrame: a frame length of 0 or above MaxDatagram, or a datagram
	// no client sends (the first must be a hello, the others hellos or
	// data datagrams).
	TCPBadFrame
	// TCPLinkGone: the host removed the link over this connection (timeout,
	// close, kick) and told the mux (Forget).
	TCPLinkGone
	// TCPClientClosed: the client closed or reset the connection.
	TCPClientClosed
	// TCPWriteFailed: a write to the client failed or did not finish within
	// 5 s.
	TCPWriteFailed
	// TCPShutdown: the mux was closed.
	TCPShutdown
	// NumTCPCloseReasons is the number of close reasons.
	NumTCPCloseReasons
)

var tcpCloseNames = [NumTCPCloseReasons]string{"refused_full", "refused_per_ip", "first_frame_timeout", "frame_timeout", "idle_timeout", "bad_frame", "link_gone", "client_closed", "write_failed", "shutdown"}

func (r TCPCloseReason) String() string {
	if r >= 0 && r < NumTCPCloseReasons {
		return tcpCloseNames[r]
	}
	return "unknown"
}

// TCPStats is a snapshot of a TCPMux's counters. Accepted equals Open plus
// the closes of every reason but the two refusals.
type TCPStats struct {
	// Open is the number of connections open now.
	Open int
	// Accepted counts the connections accepted (not refused).
	Accepted uint64
	// Closed counts refused and closed connections by reason.
	Closed [NumTCPCloseReasons]uint64
	// AcceptErrors counts failed accepts (such as running out of file
	// descriptors); the mux backs off and keeps accepting.
	AcceptErrors uint64
}

// Forgetter is implemented by a PacketConn that keeps state for each remote
// address, such as TCPMux (a connection each). When a Host removes a link
// whose path is addr on that conn, and no other link uses addr, it calls
// Forget(addr): the conn can drop what it holds for addr.
type Forgetter interface {
	Forget(addr netip.AddrPort)
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
// writer each. It bounds the connections (in all and per source), closes
// those that stall or idle (TCPConfig), and closes a connection when the
// host removes its link (Forget).
type TCPMux struct {
	ln   stdnet.Listener
	cfg  TCPConfig
	log  hclog.Logger
	in   chan tcpPacket
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	accepted     atomic.Uint64
	acceptErrors atomic.Uint64
	closed       [NumTCPCloseReasons]atomic.Uint64

	mu    sync.Mutex
	conns map[netip.AddrPort]*tcpPeer
	perIP map[netip.Prefix]int
	next  uint32
}

type tcpPeer struct {
	c      stdnet.Conn
	out    chan []byte
	source netip.Prefix // the MaxConnsPerIP key
	// forget is closed (once) when the host removed the connection's
	// link: the writer sends what is queued (the close frames), then
	// closes the connection.
	forget     chan struct{}
	forgetOnce sync.Once
	// reason is the first TCPCloseReason decided for the connection, plus
	// one (0: none yet).
	reason atomic.Int32
}

// closeFor closes the connection for r unless a reason was decided before.
func (p *tcpPeer) closeFor(r TCPCloseReason) {
	p.reason.CompareAndSwap(0, int32(r)+1)
	p.c.Close()
}

// NewTCPMux starts accepting on ln with at most maxConns connections and
// the defaults of TCPConfig otherwise.
func NewTCPMux(ln stdnet.Listener, maxConns int) *TCPMux {
	return NewTCPMuxConfig(ln, TCPConfig{MaxConns: maxConns})
}

// NewTCPMuxConfig starts accepting on ln as cfg says.
func NewTCPMuxConfig(ln stdnet.Listener, cfg TCPConfig) *TCPMux {
	cfg = cfg.withDefaults()
	m := &TCPMux{
		ln: ln, cfg: cfg, log: cfg.Logger.Named("tcp"),
		in: make(chan tcpPacket, 1024), done: make(chan struct{}),
		conns: make(map[netip.AddrPort]*tcpPeer), perIP: make(map[netip.Prefix]int),
	}
	m.wg.Add(1)
	go m.accept()
	return m
}

// sourceOf is the MaxConnsPerIP key of a remote address: the IPv4 address,
// or the IPv6 /64.
func sourceOf(a stdnet.Addr) netip.Prefix {
	ta, ok := a.(*stdnet.TCPAddr)
	if !ok {
		return netip.Prefix{}
	}
	ip := ta.AddrPort().Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

func (m *TCPMux) accept() {
	defer m.wg.Done()
	var backoff time.Duration
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			if errors.Is(err, stdnet.ErrClosed) {
				return
			}
			// Out of file descriptors or the like: wait and go on
			// serving (returning would end the TCP fallback for good).
			m.acceptErrors.Add(1)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			m.log.Warn("accept failed", "error", err, "retry_in", backoff)
			select {
			case <-m.done:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		src := sourceOf(c.RemoteAddr())
		m.mu.Lock()
		select {
		case <-m.done: // Close has already closed the others
			m.mu.Unlock()
			c.Close()
			return
		default:
		}
		refused := NumTCPCloseReasons
		switch {
		case len(m.conns) >= m.cfg.MaxConns:
			refused = TCPRefusedFull
		case m.perIP[src] >= m.cfg.MaxConnsPerIP:
			refused = TCPRefusedPerIP
		}
		if refused != NumTCPCloseReasons {
			m.closed[refused].Add(1)
			m.mu.Unlock()
			if tc, ok := c.(*stdnet.TCPConn); ok {
				// A reset: no TIME_WAIT kept for a refusal. Without it,
				// an ordinary close.
				if err := tc.SetLinger(0); err != nil {
					m.log.Debug("linger", "error", err)
				}
			}
			c.Close()
			m.log.Debug("connection refused", "remote", c.RemoteAddr().String(), "reason", refused)
			continue
		}
		m.next++
		var a [16]byte
		copy(a[:], tcpPrefix[:])
		binary.BigEndian.PutUint32(a[12:], m.next)
		addr := netip.AddrPortFrom(netip.AddrFrom16(a), uint16(m.next))
		p := &tcpPeer{c: c, out: make(chan []byte, maxTCPQueue), source: src, forget: make(chan struct{})}
		m.conns[addr] = p
		m.perIP[src]++
		m.accepted.Add(1)
		m.mu.Unlock()
		m.wg.Add(2)
		go m.read(addr, p, time.Now())
		go m.write(p)
	}
}

// read reads p's frames until the connection ends, then removes it and
// counts why it ended. The deadlines: the next frame must be complete
// within FirstFrameTimeout of accept (IdleTimeout of the previous frame
// later on), and within FrameTimeout of its first byte.
func (m *TCPMux) read(addr netip.AddrPort, p *tcpPeer, accepted time.Time) {
	defer m.wg.Done()
	reason := TCPClientClosed
	defer func() {
		p.reason.CompareAndSwap(0, int32(reason)+1)
		r := TCPCloseReason(p.reason.Load() - 1)
		m.mu.Lock()
		delete(m.conns, addr)
		if m.perIP[p.source]--; m.perIP[p.source] <= 0 {
			delete(m.perIP, p.source)
		}
		// Closed under m.mu: WriteTo sends only to a connection it finds
		// in m.conns, under m.mu too.
		close(p.out) // ends the writer, which closes the conn
		// Counted under m.mu too, so that Stats never sees a connection
		// gone from Open and not yet in Closed.
		m.closed[r].Add(1)
		m.mu.Unlock()
		m.log.Debug("connection closed", "remote", p.c.RemoteAddr().String(), "addr", addr, "reason", r)
	}()
	r := bufio.NewReader(p.c) // 4096 bytes: a whole frame fits
	last, window, idle := accepted, m.cfg.FirstFrameTimeout, TCPFirstFrameTimeout
	for {
		idleAt := last.Add(window)
		if r.Buffered() == 0 {
			// Only a closed conn refuses a deadline (or, for net.Pipe, one
			// whose peer closed): the read below then fails at once or
			// returns what is buffered, and cannot wait without one.
			_ = p.c.SetReadDeadline(idleAt)
			if _, err := r.Peek(1); err != nil {
				reason = readCloseReason(err, idle)
				return
			}
		}
		// A frame has started.
		deadline, late := idleAt, idle
		if at := time.Now().Add(m.cfg.FrameTimeout); at.Before(idleAt) {
			deadline, late = at, TCPFrameTimeout
		}
		need := 2
		if r.Buffered() >= 2 {
			hdr, _ := r.Peek(2)
			need += int(binary.BigEndian.Uint16(hdr))
		}
		if r.Buffered() < need {
			_ = p.c.SetReadDeadline(deadline) // an error: see above
		}
		hdr, err := r.Peek(2)
		if err != nil {
			reason = readCloseReason(err, late)
			return
		}
		n := int(binary.BigEndian.Uint16(hdr))
		if n == 0 || n > MaxDatagram {
			reason = TCPBadFrame
			return
		}
		if _, err := r.Discard(2); err != nil { // cannot fail: Peek(2) buffered them
			reason = readCloseReason(err, late)
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			reason = readCloseReason(err, late)
			return
		}
		// A client sends hellos and data datagrams, a hello first.
		if buf[0] != kindHello && (buf[0] != kindData || idle == TCPFirstFrameTimeout) {
			reason = TCPBadFrame
			return
		}
		select {
		case m.in <- tcpPacket{from: addr, b: buf}:
		case <-m.done:
			reason = TCPShutdown
			return
		}
		last, window, idle = time.Now(), m.cfg.IdleTimeout, TCPIdleTimeout
	}
}

// readCloseReason is why a read that failed with err ends its connection:
// late when a deadline passed, TCPClientClosed otherwise (when the mux
// closed the connection itself, the reason it decided first stands).
func readCloseReason(err error, late TCPCloseReason) TCPCloseReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return late
	}
	return TCPClientClosed
}

// write writes p's queued datagrams until the reader ends (it closes
// p.out). A failed write closes the connection (the reader sees it and
// cleans up); what is queued after that is discarded.
func (m *TCPMux) write(p *tcpPeer) {
	defer m.wg.Done()
	defer p.c.Close()
	w := bufio.NewWriter(p.c)
	failed := false
	send := func(b []byte, flush bool) {
		if failed {
			return
		}
		if p.c.SetWriteDeadline(time.Now().Add(5*time.Second)) != nil ||
			writeFrame(w, b) != nil || (flush && w.Flush() != nil) {
			failed = true
			p.closeFor(TCPWriteFailed)
		}
	}
	for {
		select {
		case b, ok := <-p.out:
			if !ok {
				return
			}
			send(b, len(p.out) == 0)
		case <-p.forget:
			// The link is gone: send what it queued last (its close
			// frames), then close.
			for drained := false; !drained; {
				select {
				case b, ok := <-p.out:
					if !ok {
						return
					}
					send(b, false)
				default:
					drained = true
				}
			}
			if !failed {
				w.Flush()
			}
			p.closeFor(TCPLinkGone)
			for range p.out { // until the reader ends
			}
			return
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
	buf := append([]byte(nil), b...)
	// The send (which never blocks) is under m.mu so that the connection's
	// reader cannot close p.out in between: a reply to a client that just
	// hung up is dropped, not a panic.
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.conns[to]
	if p == nil {
		return 0, fmt.Errorf("skein/net: no TCP client at %v", to)
	}
	select {
	case p.out <- buf:
	default:
	}
	return len(b), nil
}

// Forget closes the connection at addr (TCPLinkGone) once the datagrams
// queued for it are written (up to 5 s): the Host calls it when it removes
// the link over that connection, after queuing its close frames.
func (m *TCPMux) Forget(addr netip.AddrPort) {
	m.mu.Lock()
	p := m.conns[addr]
	m.mu.Unlock()
	if p != nil {
		p.reason.CompareAndSwap(0, int32(TCPLinkGone)+1)
		p.forgetOnce.Do(func() { close(p.forget) })
	}
}

// Stats returns a snapshot of the mux's counters.
func (m *TCPMux) Stats() TCPStats {
	// Under m.mu, as the counters change with m.conns: Accepted always
	// equals Open plus the closes in one snapshot.
	m.mu.Lock()
	defer m.mu.Unlock()
	s := TCPStats{Open: len(m.conns)}
	s.Accepted = m.accepted.Load()
	s.AcceptErrors = m.acceptErrors.Load()
	for i := range m.closed {
		s.Closed[i] = m.closed[i].Load()
	}
	return s
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
			p.closeFor(TCPShutdown)
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
	return dialTCP(ctx, new(stdnet.Dialer), addr)
}

func dialTCP(ctx context.Context, d *stdnet.Dialer, addr netip.AddrPort) (PacketConn, error) {
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
	if err := t.c.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return 0, err
	}
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
