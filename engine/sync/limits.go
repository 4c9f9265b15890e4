package sync

import "github.com/skein-dev/skein/engine/net"

// groupHeaderSize is what Send puts before a message to a group: the tag
// and the group's ID (groupHead).
const groupHeaderSize = 1 + 4

var _ [groupHeaderSize]byte = groupHead(0) // the size and the header agree

// MaxUnreliable is the largest unreliable message Client.Send and
// Server.Send take for any destination (a host or a group): engine/net's
// MaxUnreliable less the header Send adds to a group message. A larger one
// fails with net.ErrTooLarge. A game that sizes its datagrams (snapshots,
// say) sizes them to this.
const MaxUnreliable = net.MaxUnreliable - groupHeaderSize
