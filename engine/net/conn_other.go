//go:build !linux

package net

import stdnet "net"

// sysConn is empty off Linux: udpConn has no batch methods there, so a Host
// reads and writes one datagram per call.
type sysConn struct{}

func (*sysConn) init(*stdnet.UDPConn) {}
