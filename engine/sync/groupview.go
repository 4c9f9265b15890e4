package sync

import "github.com/skein-dev/skein/engine/net"

// groupView is a group as the application reads it (Members, GroupHost,
// Custom): its members in join order, its host and its custom field. The
// server publishes an immutable snapshot whenever a group changes
// (Server.publish); a client keeps its own up to date from the
// member-event control messages it gets (Client.control).
type groupView struct {
	members []net.HostID
	host    net.HostID
	custom  []byte
}
