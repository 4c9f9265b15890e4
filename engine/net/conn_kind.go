package net

// IsUDPSocket reports whether c is a real UDP socket (from ListenUDP or UDP),
// not an in-process network (vnet) or the TCP fallback: only a real socket
// has a port a home router can map (engine/portmap).
func IsUDPSocket(c PacketConn) bool {
	_, ok := c.(*udpConn)
	return ok
}
