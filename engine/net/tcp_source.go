package net

import "net/netip"

// SourceAddr returns the source of the TCP peer behind a, an address the
// mux gave one of its connections: its IPv4 address or its IPv6 /64 (the
// key of MaxConnsPerIP too), so that a server's admission counts a TCP
// fallback client against its real source (see SourceAddrer). It reports
// false for an address that names no open connection.
func (m *TCPMux) SourceAddr(a netip.AddrPort) (netip.Addr, bool) {
	m.mu.Lock()
	p := m.conns[a]
	m.mu.Unlock()
	if p == nil || !p.source.IsValid() {
		return netip.Addr{}, false
	}
	return p.source.Addr(), true
}
