package netplay

import (
	"context"
	"encoding/binary"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/engine/lan"
	"github.com/skein-dev/skein/engine/net"
)

// LANKind is the kind of the arena's LAN beacons.
const LANKind = "skein-arena"

// LANMatch is what an arena beacon says: a match on the match server at
// the beacon's address, and that server's key.
type LANMatch struct {
	Match net.HostID
	Map   string
	// Key is the match server's public key (zero: the beacon names none).
	// A player who joins from the LAN list pins it, so the connection
	// goes to the server that announced the match or fails. A beacon is
	// not authenticated: this binds the join to the announcement, it does
	// not prove who sent the announcement.
	Key net.ServerKey
}

// lanInfo encodes a beacon's Info: the match ID (4 bytes, big-endian), the
// map's name (at most 32 bytes) and, if the key is set, a zero byte and
// the server's key (32 bytes).
func lanInfo(m LANMatch) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(m.Match))
	b = append(b, strings.ReplaceAll(m.Map[:min(len(m.Map), 32)], "\x00", "")...)
	if !m.Key.IsZero() {
		b = append(append(b, 0), m.Key[:]...)
	}
	return b
}

// ParseLANBeacon reads an arena beacon; ok is false for another kind,
// another protocol version, or a malformed Info.
func ParseLANBeacon(b lan.Beacon) (m LANMatch, ok bool) {
	if b.Kind != LANKind || b.Protocol != proto.Version || len(b.Info) < 4 {
		return m, false
	}
	m.Match = net.HostID(binary.BigEndian.Uint32(b.Info))
	rest := b.Info[4:]
	if n := len(rest); n >= 33 && rest[n-33] == 0 {
		copy(m.Key[:], rest[n-32:])
		rest = rest[:n-33]
	}
	m.Map = CleanName(string(rest))
	return m, m.Match != net.NoHost
}

// AdvertiseMatch announces a match on the LAN (or, with lan.ScopeLoopback,
// on this machine): name, the players it has and the room it has, and the
// match server's port. Update the player count with UpdateLANPlayers.
func AdvertiseMatch(ctx context.Context, scope lan.Scope, port uint16, name string, m LANMatch, players, capacity int, log hclog.Logger) (*lan.Advertiser, error) {
	return lan.Advertise(ctx, lan.AdvertiserConfig{Scope: scope, Logger: log}, lan.Beacon{
		Kind: LANKind, Name: name, Protocol: proto.Version, Players: uint16(players), Capacity: uint16(capacity), Port: port, Info: lanInfo(m),
	})
}

// UpdateLANPlayers changes the player count a beacon shows. It fails (and
// the beacon keeps its count) when the count makes the beacon invalid.
func UpdateLANPlayers(a *lan.Advertiser, players int) error {
	if a.Beacon().Players == uint16(players) {
		return nil
	}
	return a.Update(func(b *lan.Beacon) { b.Players = uint16(players) })
}
