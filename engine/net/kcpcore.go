package net

import (
	"encoding/binary"
	_ "unsafe" // for go:linkname

	kcp "github.com/xtaci/kcp-go/v5"
)

// kcpFlush is kcp-go's (*KCP).flush. The KCP core exports Update, which only
// flushes on its interval timer (10 ms at the fastest); a message sent on an
// idle link must leave at once, which kcp-go's own UDPSession does by calling
// flush from inside the package. Pinned to kcp-go v5.6.72 in go.mod;
// TestKCPFlushLinked fails if an upgrade changes it.
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
)

// MaxReliable is the largest reliable message: KCP splits a message into at
// most 255 fragments of one datagram each.
const MaxReliable = 256 << 10

func newKCP(output func(buf []byte, size int)) *kcp.KCP {
	k := kcp.NewKCP(kcpConv, output)
	k.NoDelay(1, kcpInterval, 2, 1)
	k.WndSize(kcpWindow, kcpRecvWindow)
	k.SetMtu(kcpMTU)
	return k
}

// kcpFragments is how many segments a message of n bytes takes.
func kcpFragments(n int) int {
	const mss = kcpMTU - kcp.IKCP_OVERHEAD
	return (n + mss - 1) / mss
}

// countRetransmits walks the KCP segments of one output buffer and counts the
// data segments sent before (sequence number below the highest sent so far).
func countRetransmits(buf []byte, nextSN *uint32) (retrans uint64) {
	for len(buf) >= kcp.IKCP_OVERHEAD {
		cmd := buf[4]
		sn := binary.LittleEndian.Uint32(buf[12:])
		n := int(binary.LittleEndian.Uint32(buf[20:]))
		if cmd == kcp.IKCP_CMD_PUSH {
			if int32(sn-*nextSN) < 0 {
				retrans++
			} else {
				*nextSN = sn + 1
			}
		}
		if n > len(buf)-kcp.IKCP_OVERHEAD {
			break
		}
		buf = buf[kcp.IKCP_OVERHEAD+n:]
	}
	return retrans
}
