// Package portmap asks the home router for a UDP port mapping, so that peers
// on the internet can reach a host behind NAT at a fixed public address even
// when the NAT is symmetric (endpoint-dependent mapping), where hole punching
// alone fails.
//
// A Mapper tries, in order and each with a short timeout, PCP (RFC 6887, the
// MAP opcode), NAT-PMP (RFC 6886) and UPnP-IGD (WANIPConnection:2,
// WANIPConnection:1 and WANPPPConnection:1, found by SSDP). The first that
// answers wins. The mapper then renews the mapping at half its lifetime,
// reports the external address and which protocol gave it (Status), and
// deletes the mapping on Close.
//
// The gateway is the default route's gateway (read from /proc/net/route on
// Linux) unless Config.Gateway names one. PCP and NAT-PMP requests go from a
// separate ephemeral UDP socket to the gateway's port 5351: the request names
// the internal port explicitly, so the mapped socket itself (the engine's one
// UDP socket) sends nothing. UPnP is SSDP and HTTP.
//
// Everything a router sends is length-checked and bounded (a PCP or NAT-PMP
// answer is at most one 1100-byte datagram, an SSDP answer one datagram, an
// HTTP body at most MaxBody bytes); anything malformed is an error for that
// attempt, never a panic.
//
// engine/sync's Client runs a Mapper on its socket by default and offers the
// mapped address to its peers as a candidate (ClientConfig.NoPortMap turns
// it off).
package portmap
