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
// HTTP body at most MaxBody bytes), never a panic. A datagram that is not
// the answer awaited (short, too long, another version or opcode, another
// request's nonce or port, an error result, not from the gateway) is
// dropped and counted by reason (Stats.Drops, DropReason); the attempt
// waits on for the real answer, except after a refusal, which ends it. An
// attempt that heard only bad answers times out with an error that says
// what the last one was.
//
// A gateway that restarts loses its mappings. Every PCP and NAT-PMP answer
// carries the gateway's epoch (seconds since its state began): an epoch
// that went back, or advanced by clearly less than the time that passed
// here, shows the loss (RFC 6887 §8.5, RFC 6886 §3.6; Stats.GatewayResets).
// The answers that carry an epoch are those to the Mapper's own mapping
// requests, which make the mapping again on a gateway that lost it, so an
// epoch that went back in a renewal's answer needs no second request; one
// that went back in an announcement brings the renewal below.
// A restarting gateway also multicasts an announcement to 224.0.0.1:5350
// (a PCP ANNOUNCE, or NAT-PMP's external address): once it knows its
// gateway, a Mapper listens there (Config.ListenAnnounce, a socket other
// programs may share), takes only announcements from the gateway's port
// 5351, and renews its mapping after a random wait of up to 5 s, instead of
// at half its lifetime (Stats.Announcements, Stats.Remaps; at most one
// such renewal every 5 s). With no mapping in place it asks again at once
// instead of after Config.Retry. Tests: TestAnnouncementRenewsAtOnce,
// TestEpochBackOnRenewalIsCounted, and TestNetlabGatewayRestartRemaps
// (miniupnpd restarted with its state gone: mapped again within the
// random wait).
//
// engine/sync's Client runs a Mapper on its socket by default and offers the
// mapped address to its peers as a candidate (ClientConfig.NoPortMap turns
// it off).
package portmap
