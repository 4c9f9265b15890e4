package net

import (
	"context"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
	"time"
	"unsafe"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// TestEmptyReliableDropped is the attack of a modified client that puts an
// empty message into its reliable stream (Send refuses one with ErrEmpty, so
// the test crafts the KCP segment itself, as such a client would, and sends
// it sealed on its link). The receiver must not deliver it (the layers above
// read a message's first byte), must count it as malformed on the link and
// the host, and must go on delivering the stream.
func TestEmptyReliableDropped(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", Config{Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := Listen("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	next := func() Event {
		t.Helper()
		e, err := srv.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	if e := next(); e.Kind != EventConnected {
		t.Fatalf("first server event %v, want connected", e.Kind)
	}
	if err := cli.Send(ServerID, Reliable, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Kind != EventMessage || string(e.Data) != "one" {
		t.Fatalf("got %v %q, want message \"one\"", e.Kind, e.Data)
	}
	if err := cli.Send(ServerID, Reliable, []byte{}); err != ErrEmpty {
		t.Fatalf("Send of an empty message: %v, want ErrEmpty", err)
	}
	hostBefore := srv.Stats().Drops[DropMalformed]
	linkStats, _ := srv.LinkStats(cli.ID())
	linkBefore := linkStats.Drops[DropMalformed]

	sendEmptyReliable(t, cli.link(ServerID))

	if err := cli.Send(ServerID, Reliable, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Kind != EventMessage || string(e.Data) != "two" {
		t.Fatalf("after the empty message: got %v %q, want message \"two\"", e.Kind, e.Data)
	}
	if got := srv.Stats().Drops[DropMalformed] - hostBefore; got != 1 {
		t.Errorf("host DropMalformed grew by %d, want 1", got)
	}
	linkStats, _ = srv.LinkStats(cli.ID())
	if got := linkStats.Drops[DropMalformed] - linkBefore; got != 1 {
		t.Errorf("link DropMalformed grew by %d, want 1", got)
	}
}

// sendEmptyReliable sends on l a KCP data segment with no payload, numbered
// as the next one of l's stream, and advances l's KCP past it: what a
// client whose KCP accepted empty messages would send.
func sendEmptyReliable(t *testing.T, l *link) {
	t.Helper()
	l.mu.Lock()
	core := reflect.ValueOf(l.kcp).Elem()
	sndNxt := (*uint32)(unsafe.Pointer(core.FieldByName("snd_nxt").UnsafeAddr()))
	if *sndNxt != l.nextSN {
		l.mu.Unlock()
		t.Fatalf("KCP snd_nxt %d, link nextSN %d: the stream is not idle", *sndNxt, l.nextSN)
	}
	seg := make([]byte, kcp.IKCP_OVERHEAD)
	binary.LittleEndian.PutUint32(seg[0:], kcpConv)
	seg[4] = kcp.IKCP_CMD_PUSH
	seg[5] = 0 // last (only) fragment
	binary.LittleEndian.PutUint16(seg[6:], kcpWindow)
	binary.LittleEndian.PutUint32(seg[8:], uint32(time.Now().UnixMilli()))
	binary.LittleEndian.PutUint32(seg[12:], *sndNxt)
	binary.LittleEndian.PutUint32(seg[16:], uint32(core.FieldByName("rcv_nxt").Uint()))
	binary.LittleEndian.PutUint32(seg[20:], 0) // no data
	l.output(seg, len(seg))
	*sndNxt++
	out, p := l.takeLocked()
	l.mu.Unlock()
	l.writeOut(out, p)
}

// FuzzKCPSegments seals arbitrary KCP segments from a client as a
// modified one would send them, and hands them to the server's receive
// path: it never panics and never delivers an empty message (the layers
// above read a message's first byte).
func FuzzKCPSegments(f *testing.F) {
	seg := func(frg byte, sn uint32, data string) []byte {
		b := make([]byte, kcp.IKCP_OVERHEAD, kcp.IKCP_OVERHEAD+len(data))
		binary.LittleEndian.PutUint32(b[0:], kcpConv)
		b[4] = kcp.IKCP_CMD_PUSH
		b[5] = frg
		binary.LittleEndian.PutUint16(b[6:], kcpWindow)
		binary.LittleEndian.PutUint32(b[12:], sn)
		binary.LittleEndian.PutUint32(b[20:], uint32(len(data)))
		return append(b, data...)
	}
	f.Add(seg(0, 0, ""))
	f.Add(seg(0, 0, "x"))
	f.Add(append(seg(1, 0, ""), seg(0, 1, "")...)) // two empty fragments
	f.Add(append(seg(0, 0, "a"), seg(0, 1, "")...))
	f.Add(append(seg(1, 0, "a"), seg(0, 1, "")...)) // fragments adding up to 1 byte
	// The stream's framing: a message, an empty one, a length cut across
	// two segments, a length over MaxReliable.
	f.Add(append(seg(0, 0, "\x01x"), seg(0, 1, "\x00")...))
	f.Add(append(seg(0, 0, "\x80"), seg(0, 1, "\x01\x02")...))
	f.Add(seg(0, 0, "\x81\x80\x10"))
	nw := vnet.New(1)
	f.Cleanup(func() { nw.Close() })
	srvAddr, cliAddr := netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:1")
	sc, _ := nw.Listen(srvAddr)
	cc, _ := nw.Listen(cliAddr)
	srv, err := NewHost(sc, Config{Accept: true})
	if err != nil {
		f.Fatal(err)
	}
	cli, err := NewHost(cc, Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cli.Close(); srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, srvAddr); err != nil {
		f.Fatal(err)
	}
	l := cli.link(ServerID)
	f.Fuzz(func(t *testing.T, segs []byte) {
		if len(segs) > maxFramesPayload-frameHeader {
			segs = segs[:maxFramesPayload-frameHeader]
		}
		b, pn := l.startDatagram()
		b = l.sealDatagram(appendFrame(b, frameKCP, segs), pn)
		srv.demux(b, cliAddr, time.Now(), new(rxScratch), srv.conn)
		for e, ok := srv.Poll(); ok; e, ok = srv.Poll() {
			if e.Kind == EventMessage && len(e.Data) == 0 {
				t.Fatalf("segments %x: an empty message was delivered", segs)
			}
		}
	})
}
