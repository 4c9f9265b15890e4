package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// streamRig is a receiving link fed by a bare KCP core: whatever KCP
// messages a test sends come out of the link's reliable stream as events.
type streamRig struct {
	h       *Host
	l       *link
	snd     *kcp.KCP
	acks    [][]byte // the receiving core's output, for the sending core
	scratch []Event
}

func newStreamRig(tb testing.TB) *streamRig {
	tb.Helper()
	nw := vnet.New(1)
	tb.Cleanup(func() { nw.Close() })
	c, err := nw.Listen(netip.MustParseAddrPort("10.0.0.1:1"))
	if err != nil {
		tb.Fatal(err)
	}
	h, err := NewHost(c, Config{Accept: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	r := &streamRig{h: h}
	r.reset(tb)
	return r
}

// reset gives the rig a fresh link and sending core.
func (r *streamRig) reset(tb testing.TB) {
	r.l = &link{h: r.h, id: FirstClientID}
	r.acks = nil
	r.l.kcp = newKCP(func(buf []byte, size int) { r.acks = append(r.acks, bytes.Clone(buf[:size])) })
	r.snd = newKCP(func(buf []byte, size int) {
		if r.l.kcp.Input(buf[:size], kcp.IKCP_PACKET_REGULAR, false) < 0 {
			tb.Fatalf("receiving core refused %x", buf[:size])
		}
	})
}

// send gives each chunk to the sending core as one KCP message, and
// flushes it and the acknowledgements until everything is across (the
// window the sending core starts with is smaller than the receive window).
func (r *streamRig) send(chunks ...[]byte) {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	for _, c := range chunks {
		r.snd.Send(c)
	}
	for range 100 {
		kcpFlush(r.snd, kcpFlushFull)
		kcpFlush(r.l.kcp, kcpFlushFull)
		acks := r.acks
		r.acks = nil
		for _, a := range acks {
			r.snd.Input(a, kcp.IKCP_PACKET_REGULAR, false)
		}
		if r.snd.WaitSnd() == 0 {
			return
		}
	}
}

// pump runs the link's delivery and returns its verdict and the messages
// delivered.
func (r *streamRig) pump() (ok bool, got [][]byte) {
	r.l.mu.Lock()
	ok = r.l.pumpLocked(time.Now(), false, &r.scratch)
	if len(r.l.rx)-r.l.rxOff > MaxReliable+maxStreamHeader+kcpMSS {
		panic("reassembly buffer past one message and one segment")
	}
	r.l.mu.Unlock()
	for e, more := r.h.Poll(); more; e, more = r.h.Poll() {
		if e.Kind == EventMessage {
			got = append(got, e.Data)
		}
	}
	return ok, got
}

// streamFrame is one message as the stream carries it.
func streamFrame(msg []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(msg))), msg...)
}

// TestStreamReassembly: messages arrive whole whatever KCP messages cut the
// stream into (several per segment, one across segments, a header split),
// and an empty message is counted, not delivered.
func TestStreamReassembly(t *testing.T) {
	r := newStreamRig(t)
	big := bytes.Repeat([]byte("0123456789"), 500) // 5000 bytes, five segments
	var stream []byte
	want := [][]byte{[]byte("a"), []byte("bc"), big, []byte("d")}
	stream = append(stream, streamFrame(want[0])...)
	stream = append(stream, streamFrame(nil)...) // empty: dropped
	for _, m := range want[1:] {
		stream = append(stream, streamFrame(m)...)
	}
	// Cut it at every 700 bytes and once inside big's two-byte header.
	var chunks [][]byte
	cut := len(streamFrame(want[0])) + 1 + len(streamFrame(want[1])) + 1
	chunks = append(chunks, stream[:cut])
	for rest := stream[cut:]; len(rest) > 0; {
		k := min(len(rest), 700)
		chunks = append(chunks, rest[:k])
		rest = rest[k:]
	}
	r.send(chunks...)
	ok, got := r.pump()
	if !ok {
		t.Fatal("pump refused a well-formed stream")
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("message %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
	if n := r.l.drops.snapshot()[DropMalformed]; n != 1 {
		t.Fatalf("DropMalformed %d, want 1 (the empty message)", n)
	}
	if len(r.l.rx) != 0 {
		t.Fatalf("reassembly buffer holds %d bytes after every message was taken", len(r.l.rx))
	}
}

// TestStreamBroken: a length over MaxReliable, or a KCP message longer than
// one segment (no sender writes either), makes the stream unreadable: the
// messages before it are delivered, then pump reports it.
func TestStreamBroken(t *testing.T) {
	for name, bad := range map[string][][]byte{
		"length over MaxReliable": {binary.AppendUvarint(nil, MaxReliable+1)},
		"overlong length":         {{0xff, 0xff, 0xff, 0xff, 0x01}},
		"message over a segment":  {bytes.Repeat([]byte{1}, kcpMSS+1)},
	} {
		t.Run(name, func(t *testing.T) {
			r := newStreamRig(t)
			r.send(append([][]byte{streamFrame([]byte("ok"))}, bad...)...)
			ok, got := r.pump()
			if ok {
				t.Fatal("pump took a broken stream")
			}
			if len(got) != 1 || string(got[0]) != "ok" {
				t.Fatalf("delivered %q before the break, want [ok]", got)
			}
		})
	}
}

// TestCoalescedSend: messages sent while data is in flight share segments
// (FlowStats), and arrive whole and in order.
func TestCoalescedSend(t *testing.T) {
	p := newFuzzPair(t)
	defer p.close()
	srv, cli := p.srv, p.cli
	const count = 2000
	for i := range count {
		msg := binary.LittleEndian.AppendUint32(make([]byte, 0, 64), uint32(i))
		msg = msg[:64]
		for {
			err := cli.Send(ServerID, Reliable, msg)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrSendQueueFull) {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := 0; i < count; {
		e := next(t, srv)
		if e.Kind != EventMessage {
			continue
		}
		if len(e.Data) != 64 || binary.LittleEndian.Uint32(e.Data) != uint32(i) {
			t.Fatalf("message %d: %d bytes, number %d", i, len(e.Data), binary.LittleEndian.Uint32(e.Data))
		}
		i++
	}
	st, _ := cli.LinkStats(ServerID)
	if st.Flow.MessagesSent != count {
		t.Fatalf("MessagesSent %d, want %d", st.Flow.MessagesSent, count)
	}
	// 2000 messages sent back to back: all but the first few find data in
	// flight, so they share segments (15 or so of 64 bytes fit one).
	if st.Flow.Segments*2 > count {
		t.Fatalf("%d messages took %d segments: not coalesced", count, st.Flow.Segments)
	}
}

// FuzzReliableStream cuts an arbitrary byte stream into KCP messages of
// arbitrary sizes (each size taken from the input) and checks what the
// link delivers against a plain reading of the stream: the same messages,
// empty ones left out; and the verdict "broken" exactly when the stream
// holds a length no sender writes or a KCP message is over one segment.
// Nothing panics and the reassembly buffer stays within one message and
// one segment.
func FuzzReliableStream(f *testing.F) {
	f.Add([]byte{5, 2, 'h', 'i', 0, 1, 'x'})
	f.Add(append([]byte{2, 0x80, 0x08}, bytes.Repeat([]byte{'z'}, 1024)...))
	f.Add([]byte{4, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0})
	f.Add(append([]byte{200}, bytes.Repeat([]byte{1}, 300)...))
	r := newStreamRig(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		// A fresh link per input: a broken stream stays broken.
		r.reset(t)
		// Input: size byte, then that many bytes (times 8 for a size
		// byte over 200, so a chunk can pass a segment), and so on.
		var chunks [][]byte
		var stream []byte
		oversize := false
		segs := 0 // within the window the sending core starts with
		for len(in) > 0 && segs < 100 {
			k := int(in[0])
			if k > 200 {
				k = (k - 200) * 8 * 10
			}
			in = in[1:]
			k = min(k, len(in))
			if k == 0 {
				continue
			}
			chunks = append(chunks, in[:k])
			segs += kcpFragments(k)
			if !oversize && k > kcpMSS {
				oversize = true
			}
			if !oversize {
				stream = append(stream, in[:k]...)
			}
			in = in[k:]
		}
		// The plain reading.
		var want [][]byte
		broken := oversize
		for s := stream; len(s) > 0; {
			n, h := binary.Uvarint(s)
			if h == 0 {
				break // a header cut short
			}
			if h < 0 || h > 3 || n > MaxReliable {
				broken = true
				break
			}
			if uint64(len(s)-h) < n {
				break // incomplete: the rest is still to come
			}
			if n > 0 {
				want = append(want, s[h:h+int(n)])
			}
			s = s[h+int(n):]
		}
		if len(chunks) > 0 {
			r.send(chunks...)
		}
		ok, got := r.pump()
		if ok == broken {
			t.Fatalf("pump ok %v, want broken %v (chunks %d)", ok, broken, len(chunks))
		}
		if len(got) != len(want) {
			t.Fatalf("got %d messages, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("message %d differs", i)
			}
		}
	})
}
