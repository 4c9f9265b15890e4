package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// kcpSegment builds one KCP data segment with sequence number sn.
func kcpSegment(sn, una uint32, payload []byte) []byte {
	b := make([]byte, kcp.IKCP_OVERHEAD, kcp.IKCP_OVERHEAD+len(payload))
	binary.LittleEndian.PutUint32(b, kcpConv)
	b[4] = kcp.IKCP_CMD_PUSH
	binary.LittleEndian.PutUint16(b[6:], kcpRecvWindow)
	binary.LittleEndian.PutUint32(b[12:], sn)
	binary.LittleEndian.PutUint32(b[16:], una)
	binary.LittleEndian.PutUint32(b[20:], uint32(len(payload)))
	return append(b, payload...)
}

// sendRawKCP sends segs, sealed as KCP frames on l (one frame per
// datagram), as a hostile peer would: around l's own KCP core.
func sendRawKCP(l *link, segs ...[]byte) {
	l.mu.Lock()
	for _, s := range segs {
		b, pn := l.startDatagram()
		b = appendFrame(b, frameKCP, s)
		l.queueLocked(l.sealDatagram(b, pn))
	}
	out, p := l.takeLocked()
	l.mu.Unlock()
	l.writeOut(out, p)
}

func TestKCPRecvLayout(t *testing.T) {
	if !kcpRecv.ok {
		t.Fatal("kcp-go's receive state (rcv_nxt, rcv_wnd, rcv_queue, rcv_buf) is not where budget.go looks: the receive budgets are off")
	}
	k := newKCP(func([]byte, int) {})
	check := func(what string, nxt uint32, queued, ahead int) {
		t.Helper()
		s := readKCPRecv(k)
		if s.nxt != nxt || s.wnd != kcpRecvWindow || s.queued != queued || s.ahead != ahead {
			t.Fatalf("%s: read %+v, want nxt %d wnd %d queued %d ahead %d", what, s, nxt, kcpRecvWindow, queued, ahead)
		}
	}
	check("fresh", 0, 0, 0)
	p := []byte("segment")
	k.Input(kcpSegment(0, 0, p), kcp.IKCP_PACKET_REGULAR, false)
	check("in order", 1, 1, 0)
	k.Input(append(kcpSegment(3, 0, p), kcpSegment(5, 0, p)...), kcp.IKCP_PACKET_REGULAR, false)
	check("two out of order", 1, 1, 2)
	buf := make([]byte, 64)
	if n := k.Recv(buf); n != len(p) {
		t.Fatalf("Recv = %d", n)
	}
	check("received", 1, 0, 2)
	// Wrap the ring: many in-order segments pushed and received.
	for sn := uint32(1); sn < 3; sn++ {
		k.Input(kcpSegment(sn, 0, p), kcp.IKCP_PACKET_REGULAR, false)
	}
	check("gap filled", 4, 3, 1)
	for sn := uint32(4); sn < 200; sn++ {
		k.Input(kcpSegment(sn, 0, p), kcp.IKCP_PACKET_REGULAR, false)
		for k.Recv(buf) > 0 {
		}
	}
	k.Input(kcpSegment(201, 0, p), kcp.IKCP_PACKET_REGULAR, false)
	check("after a run", 200, 0, 1)
}

// budgetLink is a link, on a Host good enough for inputKCPLocked, without sockets.
func budgetLink(cfg Config) *link {
	h := &Host{cfg: cfg.withDefaults()}
	l := &link{h: h}
	l.kcp = newKCP(func([]byte, int) {})
	return l
}

func TestInputKCPBudget(t *testing.T) {
	l := budgetLink(Config{LinkReceiveBudget: 10 * kcpHeldCost})
	p := bytes.Repeat([]byte{7}, 1000)
	var frame []byte
	for sn := uint32(1); sn <= 30; sn++ { // sn 0 missing: all out of order
		frame = append(frame, kcpSegment(sn, 0, p)...)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if v := l.inputKCPLocked(frame); v != kcpInputOK {
		t.Fatalf("verdict %d", v)
	}
	s := readKCPRecv(l.kcp)
	if s.ahead != 10 || s.queued != 0 {
		t.Fatalf("held %+v, want 10 ahead: the link budget is 10 segments", s)
	}
	if got := l.drops[DropOverBudget].Load(); got != 20 {
		t.Fatalf("DropOverBudget %d, want 20", got)
	}
	if l.syncHeldLocked() || l.held.Load() != 10*kcpHeldCost || l.h.held.Load() != 10*kcpHeldCost {
		t.Fatalf("held link %d host %d", l.held.Load(), l.h.held.Load())
	}
	// The gap filled: everything held becomes deliverable, and the rest of
	// the run is accepted again.
	frame = kcpSegment(0, 0, p)
	for sn := uint32(11); sn <= 20; sn++ {
		frame = append(frame, kcpSegment(sn, 0, p)...)
	}
	l.inputKCPLocked(frame)
	s = readKCPRecv(l.kcp)
	if s.nxt != 21 || s.queued != 21 || s.ahead != 0 {
		t.Fatalf("after the gap: %+v, want nxt 21, 21 queued", s)
	}
	// Past the receive window: a KCP sender never sends there.
	if v := l.inputKCPLocked(kcpSegment(21+kcpRecvWindow, 0, p)); v != kcpInputShed {
		t.Fatalf("segment past the window: verdict %d, want shed", v)
	}
	if v := l.inputKCPLocked(kcpSegment(20+kcpRecvWindow, 0, p)); v != kcpInputOK {
		t.Fatalf("last segment in the window: verdict %d", v)
	}
	if v := l.inputKCPLocked([]byte{1, 2, 3}); v != kcpInputMalformed {
		t.Fatalf("short frame: verdict %d", v)
	}
}

// FuzzInputKCP: whatever a peer puts in a KCP frame, the link holds at
// most its budget of out-of-order data and a window of queued segments, and
// nothing panics.
func FuzzInputKCP(f *testing.F) {
	// Real frames: what a KCP sender puts out, then crafted gaps.
	var real [][]byte
	snd := newKCP(func(b []byte, n int) { real = append(real, bytes.Clone(b[:n])) })
	snd.Send([]byte("hello"))
	snd.Send(bytes.Repeat([]byte{1}, 3000))
	kcpFlush(snd, kcp.IKCP_FLUSH_FULL)
	for _, r := range real {
		f.Add(r)
	}
	p := bytes.Repeat([]byte{9}, 900)
	f.Add(append(kcpSegment(2, 0, p), kcpSegment(1, 0, p)...))
	f.Add(kcpSegment(kcpRecvWindow, 0, p))
	f.Add(kcpSegment(0, 0, nil))
	f.Fuzz(func(t *testing.T, frame []byte) {
		const budget = 4 * kcpHeldCost
		l := budgetLink(Config{LinkReceiveBudget: budget})
		buf := make([]byte, 16<<10) // a larger message stays queued: Recv says -2
		l.mu.Lock()
		defer l.mu.Unlock()
		// The frame, then variants shifted along the sequence numbers, so
		// that one input builds up a held state.
		for i := range uint32(8) {
			fr := bytes.Clone(frame)
			for b := fr; len(b) >= kcp.IKCP_OVERHEAD; {
				sn := binary.LittleEndian.Uint32(b[12:])
				binary.LittleEndian.PutUint32(b[12:], sn+i)
				n := int(binary.LittleEndian.Uint32(b[20:]))
				if n > len(b)-kcp.IKCP_OVERHEAD {
					break
				}
				b = b[kcp.IKCP_OVERHEAD+n:]
			}
			if l.inputKCPLocked(fr) == kcpInputShed {
				return
			}
			for l.kcp.Recv(buf) >= 0 { // the application takes what is complete
			}
			// Segments in rcv_buf are all out of order unless the queue is
			// full (of an incomplete message), when in-order ones wait
			// there too: the window bounds those.
			s := readKCPRecv(l.kcp)
			if s.queued > kcpRecvWindow || s.queued < kcpRecvWindow && int64(s.ahead)*kcpHeldCost > budget {
				t.Fatalf("held %+v over budget", s)
			}
			l.syncHeldLocked()
			if l.h.held.Load() != s.held() {
				t.Fatalf("host held %d, link holds %d", l.h.held.Load(), s.held())
			}
		}
	})
}

// TestReceiveBudgetAttack: links pinning out-of-order reliable data are held
// to their budget, the host's total to its own (the largest holders are
// shed and told why), a link sending past the window is shed at once, and
// a legitimate client still gets its round trip.
func TestReceiveBudgetAttack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			attackers = 8
			linkSegs  = 20 // per-link budget, in segments
			hostSegs  = 5 * linkSegs
			pinned    = 100 // segments each attacker sends past its gap
		)
		n := vnet.New(1)
		defer n.Close()
		srvAddr := netip.MustParseAddrPort("10.0.0.1:7000")
		sconn, err := n.Listen(srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := NewHost(sconn, Config{Accept: true, LinkReceiveBudget: linkSegs * kcpHeldCost, HostReceiveBudget: hostSegs * kcpHeldCost})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		dial := func(i int) *Host {
			c, err := n.Listen(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}), 5000))
			if err != nil {
				t.Fatal(err)
			}
			h, err := NewHost(c, Config{})
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Dial(t.Context(), srvAddr); err != nil {
				t.Fatal(err)
			}
			return h
		}
		var bad []*Host
		for i := range attackers + 1 {
			h := dial(i + 1)
			defer h.Close()
			bad = append(bad, h)
		}
		legit := dial(100)
		defer legit.Close()
		synctest.Wait()
		drain(srv)

		payload := bytes.Repeat([]byte{0xa5}, 1000)
		for _, h := range bad[:attackers] {
			l := h.link(ServerID)
			for sn := uint32(1); sn <= pinned; sn++ { // sn 0 never comes
				sendRawKCP(l, kcpSegment(sn, 0, payload))
			}
			synctest.Wait()
			if held, limit := srv.HeldBytes(), int64(hostSegs*kcpHeldCost); held > limit {
				t.Fatalf("server holds %d bytes, over its %d-byte budget", held, limit)
			}
		}
		// The last one sends past the receive window.
		sendRawKCP(bad[attackers].link(ServerID), kcpSegment(kcpRecvWindow, 0, payload))
		synctest.Wait()

		// The server holds at most its budget; every surviving attacker at
		// most its own; the held bytes add up.
		var sum int64
		for _, h := range bad {
			l := srv.link(h.ID())
			if l == nil {
				continue
			}
			l.mu.Lock()
			s := readKCPRecv(l.kcp)
			l.mu.Unlock()
			if s.ahead > linkSegs {
				t.Errorf("attacker %v: %d segments held, budget %d", h.ID(), s.ahead, linkSegs)
			}
			sum += s.held()
		}
		if held := srv.HeldBytes(); held != sum || held > hostSegs*kcpHeldCost {
			t.Errorf("server holds %d bytes (links: %d), budget %d", held, sum, hostSegs*kcpHeldCost)
		}
		// Offenders shed, counted, and told.
		var shed []HostID
		for {
			e, ok := srv.Poll()
			if !ok {
				break
			}
			if e.Kind == EventDisconnected {
				if !errors.Is(e.Err, ErrOverBudget) {
					t.Errorf("%v disconnected: %v, want ErrOverBudget", e.Peer, e.Err)
				}
				shed = append(shed, e.Peer)
			}
		}
		// 8 attackers of 20 segments on a budget of 100 segments: at least
		// 3 shed, plus the one past the window.
		if len(shed) < attackers-hostSegs/linkSegs+1 {
			t.Errorf("%d links shed (%v), want at least %d", len(shed), shed, attackers-hostSegs/linkSegs+1)
		}
		if srv.link(bad[attackers].ID()) != nil {
			t.Error("the link that sent past the window is still up")
		}
		refused := uint64(attackers-len(shed)+1) * (pinned - linkSegs)
		if d := srv.Stats().Drops[DropOverBudget]; d < refused {
			t.Errorf("DropOverBudget = %d, want at least %d", d, refused)
		}
		for _, id := range shed {
			for _, h := range bad {
				if h.ID() != id {
					continue
				}
				e := next(t, h)
				for e.Kind != EventDisconnected {
					e = next(t, h)
				}
				if !errors.Is(e.Err, ErrOverBudget) {
					t.Errorf("shed attacker %v saw %v %v, want ErrOverBudget", id, e.Kind, e.Err)
				}
			}
		}

		// A legitimate client streams and gets its answer.
		for i := range 50 {
			if err := legit.Send(ServerID, Reliable, bytes.Repeat([]byte{byte(i)}, 3000)); err != nil {
				t.Fatal(err)
			}
		}
		got := 0
		for got < 50 {
			e := next(t, srv)
			if e.Kind == EventMessage && e.Peer == legit.ID() {
				if !bytes.Equal(e.Data, bytes.Repeat([]byte{byte(got)}, 3000)) {
					t.Fatalf("message %d corrupted", got)
				}
				got++
			}
		}
		if err := srv.Send(legit.ID(), Reliable, []byte("pong")); err != nil {
			t.Fatal(err)
		}
		e := next(t, legit)
		for e.Kind == EventConnected {
			e = next(t, legit)
		}
		if e.Kind != EventMessage || string(e.Data) != "pong" {
			t.Fatalf("legit client got %v %q, want the pong", e.Kind, e.Data)
		}
		if srv.link(legit.ID()) == nil {
			t.Fatal("the legitimate client was shed")
		}
	})
}

func drain(h *Host) {
	for {
		if _, ok := h.Poll(); !ok {
			return
		}
	}
}

// next waits for h's next event; it fails after a minute of (bubble)
// time.
func next(t *testing.T, h *Host) Event {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if e, ok := h.Poll(); ok {
			return e
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no event")
	return Event{}
}

// BenchmarkBudgetBookkeeping is the fixed cost the budgets add to each
// datagram carrying KCP segments, besides walking their 24-byte headers:
// reading the core's receive state twice (before the input, and after the
// pump to update the held bytes).
func BenchmarkBudgetBookkeeping(b *testing.B) {
	l := budgetLink(Config{})
	l.kcp.Input(kcpSegment(5, 0, []byte("x")), kcp.IKCP_PACKET_REGULAR, false)
	l.mu.Lock()
	defer l.mu.Unlock()
	var s kcpRecvState
	for b.Loop() {
		s = readKCPRecv(l.kcp)
		l.syncHeldLocked()
	}
	if s.ahead != 1 {
		b.Fatalf("state %+v", s)
	}
}

// BenchmarkKCPInput is the cost of the budget check on the receive path: an
// in-order stream of full segments given to the KCP core directly (raw),
// or through inputKCPLocked (guarded) with its held-bytes bookkeeping, each
// message taken at once as pumpLocked would.
func BenchmarkKCPInput(b *testing.B) {
	p := bytes.Repeat([]byte{3}, kcpMTU-kcp.IKCP_OVERHEAD)
	for _, guarded := range []bool{false, true} {
		name := map[bool]string{false: "raw", true: "guarded"}[guarded]
		b.Run(name, func(b *testing.B) {
			l := budgetLink(Config{})
			buf := make([]byte, len(p))
			seg := kcpSegment(0, 0, p)
			l.mu.Lock()
			defer l.mu.Unlock()
			b.SetBytes(int64(len(p)))
			for i := 0; b.Loop(); i++ {
				binary.LittleEndian.PutUint32(seg[12:], uint32(i))
				if guarded {
					l.inputKCPLocked(seg)
				} else {
					l.kcp.Input(seg, kcp.IKCP_PACKET_REGULAR, false)
				}
				if l.kcp.Recv(buf) != len(p) {
					b.Fatal("not delivered")
				}
				if guarded {
					l.syncHeldLocked()
				}
			}
		})
	}
}

// TestStalledReceiveBounded: while the application does not take its
// events, complete reliable messages wait in the link's KCP core (the
// stalled path). They stay within the receive window and count against the
// host budget: given back once the application catches up, or, past the
// budget, the link is shed.
func TestStalledReceiveBounded(t *testing.T) {
	for _, tight := range []bool{false, true} {
		t.Run(map[bool]string{false: "within budget", true: "over budget"}[tight], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				scfg := Config{Accept: true, EventQueue: 8}
				if tight {
					scfg.HostReceiveBudget = 100 * kcpHeldCost
				}
				_, srv, cli := vnetPair(t, 1, scfg, Config{})
				if err := cli.Dial(t.Context(), vnetServerAddr); err != nil {
					t.Fatal(err)
				}
				const count = 600
				for i := range count {
					if err := cli.Send(ServerID, Reliable, bytes.Repeat([]byte{byte(i)}, 1000)); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(2 * time.Second) // the application is busy elsewhere
				synctest.Wait()
				if tight {
					if srv.link(cli.ID()) != nil {
						t.Fatal("a link holding more than the host budget is still up")
					}
					if held := srv.HeldBytes(); held != 0 {
						t.Fatalf("%d bytes still charged after the link was shed", held)
					}
					for e := next(t, cli); ; e = next(t, cli) {
						if e.Kind == EventDisconnected {
							if !errors.Is(e.Err, ErrOverBudget) {
								t.Fatalf("client saw %v, want ErrOverBudget", e.Err)
							}
							return
						}
					}
				}
				l := srv.link(cli.ID())
				l.mu.Lock()
				s := readKCPRecv(l.kcp)
				unread := int64(len(l.rx) - l.rxOff) // the reassembly buffer's share
				l.mu.Unlock()
				if s.queued == 0 || s.queued > kcpRecvWindow || s.queued+s.ahead > kcpRecvWindow {
					t.Fatalf("stalled link holds %+v: want some queued, within a window of %d", s, kcpRecvWindow)
				}
				if srv.HeldBytes() != s.held()+unread {
					t.Fatalf("host charged %d, the link holds %d in KCP and %d unread", srv.HeldBytes(), s.held(), unread)
				}
				// The application catches up: everything arrives, in order,
				// and the bytes are given back.
				got := 0
				for got < count {
					e := next(t, srv)
					if e.Kind != EventMessage {
						continue
					}
					if len(e.Data) != 1000 || e.Data[0] != byte(got) {
						t.Fatalf("message %d: %d bytes starting %d", got, len(e.Data), e.Data[0])
					}
					got++
				}
				synctest.Wait()
				if held := srv.HeldBytes(); held != 0 {
					t.Fatalf("%d bytes still charged after every message was taken", held)
				}
			})
		})
	}
}

// TestEventQueueBytesBounded: a hostile client sends reliable messages of
// MaxReliable bytes, as fast as the server acknowledges them, while the
// server's application takes no events. The event queue's count (8192)
// alone let them pile up to 2 GiB, charged to no budget; now the queue
// holds at most EventQueueBytes of them, the rest wait in the stream
// (charged to HostReceiveBudget), an unreliable message that does not fit
// is dropped and counted (DropQueueBytes), and once the application
// catches up every reliable message arrives, in order.
func TestEventQueueBytesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget = 4 * MaxReliable
		_, srv, cli := vnetPair(t, 1, Config{Accept: true, EventQueueBytes: budget}, Config{})
		if err := cli.Dial(t.Context(), vnetServerAddr); err != nil {
			t.Fatal(err)
		}
		next(t, srv) // EventConnected

		const count = 24 // 6 MiB
		sent := 0
		for deadline := time.Now().Add(time.Minute); sent < count; {
			err := cli.Send(ServerID, Reliable, bytes.Repeat([]byte{byte(sent)}, MaxReliable))
			switch {
			case err == nil:
				sent++
			case errors.Is(err, ErrSendQueueFull) && time.Now().Before(deadline):
				time.Sleep(10 * time.Millisecond) // the attacker keeps its queue full
			default:
				t.Fatalf("message %d: %v", sent, err)
			}
		}
		time.Sleep(5 * time.Second) // the application is busy elsewhere
		synctest.Wait()
		st := srv.Stats()
		if st.Events.Bytes > budget || srv.events.Len()*MaxReliable > budget {
			t.Fatalf("the event queue holds %d messages, %d bytes: over its %d-byte budget", srv.events.Len(), st.Events.Bytes, budget)
		}
		if st.Events.Bytes != budget || st.Events.ByteStalls == 0 {
			t.Fatalf("queue %d bytes, %d byte stalls: want it full (%d) and the stream stalled", st.Events.Bytes, st.Events.ByteStalls, budget)
		}
		if held := srv.HeldBytes(); held == 0 || held > int64(srv.cfg.HostReceiveBudget) {
			t.Fatalf("the stalled stream holds %d bytes, want some, within the host budget %d", held, srv.cfg.HostReceiveBudget)
		}
		// An unreliable message finds no room for its bytes.
		if err := cli.Send(ServerID, Unreliable, []byte("late")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if d := srv.Stats().Drops[DropQueueBytes]; d != 1 {
			t.Fatalf("DropQueueBytes = %d, want 1", d)
		}

		// The application catches up: every reliable message, in order.
		got := 0
		for got < count {
			e := next(t, srv)
			if e.Kind != EventMessage {
				continue
			}
			if len(e.Data) != MaxReliable || e.Data[0] != byte(got) || e.Data[MaxReliable-1] != byte(got) {
				t.Fatalf("message %d: %d bytes of %d", got, len(e.Data), e.Data[0])
			}
			got++
			if b := srv.Stats().Events.Bytes; b > budget {
				t.Fatalf("after message %d the queue holds %d bytes, over %d", got, b, budget)
			}
		}
		synctest.Wait()
		if b, held := srv.Stats().Events.Bytes, srv.HeldBytes(); b != 0 || held != 0 {
			t.Fatalf("after every message was taken: queue %d bytes, %d held", b, held)
		}
	})
}
