// Package sync is Skein's group layer: P2P groups created by the server,
// member join and leave events, sending to a peer, the server or a whole
// group, the relay between peers, the group host (authority) with host
// migration, and an estimate of the server's clock.
//
// A Server wraps a listening engine/net Host; a Client wraps a Host that
// dials it. Only the server creates groups and changes their members, and
// peers talk to each other only once the server has put them in a common
// group and handed both the keys of their peer link.
//
// # Member events
//
// The first member of a group gets a join event for itself. When a member
// joins, every existing member gets one join event naming the newcomer, and
// the newcomer gets one join event for each existing member (in join order)
// and then one for itself. Each carries the member, the group, the member
// count including the newcomer, and the group's custom field. When a member
// leaves, every remaining member gets a leave event naming it; the leaver
// gets one leave event for each remaining member and then one naming itself,
// so it can tear down what it kept per member. A client that disconnects
// leaves all its groups.
//
// docs/SEMANTICS.md in the repository states these rules, the group host's
// election and migration, the relay-state events and where Send delivers,
// each with the test that checks it.
//
// # Group sends
//
// Send to a group reaches every other member. An unreliable group message
// goes to each peer reached directly as its own datagram; for the peers on
// the relay (and for all of them over Net.UplinkBudget, or above
// Net.FanoutAbove members) it goes up to the server once and the server
// sends each a copy, which arrives as a relayed message from the sender.
// Reliable group messages ride each peer's own stream, direct or relayed.
//
// # Port mapping
//
// Once connected over UDP, a Client asks its home router for a mapping of
// its socket's port (engine/portmap: PCP, NAT-PMP, then UPnP-IGD), offers
// the mapped public address to its peers as one more candidate (the server
// passes a change on to the peers it already has), renews the mapping and
// deletes it on Close. A peer behind a symmetric NAT, where punching alone
// fails, then reaches the client at that address and the pair goes direct.
// Client.PortMapping reports whether a mapping is in place, which protocol
// made it and its address, or why there is none, with the Mapper's
// counters (Stats: requests, answers, the router's announcements and
// restarts, the datagrams dropped by reason); ClientConfig.NoPortMap
// turns it off and ClientConfig.PortMap configures it. A router that
// restarts and announces it on 224.0.0.1:5350 is asked again within
// seconds, not at the next renewal.
//
// # Hostile input
//
// Every message is checked before it is read: a modified client or peer
// cannot crash a Server or a Client. Malformed messages (empty, an unknown
// tag, a short group header, no payload, a control message that does not
// decode) and well-formed ones their sender may not send (control messages
// from a peer, an application message from a client before it announced
// its addresses) are dropped and counted by reason in Drops; the link stays
// up. docs/PROTOCOL.md lists the messages and the rules.
//
// # Events on the game's goroutine
//
// Each Client and Server has one goroutine that owns its state (groups,
// peers) and serializes changes; the application takes events with
// FrameMove, Poll or Next on its own goroutine. Nothing calls application
// code from a networking goroutine or under a lock. The application's
// queue holds at most EventQueue messages and Net.EventQueueBytes bytes of
// them (16 MiB by default); while it is full the owner goroutine takes no
// more net events and the net host's own bounded queue and the reliable
// streams hold the rest.
package sync
