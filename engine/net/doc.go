// Package net is Skein's transport: one UDP socket per process, secure links
// over it, a reliable ordered channel and unreliable sequenced channels per
// link, keepalive, disconnect detection and statistics.
//
// A Host owns one socket (any PacketConn: a real UDP socket from ListenUDP,
// or an in-memory one from package vnet in tests). A server is a Host with
// Config.Accept set; a client is a Host that calls Dial. The same client
// socket later carries peer-to-peer links (package sync), so the NAT mapping
// the server observes is the one peers punch to.
//
// # Handshake and security
//
// Dial runs hello → stateless cookie → hello with cookie → welcome. The
// server keeps no state for a source until it echoes a valid cookie, never
// answers with more bytes than it received, and rate-limits handshakes.
// Its cookie reply and its rejects echo the first bytes of the hello's
// ephemeral key, fresh for each Dial (the dial tag): a Dial takes only the
// answers to its own hello, not a late one to an earlier Dial from the
// same socket (DropUnexpected).
//
// The handshake authenticates the server (Noise NX, docs/PROTOCOL.md): a
// server has a long-term X25519 Identity (Config.Identity; LoadIdentity
// keeps it in a file, with a next key for rotation), the welcome names its
// static key, and the link keys mix in X25519(client ephemeral, server
// static), so only the key's holder can send a welcome that opens. A client
// pins keys (Config.ServerKeys) or checks them (Config.VerifyServerKey, the
// hook for remembered keys, operator signatures and connect tokens); any
// other server is a *ServerKeyError (ErrServerKeyMismatch) at Dial and is
// sent nothing after the hello. With neither, the client trusts on first
// use and Host.ServerKey reports the key to show.
//
// # Credentials and users
//
// DialWith sends credentials (a connect token of engine/token, a profile)
// sealed to the server's static key, only after checking that key against
// the client's trust. A server's Config.Authenticate decides on them before
// the client gets a slot, a HostID, a link or an event, on bounded workers
// (or inline, for a cheap check such as a token): it names the user
// (Host.User, Event.User) or refuses with ErrUnauthorized, ErrBanned,
// ErrExpired, ErrAlreadyLoggedIn or ErrAuthUnavailable, which Dial returns
// in a *RejectError. Config.DuplicateLogin keeps one session per user
// (a second login replaces the first, ErrSessionReplaced, or is refused).
// docs/PROTOCOL.md, "Credentials".
//
// # Admission
//
// Before a server takes a link slot or runs X25519 for a hello, admission
// checks, cheapest first: the source's and the conn's handshake rates (over
// them: a rate-limited "busy" reject, which Dial returns as ErrServerBusy),
// links that already exist (a hello never rebuilds or replaces a confirmed
// link), the version and the cookie, a hook where a connect token will be
// required, and capacity: MaxLinks, MaxPending unconfirmed links, and per
// source (an IPv4 address or an IPv6 /64) SourceLinks and SourcePending. A
// link stays unconfirmed until its client's first authenticated datagram
// and is dropped silently after PendingTimeout. HostStats.Admission counts
// every decision. Tests that open many clients from one loopback address
// lift the per-source limits (negative values).
// Client and server agree on keys with X25519 and HKDF-SHA256; every
// datagram after that is sealed with AES-256-GCM (when both ends have AES
// hardware) or ChaCha20-Poly1305, under a per-direction key and a 48-bit
// packet number, and checked against a replay window. A
// HostID is bound to its keys: a datagram that names a sender but does not
// open with that sender's key is dropped and counted (DropBadSeal).
//
// # Channels
//
// Send(to, Reliable, data) rides a KCP stream (kcp-go's core, message mode,
// driven by the host's own timer goroutine: no goroutine per link). Messages
// up to MaxReliable bytes arrive exactly once and in order. A message sent on
// an idle link leaves at once; messages sent while data is in flight share
// segments and datagrams (the stream is length-prefixed messages cut into
// one-segment KCP messages; LinkStats.Flow counts how it moved).
//
// kcp-go is pinned to v5.6.72: leaving at once takes its private flush
// (go:linkname), and the memory budgets read its private receive state
// (reflection). Its public Update holds a message written just after a
// flush for up to 10 ms. kcpcore.go says why and how to upgrade;
// TestKCPGoPinned fails on another version.
//
// Send(to, Unreliable.OnChannel(c), data) sends one sealed datagram: at most
// MaxUnreliable bytes, never fragmented. The receiver drops anything older
// than the newest message it has delivered on that channel.
//
// # Socket I/O
//
// A conn that is also a BatchWriter or BatchReader (ListenUDP's on Linux:
// sendmmsg, recvmmsg, and UDP segmentation offload for runs of equal-sized
// datagrams) moves a flush's datagrams, or the copies a server forwards
// from one relay frame, with one system call, and the reader takes the
// datagrams already waiting, up to 32 per call. A lone datagram still
// leaves and is read at once: batching never waits to fill a batch. Other conns (vnet, TCP) get
// one ReadFrom or WriteTo per datagram; the wire is the same either way.
//
// Each link's datagrams go out through a replaceable Path (direct today; the
// relay through the server in package sync); SetPath never disturbs the
// reliable stream.
//
// # TCP fallback
//
// Where UDP is blocked, a client reaches the server over TCP (DialTCP): the
// same datagrams, framed on the stream. The server serves them with a
// TCPMux given to Host.AddConn. The mux bounds its connections in all and
// per source, closes those that send no hello, stall in a frame or go
// idle (TCPConfig), and closes a connection as soon as the host removes
// its link (the host calls Forget on any conn that implements Forgetter).
// Every refusal and close is counted by reason (TCPMux.Stats).
//
// # Address changes
//
// When a peer's newest datagram comes from a new address (its NAT rebound,
// or it moved), the link's direct path follows only once that address has
// answered a sealed path challenge with an unpredictable token (RFC 9000
// style path validation): a peer holding the link's keys could otherwise
// make its datagrams appear to come from a victim's address and have the
// host send its traffic there. Until the answer, which takes one round trip,
// the link's traffic stays on the validated path, and what goes to the new
// address is at most 3x what came from it; the rest is dropped and counted
// (DropUnvalidated). Challenges, responses and punch probes use a packet
// number space of their own, so the loss estimate counts data only.
//
// # Events
//
// Connected, disconnected (with a reason: ErrTimeout, ErrClosedByPeer,
// ErrKicked, ErrShutdown, ErrClosedLocally, ErrOverBudget) and message
// events wait in a bounded queue until the application takes them with
// FrameMove, Poll or Next, on its own goroutine. When the queue is full
// (Config.EventQueue messages, or Config.EventQueueBytes of their data),
// reliable messages stay in their stream (whose window then slows the
// sender) and unreliable ones are dropped and counted (DropQueueFull,
// DropQueueBytes). A Next with no event
// waiting reads the host's socket itself (the reader baton, baton.go): no
// hand-off between goroutines for an application that calls Next in a
// loop.
//
// # Memory budgets
//
// What a peer can make a host hold is bounded: the KCP receive window (256
// segments) bounds a link's out-of-order and stalled reliable data,
// Config.LinkReceiveBudget its out-of-order data (segments past it are
// refused and counted, DropOverBudget), and Config.HostReceiveBudget what
// all links hold together: past it, the link holding the most is
// disconnected with ErrOverBudget, as is a link sending reliable data past
// the receive window. Datagrams over MaxDatagram are dropped unread
// (DropOversize).
//
// The wire format is documented in docs/PROTOCOL.md.
package net
