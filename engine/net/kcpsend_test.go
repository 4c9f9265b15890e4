package net

import (
	"encoding/binary"
	"testing"

	kcp "github.com/xtaci/kcp-go/v5"
)

// TestKCPSendLayout checks that kcpSend finds kcp-go's send buffer and
// that marking it makes the next full flush resend exactly the segments
// sent and not acknowledged, at once (see the top of kcpcore.go).
func TestKCPSendLayout(t *testing.T) {
	if !kcpSend.ok {
		t.Fatal("kcp-go's send buffer (snd_buf, segment xmit/fastack/acked) is not where kcpsend.go looks: a failover waits for retransmission timeouts")
	}
	var out [][]byte
	sender := newKCP(func(b []byte, n int) { out = append(out, append([]byte(nil), b[:n]...)) })
	var acks [][]byte
	receiver := newKCP(func(b []byte, n int) { acks = append(acks, append([]byte(nil), b[:n]...)) })

	if n := kcpResendNow(sender); n != 0 {
		t.Fatalf("fresh core: %d segments marked", n)
	}
	// Wrap the ring first: many segments sent and acknowledged.
	for range 40 {
		for range 5 {
			sender.Send([]byte("message"))
		}
		kcpFlush(sender, kcpFlushFull)
		for _, b := range out {
			receiver.Input(b, 0, false)
		}
		out = out[:0]
		kcpFlush(receiver, kcpFlushFull)
		for _, b := range acks {
			sender.Input(b, 0, false)
		}
		acks = acks[:0]
		buf := make([]byte, 64)
		for receiver.Recv(buf) > 0 {
		}
	}
	if w := sender.WaitSnd(); w != 0 {
		t.Fatalf("%d segments still waiting after the warm-up", w)
	}
	// Three segments sent and lost, then two queued but not sent (the
	// window is not flushed after they are queued: kcpResendNow must not
	// count them).
	for range 3 {
		sender.Send([]byte("lost"))
	}
	kcpFlush(sender, kcpFlushFull)
	sent := countSegs(out)
	out = out[:0]
	if sent != 3 {
		t.Fatalf("sent %d segments, want 3", sent)
	}
	// A flush now resends nothing: the timeouts have not passed.
	kcpFlush(sender, kcpFlushFull)
	if n := countSegs(out); n != 0 {
		t.Fatalf("a flush before the timeout resent %d segments", n)
	}
	if n := kcpResendNow(sender); n != 3 {
		t.Fatalf("marked %d segments, want 3", n)
	}
	kcpFlush(sender, kcpFlushFull)
	var next uint32 = 1 << 31
	var fc flowCounters
	if n := fc.countOutput(joinSegs(out), &next); n != 3 {
		t.Fatalf("the flush after kcpResendNow resent %d segments, want 3 (%d bytes out)", n, len(joinSegs(out)))
	}
	out = out[:0]
	// Resent once: marked again only by another call.
	kcpFlush(sender, kcpFlushFull)
	if n := countSegs(out); n != 0 {
		t.Fatalf("a second flush resent %d segments", n)
	}
}

func joinSegs(out [][]byte) []byte {
	var all []byte
	for _, b := range out {
		all = append(all, b...)
	}
	return all
}

// countSegs counts the data segments in KCP output.
func countSegs(out [][]byte) int {
	n := 0
	b := joinSegs(out)
	for len(b) >= kcp.IKCP_OVERHEAD {
		if b[4] == kcp.IKCP_CMD_PUSH {
			n++
		}
		l := int(binary.LittleEndian.Uint32(b[20:]))
		if l > len(b)-kcp.IKCP_OVERHEAD {
			break
		}
		b = b[kcp.IKCP_OVERHEAD+l:]
	}
	return n
}
