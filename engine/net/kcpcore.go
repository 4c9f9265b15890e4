package net

// READ THIS BEFORE UPGRADING kcp-go: Skein uses two private parts of it.
//
// Skein drives kcp-go's KCP core (not its UDPSession, which owns its own
// socket, goroutines and framing) from the host's goroutines, and reaches
// three private parts of kcp-go v5.6.72 that the public API does not offer:
//
//   - (*KCP).flush, through go:linkname (kcpFlush below), so that a message
//     leaves the moment it is written. The public Update flushes only once
//     the core's interval (10 ms, the least NoDelay accepts) has run since
//     its last flush, so a message written just after one (every reply of
//     a ping-pong, the next message of a stream) waits for the timer.
//     BenchmarkKCPFlush (kcpcore_test.go) measures both on a reliable
//     64-byte round trip between two cores in memory: 1.6-2.5 us with
//     flush, 10.0-10.1 ms with Update, some 5000 times slower. No public
//     call resets the timer; Input flushes only when an ACK moves the
//     window.
//   - The receive state (rcv_nxt, rcv_wnd, the lengths of rcv_queue and
//     rcv_buf), read through offsets found by reflection (kcpRecv,
//     budget.go) for the receive memory budgets: the public API says
//     nothing about what a core holds.
//   - The send buffer (snd_buf, and each segment's xmit, fastack and
//     acked), found the same way (kcpSend, kcpsend.go): when a peer's
//     direct path fails, kcpResendNow marks every unacknowledged segment
//     for a fast retransmission, so that the relay carries at once what
//     the dead path swallowed instead of after each segment's backed-off
//     timeout.
//
// The guards, all in go test ./engine/net/:
//
//   - TestKCPGoPinned fails as soon as go.mod requires another kcp-go than
//     v5.6.72 (or replaces it), and points here.
//   - TestKCPFlushLinked fails if kcpFlush no longer flushes. A flush that
//     is gone fails the build (the link); a flush whose signature changed
//     still links and corrupts memory, so read the new one before anything.
//   - TestKCPRecvLayout fails if the receive fields are gone, renamed or
//     retyped, or read wrong. The host then still runs with its budgets off
//     except the receive window (kcpRecv.ok false).
//   - TestKCPSendLayout fails if the send buffer's fields are gone or
//     retyped, or if marking them no longer makes the next flush resend.
//     The host then still runs; a failover waits for the timeouts
//     (kcpSend.ok false).
//
// To upgrade: read the new release's (*KCP).flush and the KCP struct's
// receive fields (rcv_queue's ring, rcv_buf's heap), its send buffer and
// its fast retransmission, adjust kcpFlush, findKCPRecvLayout and
// findKCPSendLayout, run the four tests and BenchmarkKCPFlush, then set
// kcpGoVersion in kcpcore_test.go.

import (
	_ "unsafe" // for go:linkname

	kcp "github.com/xtaci/kcp-go/v5"
)

// kcpFlush is kcp-go's (*KCP).flush. The KCP core exports Update, which only
// flushes on its interval timer (10 ms at the fastest); a message sent on an
// idle link must leave at once, which kcp-go's own UDPSession does by calling
// flush from inside the package. Private API: see the top of this file
// (pinned to kcp-go v5.6.72; TestKCPGoPinned and TestKCPFlushLinked guard
// it).
//
//go:linkname kcpFlush github.com/xtaci/kcp-go/v5.(*KCP).flush
func kcpFlush(k *kcp.KCP, ft kcp.FlushType) uint32

// KCP tuning: the "fast" profile (no delay, 10 ms interval, fast resend after
// 2 duplicate ACKs, no congestion window), message mode. The receive window
// is smaller than the send window: it bounds what a peer can make the link
// hold (see budget.go).
const (
	kcpConv     = 0x534b4e31 // "SKN1"; links are told apart by keys, not conv
	kcpInterval = 10
	kcpWindow   = 1024
	// kcpFastResend duplicate acks trigger a fast retransmission (and
	// kcpResendNow sets a segment's count to it).
	kcpFastResend = 2
)

// MaxReliable is the largest reliable message. The stream carries it in
// segments of one datagram each (stream.go), about 240 of them.
const MaxReliable = 256 << 10

func newKCP(output func(buf []byte, size int)) *kcp.KCP {
	k := kcp.NewKCP(kcpConv, output)
	k.NoDelay(1, kcpInterval, kcpFastResend, 1)
	k.WndSize(kcpWindow, kcpRecvWindow)
	k.SetMtu(kcpMTU)
	return k
}

// kcpFragments is how many segments a message of n bytes takes.
func kcpFragments(n int) int {
	const mss = kcpMTU - kcp.IKCP_OVERHEAD
	return (n + mss - 1) / mss
}
