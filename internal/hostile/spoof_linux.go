//go:build linux

package hostile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// ErrNotPermitted: raw sockets need root (CAP_NET_RAW).
var ErrNotPermitted = errors.New("hostile: raw sockets need root")

// RawSender sends UDP datagrams with any IPv4 source address through a
// raw socket (IPPROTO_RAW implies IP_HDRINCL): the attacker's tool for
// spoofing a victim's address on loopback.
type RawSender struct{ fd int }

// NewRawSender opens the raw socket. It fails with ErrNotPermitted when
// not root.
func NewRawSender() (*RawSender, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("%w: %w", ErrNotPermitted, err)
		}
		return nil, fmt.Errorf("hostile: raw socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostile: IP_HDRINCL: %w", err)
	}
	return &RawSender{fd: fd}, nil
}

// SpoofedUDP builds an IPv4+UDP packet from src to dst (IPv4 only). The
// kernel fills in the IP checksum and ID; the UDP checksum is computed.
func SpoofedUDP(src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return nil, fmt.Errorf("hostile: spoofing needs IPv4 addresses: %w", ErrMalformed)
	}
	if len(payload) > 65507 {
		return nil, fmt.Errorf("hostile: %d bytes: %w", len(payload), ErrMalformed)
	}
	s, d := src.Addr().As4(), dst.Addr().As4()
	ulen := 8 + len(payload)
	p := make([]byte, 20+ulen)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(20+ulen))
	p[8] = 64
	p[9] = unix.IPPROTO_UDP
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	u := p[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(ulen))
	copy(u[8:], payload)
	// UDP checksum over the pseudo-header and the datagram.
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(s[:])
	add(d[:])
	sum += unix.IPPROTO_UDP + uint32(ulen)
	add(u)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return p, nil
}

// Send sends payload as a UDP datagram from src to dst.
func (r *RawSender) Send(src, dst netip.AddrPort, payload []byte) error {
	p, err := SpoofedUDP(src, dst, payload)
	if err != nil {
		return err
	}
	if err := unix.Sendto(r.fd, p, 0, &unix.SockaddrInet4{Addr: dst.Addr().As4()}); err != nil {
		return fmt.Errorf("hostile: raw send: %w", err)
	}
	return nil
}

// Close closes the raw socket.
func (r *RawSender) Close() error { return unix.Close(r.fd) }
