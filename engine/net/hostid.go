package net

import "strconv"

// HostID names a host: the server, a client, or a P2P group. Clients get theirs
// from the server at connect; group IDs are drawn from the same space, so
// "send to X" works for a peer, the server or a whole group.
type HostID uint32

const (
	// NoHost is the zero HostID: nobody.
	NoHost HostID = 0
	// ServerID is the fixed HostID of the server.
	ServerID HostID = 1
	// FirstClientID is the first HostID a server hands out; IDs below it are
	// reserved.
	FirstClientID HostID = 1000
)

// String returns "server", "none" or the number.
func (id HostID) String() string {
	switch id {
	case NoHost:
		return "none"
	case ServerID:
		return "server"
	default: // FirstClientID and every other ID
		return strconv.FormatUint(uint64(id), 10)
	}
}
