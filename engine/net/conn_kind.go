package net

// IsUDPSocket reports whether c is a real UDP socket (from ListenUDP or UDP),
// not an in-process network (vnet) or the TCP fallback: only a real socket
// has a port a home router can map (engine/portmap). A conn that wraps
// another (such as engine/net/impair's) says what it wraps with an
// Unwrap() PacketConn method, and is judged by that.
func IsUDPSocket(c PacketConn) bool {
	for range 8 { // wrappers nest a few deep at most
		switch x := c.(type) {
		case *udpConn:
			return true
		case interface{ Unwrap() PacketConn }:
			c = x.Unwrap()
		default:
			return false
		}
	}
	return false
}
