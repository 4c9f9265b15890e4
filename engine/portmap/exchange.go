package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// maxDatagram bounds an answer on port 5351: RFC 6887 caps PCP messages
// at 1100 bytes, and NAT-PMP's are smaller. A longer datagram is malformed.
const maxDatagram = 1100

// errNotMine marks an answer that belongs to another request (another nonce,
// opcode or port): it is dropped, and the exchange waits on.
var errNotMine = errors.New("skein/portmap: answer to another request")

// udpSession is a connected UDP socket to the gateway's port 5351.
type udpSession struct {
	conn  net.Conn
	local netip.Addr // this host's address toward the gateway
	env   *env
}

func dialGateway(ctx context.Context, cfg Config, e *env, gw netip.Addr, port uint16) (*udpSession, error) {
	c, err := cfg.DialContext(ctx, "udp4", netip.AddrPortFrom(gw, port).String())
	if err != nil {
		return nil, fmt.Errorf("skein/portmap: socket to gateway %v: %w", gw, err)
	}
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("skein/portmap: socket to gateway: local address %v is not UDP", c.LocalAddr())
	}
	ip, _ := netip.AddrFromSlice(la.IP)
	return &udpSession{conn: c, local: ip.Unmap(), env: e}, nil
}

// exchange sends req and retransmits it (250 ms, then doubling, as RFC 6887
// and RFC 6886 advise) until accept takes an answer or ctx ends. An answer
// accept refuses with a drop (a *dropError) is counted in Stats.Drops and
// the exchange waits on, except for a refusal (DropResult), which ends it;
// any other error ends it too. When ctx ends, the error is ErrTimeout and
// also carries the last drop's error (a gateway that answered only
// garbage: errors.Is(err, ErrMalformed)).
func (s *udpSession) exchange(ctx context.Context, req []byte, accept func([]byte) error) error {
	buf := make([]byte, maxDatagram+1)
	wait := 250 * time.Millisecond
	var last error
	for {
		if _, err := s.conn.Write(req); err != nil {
			return fmt.Errorf("skein/portmap: send to gateway: %w", err)
		}
		s.env.st.requests.Add(1)
		next := time.Now().Add(wait)
		if dl, ok := ctx.Deadline(); ok && dl.Before(next) {
			next = dl
		}
		wait *= 2
		for {
			if err := ctx.Err(); err != nil {
				if last != nil {
					return fmt.Errorf("%w: %w (last answer dropped: %w)", ErrTimeout, err, last)
				}
				return fmt.Errorf("%w: %w", ErrTimeout, err)
			}
			_ = s.conn.SetReadDeadline(next)
			n, err := s.conn.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break // retransmit
			}
			if err != nil {
				// An ICMP port unreachable shows up here on a connected
				// socket: nothing listens on the gateway's port.
				return fmt.Errorf("%w: %w", ErrTimeout, err)
			}
			if n > maxDatagram {
				err = droppedf(DropLong, "%w: %d-byte datagram", ErrMalformed, n)
			} else {
				err = accept(buf[:n])
			}
			if err == nil {
				s.env.st.answers.Add(1)
				return nil
			}
			reason, ok := s.env.st.countDrop(err)
			if !ok || reason == DropResult {
				return err
			}
			s.env.log.Debug("answer dropped", "reason", reason, "error", err)
			last = err
		}
	}
}

func (s *udpSession) close() { s.conn.Close() }
