package hostile

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	stdnet "net"
	"net/netip"
	"os"
	stdsync "sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// TestSpeaksTheProtocol checks the hostile client against the real engine:
// its handshake is accepted, its reliable message arrives whole, and the
// server's PeerAdd hands it working peer keys (a relayed datagram sealed
// with them reaches a real client as a message).
func TestSpeaksTheProtocol(t *testing.T) {
	srv, err := sync.ListenServer("127.0.0.1:0", sync.ServerConfig{NoTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := srv.Host().LocalAddr()

	c, err := Dial(ctx, "127.0.0.9:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ID < 1000 {
		t.Fatalf("client ID %d", c.ID)
	}
	if err := c.SendReliable([]byte{TagUser, 'h', 'i'}); err != nil {
		t.Fatal(err)
	}
	got := make(chan sync.Event, 16)
	go func() {
		for {
			e, err := srv.Next(ctx)
			if err != nil {
				return
			}
			got <- e
		}
	}()
	waitMsg := func(from net.HostID, want []byte) {
		t.Helper()
		for {
			select {
			case e := <-got:
				if e.Kind == sync.EventMessage && e.Peer == from && bytes.Equal(e.Data, want) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no message %q from %v", want, from)
			}
		}
	}
	waitMsg(net.HostID(c.ID), []byte("hi"))

	// A real client in a group with the hostile one gets its relayed data.
	legit, err := sync.DialClient(ctx, "127.0.0.10:0", addr, sync.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer legit.Close()
	for e := range got {
		if e.Kind == sync.EventConnected && e.Peer == legit.ID() {
			break
		}
	}
	if _, err := srv.CreateGroup([]net.HostID{net.HostID(c.ID), legit.ID()}, nil); err != nil {
		t.Fatal(err)
	}
	p, err := c.WaitPeer(ctx, uint32(legit.ID()))
	if err != nil {
		t.Fatal(err)
	}
	// The hostile client sends its segment once and never again: wait
	// until the legitimate one has its peer link too (it may get its
	// PeerAdd after the hostile one did), or the segment is dropped as
	// from an unknown peer.
	for {
		if _, ok := legit.Host().LinkStats(net.HostID(c.ID)); ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the legitimate client never linked to the hostile one: %v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	// One message of the stream: its length (3), then its bytes.
	msg := AppendSegment(nil, Segment{Cmd: KCPPush, Wnd: 1024, Data: []byte{3, TagUser, 'y', 'o'}})
	if err := c.SendRelayed(p.ID, c.SealPeer(p, AppendFrame(nil, FrameKCP, msg))); err != nil {
		t.Fatal(err)
	}
	for {
		e, err := legit.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == sync.EventMessage && e.Peer == net.HostID(c.ID) {
			if string(e.Data) != "yo" || !e.Relayed {
				t.Fatalf("relayed message %q relayed=%v", e.Data, e.Relayed)
			}
			break
		}
	}
}

func TestFloodBounded(t *testing.T) {
	sink, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	to := sink.LocalAddr().(interface{ String() string }).String()
	st, err := Flood{
		Target: netip.MustParseAddrPort(to), Sources: SourcePorts("127.0.0.11", 4),
		Count: 500, Duration: 10 * time.Second, Rate: 0,
		Make: func(i int, _ netip.AddrPort, b []byte) []byte { return append(b, byte(i), 1, 2, 3) },
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Datagrams != 500 || st.Bytes != 2000 {
		t.Fatalf("flood sent %+v, want 500 datagrams of 4 bytes", st)
	}
}

func TestSpoofedSource(t *testing.T) {
	r, err := NewRawSender()
	if errors.Is(err, ErrNotPermitted) {
		t.Skipf("raw sockets need root (uid %d): %v", os.Getuid(), err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sink, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	dst := netip.MustParseAddrPort(sink.LocalAddr().String())
	src := netip.MustParseAddrPort("127.0.0.77:4242")
	if err := r.Send(src, dst, []byte("spoofed")); err != nil {
		t.Fatal(err)
	}
	sink.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := sink.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if from != src || string(buf[:n]) != "spoofed" {
		t.Fatalf("got %q from %v, want spoofed from %v", buf[:n], from, src)
	}
}

// TestServerKey: the handshake written from PROTOCOL.md proves the
// server's static key: a client expecting it connects and learns it, a
// client expecting another key is refused by its own check.
func TestServerKey(t *testing.T) {
	id, err := net.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sync.ListenServer("127.0.0.1:0", sync.ServerConfig{NoTCP: true, Net: net.Config{Identity: id}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other, _ := net.NewIdentity()
	key, otherKey := id.Current(), other.Current()
	for _, expect := range [][]byte{nil, key[:], otherKey[:]} {
		c, err := Listen("127.0.0.9:0")
		if err != nil {
			t.Fatal(err)
		}
		hs, _ := NewHandshake(false)
		hs.ServerKey = expect
		if err := hs.GetCookie(ctx, c, srv.Host().LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_, body, err := hs.Finish(ctx, c, srv.Host().LocalAddr())
		c.Close()
		if !bytes.Equal(hs.ServerStatic, key[:]) {
			t.Fatalf("expecting %x: the server proved %x, want %x", expect, hs.ServerStatic, key)
		}
		if bytes.Equal(expect, otherKey[:]) {
			if !errors.Is(err, ErrServerKey) {
				t.Fatalf("expecting another key: %v", err)
			}
			continue
		}
		if err != nil || body.ClientID < 1000 {
			t.Fatalf("expecting %x: %v %v", expect, body, err)
		}
	}
}

func TestParsers(t *testing.T) {
	h := AppendHello(nil, Version, 1, make([]byte, 32), make([]byte, CookieSize))
	if len(h) != HelloSize || h[44] != CookieSize {
		t.Fatalf("hello %d bytes, cookie len %d", len(h), h[44])
	}
	if _, err := ParseWelcome(make([]byte, WelcomeSize)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("welcome of zeros: %v", err)
	}
	fr := AppendFrame(AppendFrame(nil, FramePing, make([]byte, 8)), FrameKCP, []byte{1})
	fs, err := ParseFrames(fr)
	if err != nil || len(fs) != 2 || fs[1].Type != FrameKCP {
		t.Fatalf("frames %v %v", fs, err)
	}
	if _, err := ParseFrames(fr[:len(fr)-1]); err == nil {
		t.Fatal("truncated frames accepted")
	}
}

func FuzzParseWelcome(f *testing.F) {
	w := append([]byte{KindWelcome, CipherChaCha}, make([]byte, WelcomeSize-2)...)
	f.Add(w)
	f.Add([]byte{KindWelcome})
	f.Add([]byte{KindCookie, 2, 0})
	f.Add([]byte{KindReject, 3, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if w, err := ParseWelcome(b); err == nil {
			_, _ = w.Open(Keys{Cipher: w.Cipher})
		}
		_, _ = ParseCookie(b)
		_, _, _, _ = ParseCookieKey(b)
		_, _, _ = ParseReject(b)
		_, _, _ = ParseDataHeader(b)
	})
}

func FuzzParseFrames(f *testing.F) {
	f.Add(AppendFrame(AppendFrame(nil, FramePing, make([]byte, 8)), FrameKCP, AppendSegment(nil, Segment{Cmd: KCPPush, Data: []byte{0, 1}})))
	f.Add([]byte{FrameKCP, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := ParseFrames(b)
		n := 0
		for _, fr := range fs {
			n += FrameHeaderSize + len(fr.Body)
		}
		if err == nil && n != len(b) {
			t.Fatalf("frames cover %d of %d bytes", n, len(b))
		}
	})
}

func FuzzParsePeerAdd(f *testing.F) {
	m := append([]byte{TagControl, opPeerAdd, 0xe8, 3, 0, 0}, make([]byte, 64)...)
	m = append(m, CipherChaCha, 1)
	m = append(m, make([]byte, 18)...)
	f.Add(m)
	f.Add([]byte{TagControl, opPeerAdd})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok, err := ParsePeerAdd(b)
		if ok && err == nil && p.Keys.Cipher != CipherChaCha && p.Keys.Cipher != CipherAES {
			t.Fatalf("cipher %d accepted", p.Keys.Cipher)
		}
	})
}

// TestStreamReaderBounded: the client's reassembly of the server's
// reliable stream cuts messages however the stream is split, and holds at
// most one message being reassembled (MaxReliable) and one segment: a
// length over MaxReliable, a length of more than 3 bytes or a KCP message
// longer than a segment stops the stream (Broken) instead of growing the
// buffer, and nothing more is delivered from it.
func TestStreamReaderBounded(t *testing.T) {
	frame := func(m []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(m))), m...) }
	big := bytes.Repeat([]byte{'b'}, MaxReliable)
	stream := append(append(frame([]byte("one")), frame(big)...), frame([]byte("three"))...)
	var r streamReader
	var got [][]byte
	for i := 0; i < len(stream); i += 7 { // every 7 bytes: lengths split too
		got = r.push(got, stream[i:min(i+7, len(stream))])
	}
	if len(got) != 3 || string(got[0]) != "one" || !bytes.Equal(got[1], big) || string(got[2]) != "three" || r.broken || len(r.rx) != 0 {
		t.Fatalf("%d messages, broken %v, %d bytes held", len(got), r.broken, len(r.rx))
	}

	seg := bytes.Repeat([]byte{'x'}, StreamSegment)
	for _, tc := range []struct {
		name   string
		header []byte
	}{
		{"1 GiB length", binary.AppendUvarint(nil, 1<<30)},
		{"MaxReliable+1", binary.AppendUvarint(nil, MaxReliable+1)},
		{"4-byte length", []byte{0x81, 0x80, 0x80, 0x00}},
	} {
		var r streamReader
		got := r.push(nil, tc.header)
		// A server that goes on sending: 300 segments, past MaxReliable.
		for range 300 {
			got = r.push(got, seg)
			if len(r.rx) > maxStreamHeld {
				t.Fatalf("%s: %d bytes held (bound %d)", tc.name, len(r.rx), maxStreamHeld)
			}
		}
		if !r.broken || len(got) != 0 {
			t.Errorf("%s: broken %v, %d messages delivered", tc.name, r.broken, len(got))
		}
	}
	// A KCP message longer than one segment.
	var r2 streamReader
	if got := r2.push(nil, frame(bytes.Repeat([]byte{'y'}, StreamSegment+10))); !r2.broken || len(got) != 0 || len(r2.rx) != 0 {
		t.Errorf("a %d-byte KCP message: broken %v, %d messages, %d bytes held", StreamSegment+13, r2.broken, len(got), len(r2.rx))
	}
}

// FuzzStreamReader: however the server's stream is cut into KCP messages,
// the reader holds at most maxStreamHeld bytes, delivers no message over
// MaxReliable, delivers the stream's messages in order, and, while it is
// not broken, holds the stream's bytes past the last one.
func FuzzStreamReader(f *testing.F) {
	f.Add([]byte{3, 'o', 'n', 'e', 0, 2, 'h', 'i'}, uint16(3))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f}, uint16(1))
	f.Add(binary.AppendUvarint(nil, MaxReliable+1), uint16(2))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		size := int(cut)%(StreamSegment+8) + 1 // past a segment too
		var r streamReader
		var got [][]byte
		for i := 0; i < len(stream); i += size {
			got = r.push(got, stream[i:min(i+size, len(stream))])
			if len(r.rx) > maxStreamHeld {
				t.Fatalf("%d bytes held (bound %d)", len(r.rx), maxStreamHeld)
			}
		}
		rest := stream // the stream past the messages delivered
		for i, m := range got {
			n, h := binary.Uvarint(rest)
			if len(m) > MaxReliable || h <= 0 || n != uint64(len(m)) || !bytes.Equal(rest[h:h+len(m)], m) {
				t.Fatalf("message %d (%d bytes) is not the stream's next", i, len(m))
			}
			rest = rest[h+len(m):]
		}
		if r.broken {
			if r.rx != nil {
				t.Fatalf("a broken stream holds %d bytes", len(r.rx))
			}
			return
		}
		if !bytes.Equal(r.rx, rest) {
			t.Fatalf("%d bytes held, want the stream's last %d", len(r.rx), len(rest))
		}
	})
}

// TestCredentials: the credentials handshake written from PROTOCOL.md
// (cookie reply naming the key, auth block sealed to it, the block in the
// transcript) is accepted by the real engine: the hook opens what was
// sealed, the welcome opens with the keys, and the hook's refusals come
// back as their reject reasons.
func TestCredentials(t *testing.T) {
	var mu stdsync.Mutex
	var seen []string
	srv, err := sync.ListenServer("127.0.0.1:0", sync.ServerConfig{NoTCP: true, Net: net.Config{
		AuthInline: true,
		Authenticate: func(_ context.Context, r *net.AuthRequest) (net.AuthResult, error) {
			mu.Lock()
			seen = append(seen, string(r.Credentials))
			mu.Unlock()
			switch string(r.Credentials) {
			case "good":
				return net.AuthResult{User: "alice"}, nil
			case "old":
				return net.AuthResult{}, net.ErrExpired
			}
			return net.AuthResult{}, net.ErrUnauthorized
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := srv.Host().LocalAddr()
	key := srv.Host().Identity().Current()
	for _, tc := range []struct {
		creds  string
		reject byte
	}{{"good", 0}, {"old", RejectExpired}, {"forged", RejectUnauthorized}} {
		c, err := Listen("127.0.0.9:0")
		if err != nil {
			t.Fatal(err)
		}
		hs, _ := NewHandshake(false)
		hs.Credentials = []byte(tc.creds)
		if err := hs.GetCookie(ctx, c, addr); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hs.CookieKey, key[:]) || len(hs.Auth) != len(tc.creds)+TagSize {
			t.Fatalf("cookie reply named %x (want %x), auth block %d bytes", hs.CookieKey, key, len(hs.Auth))
		}
		_, body, err := hs.Finish(ctx, c, addr)
		c.Close()
		var rej *RejectError
		switch {
		case tc.reject == 0 && (err != nil || body.ClientID < 1000):
			t.Fatalf("%s: %+v, %v", tc.creds, body, err)
		case tc.reject != 0 && (!errors.As(err, &rej) || rej.Reason != tc.reject):
			t.Fatalf("%s: %v, want reject %d", tc.creds, err, tc.reject)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[0] != "good" || seen[1] != "old" || seen[2] != "forged" {
		t.Fatalf("the hook saw %q", seen)
	}
}

// TestHelloAuthLayout: a hello with flag bit 2 has its cookie area of 24
// bytes, the ticket ID and the auth block where PROTOCOL.md puts them, and
// cookie replies of other sizes than 67 or 171 bytes are refused.
func TestHelloAuthLayout(t *testing.T) {
	pub := bytes.Repeat([]byte{7}, 32)
	bare := AppendHelloAuth(nil, Version, 0, pub, [KeyIDSize]byte{}, nil, nil)
	if len(bare) != HelloSize || bare[3] != FlagAuth || bare[44] != 0 || binary.LittleEndian.Uint16(bare[85:]) != 0 {
		t.Fatalf("hello without a cookie: % x", bare)
	}
	cookie, auth := bytes.Repeat([]byte{1}, CookieSize), bytes.Repeat([]byte{2}, 400)
	h := AppendHelloAuth(nil, Version, FlagAES, pub, [KeyIDSize]byte{}, cookie, auth)
	if len(h) != 87+len(auth) || h[3] != FlagAES|FlagAuth || h[44] != CookieSize || !bytes.Equal(h[45:69], cookie) ||
		!bytes.Equal(h[69:85], make([]byte, TicketSize)) || binary.LittleEndian.Uint16(h[85:]) != uint16(len(auth)) || !bytes.Equal(h[87:], auth) {
		t.Fatalf("hello with a cookie and %d bytes of auth block: %d bytes", len(auth), len(h))
	}
	for _, n := range []int{CookieReplySize, CookieKeySize - 1, CookieKeySize + 1, CookieKeySize + 103} {
		b := make([]byte, n)
		b[0] = KindCookie
		if _, _, _, err := ParseCookieKey(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("a %d-byte cookie reply: %v", n, err)
		}
	}
	b := make([]byte, CookieKeySize)
	b[0] = KindCookie
	b[3] = 5
	b[CookieKeySize-1] = 9
	if tag, c, k, err := ParseCookieKey(b); err != nil || len(tag) != DialTagSize || tag[0] != 5 || len(c) != CookieSize || len(k) != 32 || k[31] != 9 {
		t.Fatalf("cookie reply: %x %x %v", c, k, err)
	}
}

// TestHandshakeSkipsOtherDialsAnswers: a cookie reply or a reject whose
// dial tag is not this hello's (a late answer to an earlier handshake on
// the same socket) is passed over, as engine/net's Dial drops it, and the
// handshake takes the answer to its own hello.
func TestHandshakeSkipsOtherDialsAnswers(t *testing.T) {
	srv, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hs, err := NewHandshake(false)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{0xee}, DialTagSize)
	cookie := bytes.Repeat([]byte{0x42}, CookieSize)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		_, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil {
			done <- err
			return
		}
		reply := func(tag []byte, body ...byte) []byte {
			b := append([]byte{KindCookie}, binary.LittleEndian.AppendUint16(nil, Version)...)
			return append(append(b, tag...), body...)
		}
		for _, b := range [][]byte{
			reply(other, bytes.Repeat([]byte{0x13}, CookieSize)...),                                                     // a stale cookie reply
			append(append([]byte{KindReject, RejectFull}, binary.LittleEndian.AppendUint16(nil, Version)...), other...), // a stale reject
			reply(buf[4:4+DialTagSize], cookie...),                                                                      // the answer to this hello
		} {
			if _, err := srv.WriteToUDPAddrPort(b, from); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.GetCookie(ctx, c, srv.LocalAddr().(*stdnet.UDPAddr).AddrPort()); err != nil {
		t.Fatalf("GetCookie: %v", err)
	}
	if !bytes.Equal(hs.Cookie, cookie) {
		t.Fatalf("took cookie %x, want %x", hs.Cookie, cookie)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
