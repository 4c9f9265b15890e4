package net

import (
	"context"
	stdnet "net"
	"net/netip"
)

// DialTCPFrom is DialTCP from the local address from (a client other than
// 127.0.0.1 on loopback, for tests of the per-source limit).
func DialTCPFrom(ctx context.Context, from netip.Addr, addr netip.AddrPort) (PacketConn, error) {
	return dialTCP(ctx, &stdnet.Dialer{LocalAddr: stdnet.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))}, addr)
}
