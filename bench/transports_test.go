package bench

// The four transports measured side by side. Each one builds, for one
// measurement, a client and a server on 127.0.0.1 with 4 MiB socket buffers,
// exchanges a warm-up message (connection set-up is never timed) and returns
// a session. Every session is torn down before the next transport runs, so
// the four never compete for the two cores.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	stdnet "net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/skein-dev/skein/engine/net"
)

// sockBuf is the kernel buffer size of every socket (4 MiB: the most this
// machine allows, and what Skein's own sockets ask for).
const sockBuf = 4 << 20

// recvBufSize is the buffer handed to recv.
const recvBufSize = 64 << 10

// setupTimeout bounds a connect or a warm-up exchange.
const setupTimeout = 5 * time.Second

// session is one client/server pair ready to measure.
type session struct {
	// send sends one message from the client (msg is reused: copy it if
	// kept). It may block for flow control.
	send func(msg []byte) error
	// recv blocks until one message arrives (at the server for a one-way
	// session, back at the client for a ping-pong) and copies it into buf.
	// It returns an error once close has begun.
	recv func(buf []byte) (int, error)
	// close tears the pair down and unblocks recv; it may be called twice.
	close func()
}

// mode is what a session carries.
type mode int

const (
	oneWay        mode = iota // reliable client → server, counted at the server
	pingPongRel               // reliable, echoed by the server
	pingPongUnrel             // unreliable datagrams, echoed by the server
	numModes
)

// transport builds sessions of one library. A nil open for a mode means the
// library has no such mode; a nil dial means it has no handshake.
type transport struct {
	name string
	open func(m mode) (session, error)
	// server starts a server; its dial connects one fresh client (a new
	// socket) and, when count is set, reports the bytes that crossed the
	// client's socket until the connection was usable (counting may slow
	// the handshake: never time a counted dial). The returned func closes
	// the client.
	server func() (dial dialFunc, closeServer func(), err error)
}

// dialFunc connects one fresh client; see transport.server.
type dialFunc func(count bool) (bytes int, closeClient func(), err error)

func listenUDP() (*stdnet.UDPConn, error) {
	c, err := stdnet.ListenUDP("udp4", &stdnet.UDPAddr{IP: stdnet.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("listen 127.0.0.1:0: %w", err)
	}
	if err := errors.Join(c.SetReadBuffer(sockBuf), c.SetWriteBuffer(sockBuf)); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("socket buffers: %w", err)
	}
	return c, nil
}

func addrPort(c *stdnet.UDPConn) netip.AddrPort { return c.LocalAddr().(*stdnet.UDPAddr).AddrPort() }

// echo reads with recv and writes back with send until either fails.
func echo(wg *sync.WaitGroup, recv func([]byte) (int, error), send func([]byte) error) {
	wg.Go(func() {
		buf := make([]byte, recvBufSize)
		for {
			n, err := recv(buf)
			if err != nil {
				return
			}
			if send(buf[:n]) != nil {
				return
			}
		}
	})
}

// warmUp sends one message and waits for it to arrive (or its echo).
func warmUp(s session) error {
	done := make(chan error, 1)
	go func() {
		_, err := s.recv(make([]byte, recvBufSize))
		done <- err
	}()
	if err := s.send(make([]byte, 64)); err != nil {
		s.close()
		return fmt.Errorf("warm-up send: %w", err)
	}
	select {
	case err := <-done:
		if err != nil {
			s.close()
			return fmt.Errorf("warm-up recv: %w", err)
		}
		return nil
	case <-time.After(setupTimeout):
		s.close()
		<-done
		return errors.New("warm-up: nothing arrived")
	}
}

// ---- raw UDP: the limit (no reliability, no encryption) ----

func rawUDP() transport {
	return transport{name: "raw", open: func(m mode) (session, error) {
		cli, err := listenUDP()
		if err != nil {
			return session{}, err
		}
		srv, err := listenUDP()
		if err != nil {
			_ = cli.Close()
			return session{}, err
		}
		to := addrPort(srv)
		send := func(b []byte) error { _, err := cli.WriteToUDPAddrPort(b, to); return err }
		var wg sync.WaitGroup
		s := session{send: send, close: sync.OnceFunc(func() { _ = cli.Close(); _ = srv.Close(); wg.Wait() })}
		if m == oneWay {
			s.recv = func(b []byte) (int, error) { n, _, err := srv.ReadFromUDPAddrPort(b); return n, err }
		} else {
			from := addrPort(cli)
			echo(&wg, func(b []byte) (int, error) { n, _, err := srv.ReadFromUDPAddrPort(b); return n, err },
				func(b []byte) error { _, err := srv.WriteToUDPAddrPort(b, from); return err })
			s.recv = func(b []byte) (int, error) { n, _, err := cli.ReadFromUDPAddrPort(b); return n, err }
		}
		return s, warmUp(s)
	}}
}

// ---- kcp-go v5.6.72 UDPSession, fast profile ----

// fastProfile sets kcp-go's fast profile (message mode, not stream mode:
// kcp-go's default, so no call sets it).
func fastProfile(s *kcp.UDPSession) {
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetWriteDelay(false)
	s.SetMtu(1400)
}

func kcpGo() transport {
	return transport{name: "kcp-go", open: func(m mode) (session, error) {
		if m == pingPongUnrel {
			return session{}, nil
		}
		l, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
		if err != nil {
			return session{}, err
		}
		_ = l.SetReadBuffer(sockBuf)
		_ = l.SetWriteBuffer(sockBuf)
		conn, err := listenUDP()
		if err != nil {
			_ = l.Close()
			return session{}, err
		}
		cli, err := kcp.NewConn4(mrand.Uint32(), l.Addr(), nil, 0, 0, true, conn)
		if err != nil {
			_ = conn.Close()
			_ = l.Close()
			return session{}, err
		}
		fastProfile(cli)
		if _, err := cli.Write(make([]byte, 64)); err != nil {
			_ = cli.Close()
			_ = l.Close()
			return session{}, err
		}
		_ = l.SetDeadline(time.Now().Add(setupTimeout))
		srv, err := l.AcceptKCP()
		if err != nil {
			_ = cli.Close()
			_ = l.Close()
			return session{}, err
		}
		fastProfile(srv)
		if _, err := srv.Read(make([]byte, recvBufSize)); err != nil {
			_ = cli.Close()
			_ = srv.Close()
			_ = l.Close()
			return session{}, err
		}
		var wg sync.WaitGroup
		s := session{
			send: func(b []byte) error { _, err := cli.Write(b); return err },
			// Listener first: a datagram reaching it after the server
			// session closed would make it queue a new session.
			close: sync.OnceFunc(func() {
				_ = l.Close()
				time.Sleep(5 * time.Millisecond)
				_ = srv.Close()
				_ = cli.Close()
				wg.Wait()
			}),
		}
		if m == oneWay {
			s.recv = srv.Read
		} else {
			echo(&wg, srv.Read, func(b []byte) error { _, err := srv.Write(b); return err })
			s.recv = cli.Read
		}
		return s, warmUp(s)
	}}
}

// ---- Skein ----

func skeinHostRecv(h *net.Host) (func([]byte) (int, error), context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	return func(buf []byte) (int, error) {
		for {
			e, err := h.Next(ctx)
			if err != nil {
				return 0, err
			}
			if e.Kind == net.EventMessage {
				return copy(buf, e.Data), nil
			}
		}
	}, cancel
}

// skeinSend waits while the link's send queue is full (flow control).
func skeinSend(h *net.Host, to net.HostID, d net.Delivery) func([]byte) error {
	return func(m []byte) error {
		for {
			err := h.Send(to, d, m)
			if !errors.Is(err, net.ErrSendQueueFull) {
				return err
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
}

func skeinDial(srv netip.AddrPort) (*net.Host, error) {
	cli, err := net.Listen("127.0.0.1:0", net.Config{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := cli.Dial(ctx, srv); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return cli, nil
}

func skeinNet() transport {
	return transport{
		name: "skein",
		open: func(m mode) (session, error) {
			srv, err := net.Listen("127.0.0.1:0", net.Config{Accept: true})
			if err != nil {
				return session{}, err
			}
			cli, err := skeinDial(srv.LocalAddr())
			if err != nil {
				_ = srv.Close()
				return session{}, err
			}
			d := net.Reliable
			if m == pingPongUnrel {
				d = net.Unreliable
			}
			var wg sync.WaitGroup
			srvRecv, stopSrv := skeinHostRecv(srv)
			cliRecv, stopCli := skeinHostRecv(cli)
			s := session{send: skeinSend(cli, net.ServerID, d), close: sync.OnceFunc(func() {
				stopSrv()
				stopCli()
				wg.Wait()
				_ = cli.Close()
				_ = srv.Close()
			})}
			if m == oneWay {
				s.recv = srvRecv
			} else {
				echo(&wg, srvRecv, skeinSend(srv, cli.ID(), d))
				s.recv = cliRecv
			}
			return s, warmUp(s)
		},
		server: func() (dialFunc, func(), error) {
			srv, err := net.Listen("127.0.0.1:0", net.Config{Accept: true})
			if err != nil {
				return nil, nil, err
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { // drain the server's connect and disconnect events
				for {
					if _, err := srv.Next(ctx); err != nil {
						return
					}
				}
			})
			dial := func(bool) (int, func(), error) { // the host counts its traffic anyway
				cli, err := skeinDial(srv.LocalAddr())
				if err != nil {
					return 0, nil, err
				}
				t := cli.Stats().Traffic
				return int(t.BytesIn + t.BytesOut), func() { _ = cli.Close() }, nil
			}
			return dial, func() { cancel(); wg.Wait(); _ = srv.Close() }, nil
		},
	}
}

// ---- quic-go: a stream for reliable messages, DATAGRAM frames ----

var (
	tlsOnce sync.Once
	tlsCert tls.Certificate
	errTLS  error
)

// serverTLS is a self-signed ECDSA P-256 certificate made once per run.
func serverTLS() (*tls.Config, error) {
	tlsOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			errTLS = err
			return
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			errTLS = err
			return
		}
		tlsCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	if errTLS != nil {
		return nil, errTLS
	}
	return &tls.Config{Certificates: []tls.Certificate{tlsCert}, NextProtos: []string{"skein-bench"}}, nil
}

var clientTLS = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"skein-bench"}} //nolint:gosec // a benchmark against its own self-signed server

var quicConfig = &quic.Config{EnableDatagrams: true, MaxIdleTimeout: 30 * time.Second}

// countingConn counts the bytes its socket sends and receives. It hides
// the *net.UDPConn (quic-go would otherwise use its batch and GSO methods,
// which the count would miss), so it is used only to count, never to time.
type countingConn struct {
	stdnet.PacketConn
	n atomic.Int64
}

func (c *countingConn) ReadFrom(b []byte) (int, stdnet.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(b)
	c.n.Add(int64(n))
	return n, a, err
}

func (c *countingConn) WriteTo(b []byte, a stdnet.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, a)
	c.n.Add(int64(n))
	return n, err
}

type quicServer struct {
	tr  *quic.Transport
	ln  *quic.Listener
	udp *stdnet.UDPConn
}

func newQUICServer() (*quicServer, error) {
	conf, err := serverTLS()
	if err != nil {
		return nil, err
	}
	udp, err := listenUDP()
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(conf, quicConfig)
	if err != nil {
		_ = udp.Close()
		return nil, err
	}
	return &quicServer{tr: tr, ln: ln, udp: udp}, nil
}

func (s *quicServer) close() {
	_ = s.ln.Close()
	_ = s.tr.Close()
	_ = s.udp.Close()
}

// quicDial connects a fresh client socket to srv; pc may wrap the socket
// (to count bytes).
func quicDial(srv stdnet.Addr, pc stdnet.PacketConn) (*quic.Transport, *quic.Conn, error) {
	tr := &quic.Transport{Conn: pc}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	c, err := tr.Dial(ctx, srv, clientTLS, quicConfig)
	if err != nil {
		_ = tr.Close()
		return nil, nil, err
	}
	return tr, c, nil
}

// fixedReader reads messages of the size of its buffer from a stream: a
// stream has no message boundaries, and every message in a run has one size.
func fixedReader(st io.Reader, size int) func([]byte) (int, error) {
	return func(b []byte) (int, error) { return io.ReadFull(st, b[:size]) }
}

func quicGo(size int) transport {
	return transport{
		name: "quic-go",
		open: func(m mode) (session, error) {
			srv, err := newQUICServer()
			if err != nil {
				return session{}, err
			}
			udp, err := listenUDP()
			if err != nil {
				srv.close()
				return session{}, err
			}
			tr, cli, err := quicDial(srv.udp.LocalAddr(), udp)
			if err != nil {
				_ = udp.Close()
				srv.close()
				return session{}, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
			defer cancel()
			sc, err := srv.ln.Accept(ctx)
			if err != nil {
				_ = tr.Close()
				_ = udp.Close()
				srv.close()
				return session{}, err
			}
			var wg sync.WaitGroup
			closeAll := sync.OnceFunc(func() {
				_ = cli.CloseWithError(0, "")
				_ = sc.CloseWithError(0, "")
				_ = tr.Close()
				_ = udp.Close()
				srv.close()
				wg.Wait()
			})
			if m == pingPongUnrel {
				bg := context.Background()
				recvFrom := func(c *quic.Conn) func([]byte) (int, error) {
					return func(b []byte) (int, error) {
						d, err := c.ReceiveDatagram(bg)
						return copy(b, d), err
					}
				}
				echo(&wg, recvFrom(sc), sc.SendDatagram)
				s := session{send: cli.SendDatagram, recv: recvFrom(cli), close: closeAll}
				return s, warmUp(s)
			}
			st, err := cli.OpenStreamSync(ctx)
			if err != nil {
				closeAll()
				return session{}, err
			}
			// The server sees the stream once data arrives: the warm-up
			// message (size bytes, so the fixed-size reader stays aligned).
			if _, err := st.Write(make([]byte, size)); err != nil {
				closeAll()
				return session{}, err
			}
			sst, err := sc.AcceptStream(ctx)
			if err != nil {
				closeAll()
				return session{}, err
			}
			if _, err := io.ReadFull(sst, make([]byte, size)); err != nil {
				closeAll()
				return session{}, err
			}
			s := session{send: func(b []byte) error { _, err := st.Write(b); return err }, close: closeAll}
			if m == oneWay {
				s.recv = fixedReader(sst, size)
				return s, nil
			}
			echo(&wg, fixedReader(sst, size), func(b []byte) error { _, err := sst.Write(b); return err })
			s.recv = fixedReader(st, size)
			return s, warmUp(s)
		},
		server: func() (dialFunc, func(), error) {
			srv, err := newQUICServer()
			if err != nil {
				return nil, nil, err
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { // accept and keep each connection until its client closes it
				for {
					c, err := srv.ln.Accept(ctx)
					if err != nil {
						return
					}
					wg.Go(func() {
						select {
						case <-c.Context().Done():
						case <-ctx.Done():
							_ = c.CloseWithError(0, "")
						}
					})
				}
			})
			dial := func(count bool) (int, func(), error) {
				udp, err := listenUDP()
				if err != nil {
					return 0, nil, err
				}
				var pc stdnet.PacketConn = udp
				cc := &countingConn{PacketConn: udp}
				if count {
					pc = cc
				}
				tr, c, err := quicDial(srv.udp.LocalAddr(), pc)
				if err != nil {
					_ = udp.Close()
					return 0, nil, err
				}
				return int(cc.n.Load()), func() { _ = c.CloseWithError(0, ""); _ = tr.Close(); _ = udp.Close() }, nil
			}
			return dial, func() { cancel(); wg.Wait(); srv.close() }, nil
		},
	}
}
