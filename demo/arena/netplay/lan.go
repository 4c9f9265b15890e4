package netplay

import (
	"context"
	"encoding/binary"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/engine/lan"
	"github.com/skein-dev/skein/engine/net"
)

// LANKind is the kind of the arena's LAN beacons.
const LANKind = "skein-arena"

// LANMatch is what an arena beacon says: a match on the match server at
// the beacon's address.
type LANMatch struct {
	Match net.HostID
	Map   string
}

// lanInfo encodes a beacon's Info: the match ID (4 bytes, big-endian) and
// the map's name.
func lanInfo(m LANMatch) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(m.Match))
	return append(b, m.Map[:min(len(m.Map), 32)]...)
}

// ParseLANBeacon reads an arena beacon; ok is false for another kind,
// another protocol version, or a malformed Info.
func ParseLANBeacon(b lan.Beacon) (m LANMatch, ok bool) {
	if b.Kind != LANKind || b.Protocol != proto.Version || len(b.Info) < 4 {
		return m, false
	}
	m.Match = net.HostID(binary.BigEndian.Uint32(b.Info))
	m.Map = CleanName(string(b.Info[4:]))
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
