package net

import (
	"net/netip"
)

// A Path carries a link's sealed datagrams to the peer: directly over the
// host's socket, or (in engine/sync) wrapped in a relay envelope through the
// server. A link's path can be replaced at any time with Host.SetPath; the
// reliable stream rides on top unchanged, so a switch never resets, loses or
// duplicates a message.
//
// WriteDatagram must not keep b after it returns.
type Path interface {
	WriteDatagram(b []byte) error
	// Relayed reports whether the path goes through the server's relay.
	Relayed() bool
	String() string
}

// DirectPath returns the path that sends straight to addr over the host's
// socket.
func (h *Host) DirectPath(addr netip.AddrPort) Path { return directPath{h.conn, addr} }

type directPath struct {
	conn PacketConn
	addr netip.AddrPort
}

func (p directPath) WriteDatagram(b []byte) error {
	_, err := p.conn.WriteTo(b, p.addr)
	return err
}

func (p directPath) Relayed() bool  { return false }
func (p directPath) String() string { return "direct " + p.addr.String() }
