package vnet

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMappingTimeout is how long an idle NAT mapping lives when
// NATType.MappingTimeout is zero.
const DefaultMappingTimeout = 30 * time.Second

// firstNATPort is the first public port a NAT hands out.
const firstNATPort = 20000

// Behavior is a NAT's mapping or filtering behaviour (RFC 4787).
type Behavior int

const (
	// EndpointIndependent: one mapping per internal address and port, used
	// for every remote (mapping); any remote may send through it
	// (filtering).
	EndpointIndependent Behavior = iota
	// AddressDependent: one mapping per remote IP address (mapping); only
	// remote addresses the host has sent to may send back (filtering).
	AddressDependent
	// AddressPortDependent: one mapping per remote address and port
	// (mapping, a "symmetric" NAT); only remote address-port pairs the host
	// has sent to may send back (filtering).
	AddressPortDependent
)

// String returns the RFC 4787 name of b.
func (b Behavior) String() string {
	switch b {
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressPortDependent:
		return "address-and-port-dependent"
	}
	return fmt.Sprintf("Behavior(%d)", int(b))
}

// NATType describes a NAT. The zero value is a full-cone NAT (endpoint
// independent mapping and filtering) without hairpinning. Common types:
//
//	full cone:            {Mapping: EndpointIndependent, Filtering: EndpointIndependent}
//	restricted cone:      {Mapping: EndpointIndependent, Filtering: AddressDependent}
//	port-restricted cone: {Mapping: EndpointIndependent, Filtering: AddressPortDependent}
//	symmetric:            {Mapping: AddressPortDependent, Filtering: AddressPortDependent}
type NATType struct {
	// Mapping says when outgoing datagrams share a public port.
	Mapping Behavior
	// Filtering says which remotes may send in through a mapping.
	Filtering Behavior
	// Hairpin lets a host behind the NAT reach another one (or itself)
	// through the NAT's public address; the receiver sees the sender's
	// public mapping as the source.
	Hairpin bool
	// MappingTimeout is how long a mapping (and the permission of each
	// remote to send in) lives after the last outgoing datagram through
	// it; incoming datagrams do not refresh it. 0 means
	// DefaultMappingTimeout; a negative value means forever.
	MappingTimeout time.Duration
	// BlockUDP drops every datagram between the inside and the outside,
	// as a network that allows no UDP at all.
	BlockUDP bool
}

// timeout returns the effective mapping lifetime; 0 means forever.
func (t NATType) timeout() time.Duration {
	switch {
	case t.MappingTimeout == 0:
		return DefaultMappingTimeout
	case t.MappingTimeout < 0:
		return 0
	}
	return t.MappingTimeout
}

// NAT is a network address translator between a private prefix and one public
// address, added with Network.AddNAT.
//
// Hosts listen on addresses inside the prefix. Datagrams between two of them
// go directly (same LAN); datagrams to any other address leave with the
// source rewritten to Public and a mapped port; datagrams to Public come in
// only through a live mapping that the filtering behaviour allows. Private
// addresses are unreachable from outside their prefix. NATs do not nest: a
// NAT's public address must not be inside another NAT's prefix.
type NAT struct {
	t      *natTable
	typ    NATType
	public netip.Addr
	inside netip.Prefix
	next   int                 // next public port to try
	byKey  map[mapKey]*mapping // guarded by t.mu
	byPort map[uint16]*mapping // guarded by t.mu
}

// mapKey selects a mapping: the internal endpoint and, depending on the
// mapping behaviour, nothing, the remote address, or the remote endpoint.
type mapKey struct{ internal, remote netip.AddrPort }

// mapping is one public port of a NAT.
type mapping struct {
	key      mapKey
	external netip.AddrPort
	last     time.Time                    // last outgoing datagram
	remotes  map[netip.AddrPort]time.Time // remotes sent to, and when
}

// natTable holds a Network's NATs.
type natTable struct {
	active atomic.Bool // a NAT exists
	mu     sync.Mutex
	nats   []*NAT
}

// AddNAT adds a NAT of type typ that hides the hosts inside prefix behind the
// public address. The prefix and the public address must not overlap those
// of another NAT, and no conn should listen on the public address.
func (n *Network) AddNAT(typ NATType, public netip.Addr, inside netip.Prefix) (*NAT, error) {
	public, inside = public.Unmap(), inside.Masked()
	if !public.IsValid() || !inside.IsValid() {
		return nil, fmt.Errorf("vnet: AddNAT(%v, %v): invalid address", public, inside)
	}
	if inside.Contains(public) {
		return nil, fmt.Errorf("vnet: AddNAT: public address %v inside %v", public, inside)
	}
	t := &n.nats
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.nats {
		if o.public == public || o.inside.Overlaps(inside) || o.inside.Contains(public) || inside.Contains(o.public) {
			return nil, fmt.Errorf("vnet: AddNAT(%v, %v) overlaps NAT(%v, %v)", public, inside, o.public, o.inside)
		}
	}
	x := &NAT{
		t:      t,
		typ:    typ,
		public: public,
		inside: inside,
		next:   firstNATPort,
		byKey:  make(map[mapKey]*mapping),
		byPort: make(map[uint16]*mapping),
	}
	t.nats = append(t.nats, x)
	t.active.Store(true)
	return x, nil
}

// Public returns the NAT's public address.
func (x *NAT) Public() netip.Addr { return x.public }

// Inside returns the private prefix behind the NAT.
func (x *NAT) Inside() netip.Prefix { return x.inside }

// Type returns the NAT's type.
func (x *NAT) Type() NATType { return x.typ }

// Mappings returns the number of live mappings.
func (x *NAT) Mappings() int {
	x.t.mu.Lock()
	defer x.t.mu.Unlock()
	now := time.Now()
	live := 0
	for _, m := range x.byPort {
		if !x.expired(m.last, now) {
			live++
		}
	}
	return live
}

// Reset forgets every mapping, as a NAT reboot would: established flows stop
// working until they are punched again.
func (x *NAT) Reset() {
	x.t.mu.Lock()
	defer x.t.mu.Unlock()
	clear(x.byKey)
	clear(x.byPort)
}

// route translates p through the NATs; false drops it.
func (t *natTable) route(p *Packet, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	src := t.behind(p.Sender.Addr())
	if src != nil {
		if src.inside.Contains(p.To.Addr()) {
			return true // same LAN
		}
		if src.typ.BlockUDP {
			return false
		}
		ext, ok := src.outbound(p.Sender, p.To, now)
		if !ok {
			return false
		}
		p.From = ext
	}
	for _, dst := range t.nats {
		if dst.public != p.To.Addr() {
			continue
		}
		if (dst == src && !dst.typ.Hairpin) || dst.typ.BlockUDP {
			return false
		}
		internal, ok := dst.inbound(p.From, p.To.Port(), now)
		if !ok {
			return false
		}
		p.To = internal
		return true
	}
	// A private address is unreachable from outside its prefix.
	return t.behind(p.To.Addr()) == nil
}

// behind returns the NAT whose prefix holds a, or nil.
func (t *natTable) behind(a netip.Addr) *NAT {
	for _, x := range t.nats {
		if x.inside.Contains(a) {
			return x
		}
	}
	return nil
}

// expired reports whether something last refreshed at last has timed out.
func (x *NAT) expired(last, now time.Time) bool {
	d := x.typ.timeout()
	return d > 0 && now.Sub(last) > d
}

// outbound returns the public endpoint for a datagram from internal to
// remote, creating or refreshing the mapping. It fails only when every public
// port is taken.
func (x *NAT) outbound(internal, remote netip.AddrPort, now time.Time) (netip.AddrPort, bool) {
	k := mapKey{internal: internal}
	switch x.typ.Mapping {
	case EndpointIndependent:
		// One mapping for every remote: the key has no remote.
	case AddressDependent:
		k.remote = netip.AddrPortFrom(remote.Addr(), 0)
	case AddressPortDependent:
		k.remote = remote
	}
	m := x.byKey[k]
	if m != nil && x.expired(m.last, now) {
		x.drop(m)
		m = nil
	}
	if m == nil {
		port, ok := x.freePort(now)
		if !ok {
			return netip.AddrPort{}, false
		}
		m = &mapping{
			key:      k,
			external: netip.AddrPortFrom(x.public, port),
			remotes:  make(map[netip.AddrPort]time.Time),
		}
		x.byKey[k] = m
		x.byPort[port] = m
	}
	m.last = now
	m.remotes[remote] = now
	return m.external, true
}

// inbound returns the internal endpoint a datagram from remote to public port
// goes to, if a live mapping exists and the filtering behaviour allows it.
func (x *NAT) inbound(remote netip.AddrPort, port uint16, now time.Time) (netip.AddrPort, bool) {
	m := x.byPort[port]
	if m == nil {
		return netip.AddrPort{}, false
	}
	if x.expired(m.last, now) {
		x.drop(m)
		return netip.AddrPort{}, false
	}
	switch x.typ.Filtering {
	case EndpointIndependent:
		// Anyone may send to a live mapping.
	case AddressDependent:
		ok := false
		for r, at := range m.remotes {
			if r.Addr() == remote.Addr() && !x.expired(at, now) {
				ok = true
				break
			}
		}
		if !ok {
			return netip.AddrPort{}, false
		}
	case AddressPortDependent:
		at, ok := m.remotes[remote]
		if !ok || x.expired(at, now) {
			return netip.AddrPort{}, false
		}
	}
	return m.key.internal, true
}

// drop forgets mapping m.
func (x *NAT) drop(m *mapping) {
	delete(x.byKey, m.key)
	delete(x.byPort, m.external.Port())
}

// freePort picks the next unused public port, reclaiming expired mappings on
// the way, deterministically.
func (x *NAT) freePort(now time.Time) (uint16, bool) {
	for range 65536 - firstNATPort {
		p := uint16(x.next)
		x.next++
		if x.next > 65535 {
			x.next = firstNATPort
		}
		m := x.byPort[p]
		if m == nil {
			return p, true
		}
		if x.expired(m.last, now) {
			x.drop(m)
			return p, true
		}
	}
	return 0, false
}
