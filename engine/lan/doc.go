// Package lan finds games on the local network: an Advertiser announces
// one (a name, the kind of game, players and capacity, a protocol version
// and the port to dial) with a small UDP beacon every second, and a Browser
// keeps the live list of what it hears, each entry expiring a few seconds
// after its last beacon.
//
// Advertising is off unless a game calls Advertise, and a Browser only
// lists: it never connects anywhere on its own. Beacons are untrusted
// input: at most MaxBeaconSize bytes, versioned, with magic bytes; a
// datagram that does not decode is dropped and counted (BrowserStats), and
// the address to dial is always the beacon's own source address, so a
// beacon cannot send players to a third machine.
//
// # Where beacons go
//
// Beacons go to a well-known port (DefaultPort unless configured) by
// directed IPv4 broadcast on every broadcast-capable interface and by
// multicast to DefaultGroup (239.255.77.77, TTL 1) on every
// multicast-capable interface: routers forward neither, so a game is seen
// on its LAN segment and nowhere else. Several browsers on one machine
// share the port (SO_REUSEADDR and SO_REUSEPORT), and each gets a copy of
// every beacon.
//
// On one machine, Linux gives the loopback interface the broadcast address
// 127.255.255.255: a datagram sent there (with SO_BROADCAST) reaches every
// socket bound to the port on 0.0.0.0, and a socket may also join a
// multicast group on lo although lo has no MULTICAST flag (the sender then
// sets IP_MULTICAST_IF to lo). ScopeLoopback uses both and nothing else;
// tests use it. The limited broadcast 255.255.255.255 is not used: it
// follows the default route (one interface only, and "network is
// unreachable" without one). Other systems are expected to behave alike
// for directed broadcast and multicast; loopback broadcast is Linux only
// (macOS's lo0 has none), where multicast on the loopback interface
// remains.
//
// # Wire format
//
// See the comment on FormatVersion's declaration in beacon.go: magic
// "SKLN", a format version byte, flags, instance, protocol, players,
// capacity and port, then three length-prefixed fields (kind, name, info).
package lan
