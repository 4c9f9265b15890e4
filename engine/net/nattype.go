package net

import (
	"fmt"
	stdnet "net"
	"net/netip"
)

// NATType is what kind of network a client is behind, as the server sees
// it (RFC 5780-style checks: see Host.DetectNAT and docs/SEMANTICS.md,
// "NAT type").
type NATType uint8

// NAT types, from the easiest to reach to the hardest.
const (
	// NATUnknown: not checked yet, or the server offers no second address
	// or port to tell the mapping behaviour by.
	NATUnknown NATType = iota
	// NATPublic: no NAT: the address the server sees is the socket's own.
	NATPublic
	// NATEndpointIndependent: a NAT that keeps one public address for the
	// socket whatever the destination ("cone"). Hole punching works
	// against it.
	NATEndpointIndependent
	// NATSymmetric: a NAT that maps each destination to another public
	// port (endpoint-dependent mapping). Plain hole punching fails
	// against another NAT; birthday punching may still get through
	// against an endpoint-independent one.
	NATSymmetric
	// NATUDPBlocked: no UDP reaches the server; the client uses the TCP
	// fallback and every peer is relayed.
	NATUDPBlocked
	// NumNATTypes is the number of NAT types.
	NumNATTypes
)

var natTypeNames = [NumNATTypes]string{"unknown", "public", "endpoint-independent", "symmetric", "udp-blocked"}

// String returns the type's short name (a metrics label).
func (t NATType) String() string {
	if t < NumNATTypes {
		return natTypeNames[t]
	}
	return fmt.Sprintf("NATType(%d)", uint8(t))
}

// NATBehavior is a NAT's mapping or filtering behaviour (RFC 4787).
type NATBehavior uint8

// NAT behaviours.
const (
	// BehaviorUnknown: not measured (no alternate server address).
	BehaviorUnknown NATBehavior = iota
	// EndpointIndependent: one mapping for every destination (mapping);
	// anyone may send in through it (filtering).
	EndpointIndependent
	// AddressDependent: a mapping per destination IP (mapping); only IPs
	// the client sent to may send in (filtering).
	AddressDependent
	// AddressPortDependent: a mapping per destination address and port
	// (mapping); only the exact addresses the client sent to may send in
	// (filtering).
	AddressPortDependent
	numBehaviors
)

var behaviorNames = [numBehaviors]string{"unknown", "endpoint-independent", "address-dependent", "address-and-port-dependent"}

// String returns the RFC 4787 name of b.
func (b NATBehavior) String() string {
	if b < numBehaviors {
		return behaviorNames[b]
	}
	return fmt.Sprintf("NATBehavior(%d)", uint8(b))
}

// PortMapping says whether the client's router grants port mappings
// (PCP, NAT-PMP or UPnP-IGD). Host.DetectNAT leaves it PortMappingUnknown:
// the port-mapping client fills it in.
type PortMapping uint8

// Port-mapping states.
const (
	// PortMappingUnknown: not asked (or no port-mapping client runs).
	PortMappingUnknown PortMapping = iota
	// PortMappingAvailable: the router granted a mapping.
	PortMappingAvailable
	// PortMappingRefused: the router refused, or none of the protocols
	// answered.
	PortMappingRefused
	numPortMappings
)

var portMappingNames = [numPortMappings]string{"unknown", "available", "refused"}

// String returns "unknown", "available" or "refused".
func (p PortMapping) String() string {
	if p < numPortMappings {
		return portMappingNames[p]
	}
	return fmt.Sprintf("PortMapping(%d)", uint8(p))
}

// NATReport is the result of Host.DetectNAT.
type NATReport struct {
	// Type sums the report up.
	Type NATType
	// Mapping and Filtering are the NAT's behaviours (BehaviorUnknown
	// when the server has no alternate address to check them with).
	Mapping, Filtering NATBehavior
	// Local is the socket's address, Mapped the address the server saw it
	// at (its public address).
	Local, Mapped netip.AddrPort
	// Hairpin: a datagram sent to the client's own public address came
	// back (its NAT hairpins).
	Hairpin bool
	// PortMapping: whether the router grants port mappings.
	PortMapping PortMapping
}

// String describes the report in one line.
func (r NATReport) String() string {
	if r.Type == NATUDPBlocked || r.Type == NATPublic {
		return r.Type.String()
	}
	return fmt.Sprintf("%s (mapping %s, filtering %s, hairpin %v, port mapping %s)", r.Type, r.Mapping, r.Filtering, r.Hairpin, r.PortMapping)
}

// isOwnAddr reports whether mapped is local's socket: the same address,
// or, for a socket bound to every interface, the same port on one of the
// machine's addresses.
func isOwnAddr(local, mapped netip.AddrPort) bool {
	if local == mapped {
		return true
	}
	if !local.Addr().IsUnspecified() || local.Port() != mapped.Port() {
		return false
	}
	addrs, _ := stdnet.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == mapped.Addr().Unmap() {
			return true
		}
	}
	return false
}
