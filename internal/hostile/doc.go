// Package hostile is an attacker for Skein's tests: a client that speaks
// the wire protocol of docs/PROTOCOL.md itself, written from the document
// and not from engine/net's code, so that it can do what a well-behaved
// engine never does.
//
// It runs the hello/cookie/welcome handshake with X25519 and the project's
// key derivation (or stops after echoing the cookie), with credentials if
// asked (the auth block sealed to the key the cookie reply names), seals
// datagrams with the negotiated AEAD and its own packet numbers, and
// builds any frame:
// KCP segments of any sequence number and length (empty messages,
// out-of-order segments), relay records, fan-out frames, pings. A Client
// keeps a real KCP stream on its server link for lobby calls (through the
// generated server/lobby proxy) and learns its peers' keys from the
// server's PeerAdd control messages, so it can join a match and then
// attack the other members through the relay. Flood sends paced, batched
// datagrams from many source ports and loopback addresses, bounded in
// count and time. RawSender (Linux, root) spoofs a source address on
// loopback with a raw socket.
//
// Only loopback addresses are meant: tests bind 127.0.0.0/8.
package hostile
