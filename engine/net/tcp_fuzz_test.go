package net

import (
	"encoding/binary"
	"errors"
	stdnet "net"
	"testing"
	"time"
)

// pipeListener hands a TCPMux the server ends of in-memory pipes.
type pipeListener struct {
	conns chan stdnet.Conn
	done  chan struct{}
}

func (l *pipeListener) Accept() (stdnet.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, stdnet.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *pipeListener) Addr() stdnet.Addr { return &stdnet.TCPAddr{} }

// FuzzTCPMuxStream feeds a TCPMux connection arbitrary bytes: it must
// deliver exactly the well-formed frames before the first bad length or
// the end, then close the connection for the right reason, never panic or
// hang.
func FuzzTCPMuxStream(f *testing.F) {
	frame := func(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }
	hl := appendHello(nil, hello{Version: ProtocolVersion, Cookie: make([]byte, cookieSize)})
	data := appendDataHeader(nil, dataHeader{From: FirstClientID, PN: 7})
	data = append(data, make([]byte, 40)...)
	f.Add(frame(hl))
	f.Add(append(frame(hl), frame(data)...))
	f.Add(frame(data))                                                      // data before any hello
	f.Add(append(frame(hl), 0, 0))                                          // then an empty frame
	f.Add(append(frame(hl), 0x04, 0xb1))                                    // then 1201 bytes announced
	f.Add(append(frame(hl), frame(data)[:20]...))                           // then half a frame
	f.Add(append(frame(hl), frame([]byte{kindCookie, 0})...))               // then a server's kind
	f.Add(frame(append([]byte{kindHello}, make([]byte, MaxDatagram-1)...))) // the largest
	f.Add([]byte{0})                                                        // half a header
	f.Fuzz(func(t *testing.T, stream []byte) {
		// What the mux must deliver, and why it must close.
		var want [][]byte
		why := TCPClientClosed
		for rest := stream; len(rest) >= 2; {
			n := int(binary.BigEndian.Uint16(rest))
			if n == 0 || n > MaxDatagram {
				why = TCPBadFrame
				break
			}
			if len(rest) < 2+n {
				break
			}
			if k := rest[2]; k != kindHello && (k != kindData || len(want) == 0) {
				why = TCPBadFrame // a hello first, then hellos and data
				break
			}
			want = append(want, rest[2:2+n])
			rest = rest[2+n:]
		}

		ln := &pipeListener{conns: make(chan stdnet.Conn, 1), done: make(chan struct{})}
		m := NewTCPMuxConfig(ln, TCPConfig{FirstFrameTimeout: 5 * time.Second, FrameTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second})
		defer m.Close()
		cli, srv := stdnet.Pipe()
		defer cli.Close()
		ln.conns <- srv
		go func() {
			cli.Write(stream) // fails once the mux closes its end
			cli.Close()
		}()
		buf := make([]byte, 64<<10)
		for i, w := range want {
			n, _, err := m.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != string(w) {
				t.Fatalf("datagram %d: got %d bytes, want %d", i, n, len(w))
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := m.Stats()
			if st.Open == 0 && st.Accepted == 1 {
				if st.Closed[why] != 1 {
					t.Fatalf("closed for the wrong reason: %+v, want %v", st, why)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("connection not closed: %+v", st)
			}
			time.Sleep(time.Millisecond)
		}
		select {
		case p := <-m.in:
			t.Fatalf("an extra datagram of %d bytes", len(p.b))
		default:
		}
		if err := m.Close(); err != nil && !errors.Is(err, stdnet.ErrClosed) {
			t.Fatal(err)
		}
	})
}
