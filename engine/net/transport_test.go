package net_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	skein "github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

var (
	srvAddr = netip.MustParseAddrPort("10.0.0.1:7000")
	cliAddr = netip.MustParseAddrPort("10.0.0.2:5000")
)

// vpair connects a client to a server over the virtual network n. Call it
// inside a synctest bubble; the hosts close when the test ends.
func vpair(t *testing.T, n *vnet.Network, scfg, ccfg skein.Config) (srv, cli *skein.Host, cconn *vnet.Conn) {
	t.Helper()
	sconn, err := n.Listen(srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	cconn, err = n.Listen(cliAddr)
	if err != nil {
		t.Fatal(err)
	}
	scfg.Accept = true
	if srv, err = skein.NewHost(sconn, scfg); err != nil {
		t.Fatal(err)
	}
	if cli, err = skein.NewHost(cconn, ccfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); srv.Close() })
	if err := cli.Dial(t.Context(), srvAddr); err != nil {
		t.Fatal(err)
	}
	expect(t, cli, skein.EventConnected, skein.ServerID)
	expect(t, srv, skein.EventConnected, cli.ID())
	return srv, cli, cconn
}

// message builds reliable test message i: its index, then bytes drawn from
// a generator seeded by i, so the receiver can check every byte.
func message(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	b := make([]byte, 4+r.IntN(2000))
	binary.LittleEndian.PutUint32(b, uint32(i))
	for j := 4; j < len(b); j++ {
		b[j] = byte(r.Uint32())
	}
	return b
}

// sendAll sends messages [0, count) reliably, waiting when the send queue
// is full.
func sendAll(t *testing.T, h *skein.Host, to skein.HostID, count int, between func(i int)) {
	for i := 0; i < count; i++ {
		if between != nil {
			between(i)
		}
		for {
			err := h.Send(to, skein.Reliable, message(i))
			if err == nil {
				break
			}
			if !errors.Is(err, skein.ErrSendQueueFull) {
				t.Errorf("send %d: %v", i, err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// receiveAll checks that messages [0, count) arrive exactly once, in order,
// intact.
func receiveAll(t *testing.T, h *skein.Host, from skein.HostID, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		e := expect(t, h, skein.EventMessage, from)
		if want := message(i); !bytes.Equal(e.Data, want) {
			got := -1
			if len(e.Data) >= 4 {
				got = int(binary.LittleEndian.Uint32(e.Data))
			}
			t.Fatalf("message %d: got message %d (%d bytes), want %d bytes", i, got, len(e.Data), len(want))
		}
	}
}

func TestReliableExactlyOnceUnderLossReorderDuplication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		srv, cli, _ := vpair(t, n, skein.Config{}, skein.Config{})
		n.SetConditions(vnet.Conditions{Loss: 0.2, Reorder: 0.1, Duplicate: 0.1, Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond})
		const count = 10000
		go sendAll(t, cli, skein.ServerID, count, nil)
		receiveAll(t, srv, cli.ID(), count)
		st, _ := cli.LinkStats(skein.ServerID)
		if st.Retransmits == 0 {
			t.Errorf("no retransmits under 20%% loss: %+v", st)
		}
		if d := n.Stats(); d.Duplicated == 0 || d.Dropped.Loss == 0 {
			t.Errorf("impairment not applied: %+v", d)
		}
		t.Logf("retransmits %d, datagrams out %d, replays dropped %d", st.Retransmits, st.DatagramsOut, srv.Stats().Drops[skein.DropReplay])
	})
}

func TestUnreliableNeverOlderAfterNewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(2)
		defer n.Close()
		srv, cli, _ := vpair(t, n, skein.Config{}, skein.Config{})
		n.SetConditions(vnet.Conditions{Loss: 0.05, Reorder: 0.02, Duplicate: 0.2, Delay: 5 * time.Millisecond, Jitter: time.Millisecond})
		const count = 2000
		go func() {
			for i := 1; i <= count; i++ {
				var b [8]byte
				binary.LittleEndian.PutUint32(b[:], uint32(i))
				for ch := uint8(0); ch < 2; ch++ {
					if err := cli.Send(skein.ServerID, skein.Unreliable.OnChannel(ch), b[:]); err != nil {
						t.Errorf("send: %v", err)
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
		last := map[uint8]uint32{}
		got := 0
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(count)*time.Millisecond+time.Second)
		defer cancel()
		for {
			e, err := srv.Next(ctx)
			if err != nil {
				break
			}
			if e.Kind != skein.EventMessage || e.Delivery.Reliable {
				continue
			}
			seq := binary.LittleEndian.Uint32(e.Data)
			if seq <= last[e.Delivery.Channel] {
				t.Fatalf("channel %d: message %d delivered after %d", e.Delivery.Channel, seq, last[e.Delivery.Channel])
			}
			last[e.Delivery.Channel] = seq
			got++
		}
		stale := srv.Stats().Drops[skein.DropStale]
		if stale == 0 {
			t.Errorf("reordering produced no stale drops")
		}
		// 2 channels × count sent; 5% are lost and a few overtaken, the
		// rest must arrive.
		if got < 2*count*7/10 {
			t.Errorf("only %d of %d unreliable messages arrived", got, 2*count)
		}
		t.Logf("delivered %d of %d, stale dropped %d", got, 2*count, stale)
	})
}

func TestBadSealAndReplayAreDroppedAndCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(3)
		defer n.Close()
		var mu sync.Mutex
		var captured []byte
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
			mu.Lock()
			defer mu.Unlock()
			if captured == nil && from == cliAddr && len(b) > 0 && b[0] == 0x10 {
				captured = bytes.Clone(b)
			}
			return false
		})
		srv, cli, cconn := vpair(t, n, skein.Config{}, skein.Config{})
		mu.Lock()
		replay := bytes.Clone(captured)
		mu.Unlock()
		if replay == nil {
			t.Fatal("no data datagram captured")
		}
		forged := bytes.Clone(replay)
		forged[len(forged)-1] ^= 0x55

		if _, err := cconn.WriteTo(replay, srvAddr); err != nil {
			t.Fatal(err)
		}
		if _, err := cconn.WriteTo(forged, srvAddr); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		d := srv.Stats().Drops
		if d[skein.DropReplay] != 1 || d[skein.DropBadSeal] != 1 {
			t.Fatalf("drops: replay %d, bad seal %d; want 1 and 1", d[skein.DropReplay], d[skein.DropBadSeal])
		}
		ls, _ := srv.LinkStats(cli.ID())
		if ls.Drops[skein.DropReplay] != 1 || ls.Drops[skein.DropBadSeal] != 1 {
			t.Fatalf("link drops: %v", ls.Drops)
		}
		// The link carries on.
		if err := cli.Send(skein.ServerID, skein.Reliable, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, srv, skein.EventMessage, cli.ID()); string(e.Data) != "still here" {
			t.Fatalf("got %q", e.Data)
		}
	})
}

func TestVanishedClientTimesOutAndIsFreed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(4)
		defer n.Close()
		cfg := skein.Config{Timeout: 3 * time.Second, PingInterval: 500 * time.Millisecond}
		srv, cli, _ := vpair(t, n, cfg, cfg)
		id := cli.ID()
		// The client vanishes: nothing it sends arrives any more.
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return from == cliAddr })
		start := time.Now()
		e := expect(t, srv, skein.EventDisconnected, id)
		took := time.Since(start)
		if !errors.Is(e.Err, skein.ErrTimeout) {
			t.Fatalf("reason %v, want timeout", e.Err)
		}
		if took < cfg.Timeout-cfg.PingInterval || took > cfg.Timeout+time.Second {
			t.Fatalf("detected after %v, timeout %v", took, cfg.Timeout)
		}
		if _, ok := srv.LinkStats(id); ok || srv.Stats().Links != 0 {
			t.Fatalf("server still holds the client: %+v", srv.Stats())
		}
		e = expect(t, cli, skein.EventDisconnected, skein.ServerID)
		if !errors.Is(e.Err, skein.ErrTimeout) {
			t.Fatalf("client reason %v", e.Err)
		}
	})
}

// forwarder relays datagrams between the client and the server through its
// own address, giving the client a second, independent path.
func forwarder(t *testing.T, n *vnet.Network, addr netip.AddrPort) {
	c, err := n.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			to := srvAddr
			if from == srvAddr {
				to = cliAddr
			}
			c.WriteTo(buf[:k], to)
		}
	}()
}

func TestPathSwapUnderLoadLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(5)
		defer n.Close()
		srv, cli, _ := vpair(t, n, skein.Config{}, skein.Config{})
		fwd := netip.MustParseAddrPort("10.0.0.9:9000")
		forwarder(t, n, fwd)
		n.SetConditions(vnet.Conditions{Loss: 0.05, Delay: 3 * time.Millisecond, Jitter: time.Millisecond})
		const count = 5000
		swaps := 0
		go sendAll(t, cli, skein.ServerID, count, func(i int) {
			if i%100 != 50 {
				return
			}
			to := srvAddr
			if (i/100)%2 == 0 {
				to = fwd
			}
			if err := cli.SetPath(skein.ServerID, cli.DirectPath(to)); err != nil {
				t.Errorf("set path: %v", err)
			}
			swaps++
		})
		receiveAll(t, srv, cli.ID(), count)
		if swaps < 40 {
			t.Fatalf("only %d path swaps", swaps)
		}
		// Both directions kept working: the server followed the client.
		if err := srv.Send(cli.ID(), skein.Reliable, []byte("back")); err != nil {
			t.Fatal(err)
		}
		expect(t, cli, skein.EventMessage, skein.ServerID)
	})
}

func TestRTTAndLossEstimates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(6)
		defer n.Close()
		cfg := skein.Config{PingInterval: 100 * time.Millisecond, Timeout: 30 * time.Second}
		_, cli, _ := vpair(t, n, cfg, cfg)
		n.SetLinkConditions(srvAddr.Addr(), cliAddr.Addr(), vnet.Conditions{Delay: 40 * time.Millisecond, Loss: 0.1})
		n.SetLinkConditions(cliAddr.Addr(), srvAddr.Addr(), vnet.Conditions{Delay: 40 * time.Millisecond})
		time.Sleep(60 * time.Second)
		st, _ := cli.LinkStats(skein.ServerID)
		if st.RTT < 75*time.Millisecond || st.RTT > 110*time.Millisecond {
			t.Errorf("RTT %v, want about 80ms", st.RTT)
		}
		if st.LossIn < 0.05 || st.LossIn > 0.16 {
			t.Errorf("inbound loss %.3f, want about 0.1", st.LossIn)
		}
		if st.LossOut > 0.03 {
			t.Errorf("outbound loss %.3f, want about 0", st.LossOut)
		}
		t.Logf("RTT %v jitter %v loss in %.3f out %.3f", st.RTT, st.Jitter, st.LossIn, st.LossOut)
	})
}

func TestGracefulCloseFlushesAndTellsWhy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(7)
		defer n.Close()
		srv, cli, _ := vpair(t, n, skein.Config{}, skein.Config{})
		n.SetConditions(vnet.Conditions{Loss: 0.1, Delay: 10 * time.Millisecond})
		const count = 300
		sendAll(t, cli, skein.ServerID, count, nil)
		if err := cli.Disconnect(skein.ServerID); err != nil {
			t.Fatal(err)
		}
		if err := cli.Send(skein.ServerID, skein.Reliable, []byte("late")); !errors.Is(err, skein.ErrLinkClosing) {
			t.Fatalf("send while closing: %v", err)
		}
		receiveAll(t, srv, cli.ID(), count)
		e := expect(t, srv, skein.EventDisconnected, cli.ID())
		if !errors.Is(e.Err, skein.ErrClosedByPeer) {
			t.Fatalf("reason %v", e.Err)
		}
		expect(t, cli, skein.EventDisconnected, skein.ServerID)
	})
}

func TestKickAndShutdownReasons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(8)
		defer n.Close()
		srv, cli, _ := vpair(t, n, skein.Config{}, skein.Config{})
		if err := srv.Kick(cli.ID(), "cheating"); err != nil {
			t.Fatal(err)
		}
		e := expect(t, cli, skein.EventDisconnected, skein.ServerID)
		var ce *skein.CloseError
		if !errors.Is(e.Err, skein.ErrKicked) || !errors.As(e.Err, &ce) || ce.Message != "cheating" {
			t.Fatalf("kick reason %v", e.Err)
		}

		c2conn, _ := n.Listen(netip.MustParseAddrPort("10.0.0.3:5000"))
		c2, _ := skein.NewHost(c2conn, skein.Config{})
		defer c2.Close()
		if err := c2.Dial(t.Context(), srvAddr); err != nil {
			t.Fatal(err)
		}
		expect(t, c2, skein.EventConnected, skein.ServerID)
		srv.Close()
		e = expect(t, c2, skein.EventDisconnected, skein.ServerID)
		if !errors.Is(e.Err, skein.ErrShutdown) {
			t.Fatalf("shutdown reason %v", e.Err)
		}
	})
}

func TestDialRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(9)
		defer n.Close()
		sconn, _ := n.Listen(srvAddr)
		srv, _ := skein.NewHost(sconn, skein.Config{Accept: true, MaxLinks: 1})
		defer srv.Close()
		dial := func(addr string) error {
			c, _ := n.Listen(netip.MustParseAddrPort(addr))
			h, _ := skein.NewHost(c, skein.Config{HandshakeTimeout: 2 * time.Second})
			t.Cleanup(func() { h.Close() })
			return h.Dial(t.Context(), srvAddr)
		}
		if err := dial("10.0.0.2:1"); err != nil {
			t.Fatal(err)
		}
		if err := dial("10.0.0.2:2"); !errors.Is(err, skein.ErrServerFull) {
			t.Fatalf("full server: %v", err)
		}
		restore := skein.SetHelloVersion(99)
		err := dial("10.0.0.2:3")
		restore()
		var re *skein.RejectError
		if !errors.Is(err, skein.ErrVersionMismatch) || !errors.As(err, &re) || re.ServerVersion != skein.ProtocolVersion {
			t.Fatalf("version: %v", err)
		}
		// A cookie changed in flight is refused.
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
			if len(b) == 128 && b[0] == 0x01 && b[36] != 0 { // a hello with a cookie (length at 36, cookie at 37)
				b[40] ^= 1
			}
			return false
		})
		if err := dial("10.0.0.2:4"); !errors.Is(err, skein.ErrBadCookie) {
			t.Fatalf("bad cookie: %v", err)
		}
		// Nobody answering.
		if err := dial2(n, "10.0.0.2:5", netip.MustParseAddrPort("10.0.0.99:1")); !errors.Is(err, skein.ErrHandshakeTimeout) {
			t.Fatalf("no server: %v", err)
		}
		if f := srv.Stats().HandshakeFailures; f != 3 {
			t.Fatalf("server counted %d handshake failures, want 3", f)
		}
	})
}

func dial2(n *vnet.Network, local string, to netip.AddrPort) error {
	c, _ := n.Listen(netip.MustParseAddrPort(local))
	h, _ := skein.NewHost(c, skein.Config{HandshakeTimeout: time.Second})
	defer h.Close()
	return h.Dial(context.Background(), to)
}

func TestEventQueueBackpressureKeepsReliableOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(10)
		defer n.Close()
		srv, cli, _ := vpair(t, n, skein.Config{EventQueue: 16}, skein.Config{})
		const count = 2000
		go sendAll(t, cli, skein.ServerID, count, nil)
		time.Sleep(2 * time.Second) // the server's application is busy
		receiveAll(t, srv, cli.ID(), count)
	})
}

func TestSizeLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(11)
		defer n.Close()
		srv, cli, _ := vpair(t, n, skein.Config{}, skein.Config{})
		if err := cli.Send(skein.ServerID, skein.Unreliable, make([]byte, skein.MaxUnreliable+1)); !errors.Is(err, skein.ErrTooLarge) {
			t.Fatalf("unreliable too large: %v", err)
		}
		if err := cli.Send(skein.ServerID, skein.Reliable, make([]byte, skein.MaxReliable+1)); !errors.Is(err, skein.ErrTooLarge) {
			t.Fatalf("reliable too large: %v", err)
		}
		if err := cli.Send(skein.ServerID, skein.Reliable, nil); !errors.Is(err, skein.ErrEmpty) {
			t.Fatalf("empty: %v", err)
		}
		if err := cli.Send(12345, skein.Reliable, []byte("x")); !errors.Is(err, skein.ErrUnknownPeer) {
			t.Fatalf("unknown: %v", err)
		}
		// The largest of each fits (and fits one datagram, unreliable).
		n.SetConditions(vnet.Conditions{MTU: skein.MaxDatagram})
		if err := cli.Send(skein.ServerID, skein.Unreliable, make([]byte, skein.MaxUnreliable)); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, srv, skein.EventMessage, cli.ID()); len(e.Data) != skein.MaxUnreliable {
			t.Fatalf("got %d bytes", len(e.Data))
		}
		big := bytes.Repeat([]byte{7}, skein.MaxReliable)
		if err := cli.Send(skein.ServerID, skein.Reliable, big); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, srv, skein.EventMessage, cli.ID()); !bytes.Equal(e.Data, big) {
			t.Fatalf("got %d bytes", len(e.Data))
		}
		if d := n.Stats().Dropped; d.MTU != 0 {
			t.Fatalf("%d datagrams over the MTU", d.MTU)
		}
	})
}

func TestCipherNegotiation(t *testing.T) {
	for _, tc := range []struct {
		client, server, want skein.Cipher
	}{
		{skein.AES256GCM, skein.AES256GCM, skein.AES256GCM},
		{skein.ChaCha20Poly1305, skein.AES256GCM, skein.ChaCha20Poly1305},
		{skein.AES256GCM, skein.ChaCha20Poly1305, skein.ChaCha20Poly1305},
		{skein.ChaCha20Poly1305, skein.ChaCha20Poly1305, skein.ChaCha20Poly1305},
	} {
		t.Run(fmt.Sprintf("%v-%v", tc.client, tc.server), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := vnet.New(30)
				defer n.Close()
				srv, cli, _ := vpair(t, n, skein.Config{Cipher: tc.server}, skein.Config{Cipher: tc.client})
				cs, _ := cli.LinkStats(skein.ServerID)
				ss, _ := srv.LinkStats(cli.ID())
				if cs.Cipher != tc.want || ss.Cipher != tc.want {
					t.Fatalf("client uses %v, server %v; want %v", cs.Cipher, ss.Cipher, tc.want)
				}
				cli.Send(skein.ServerID, skein.Reliable, []byte("sealed"))
				if e := expect(t, srv, skein.EventMessage, cli.ID()); string(e.Data) != "sealed" {
					t.Fatalf("got %q", e.Data)
				}
			})
		})
	}
}

// TestCloseDoesNotWaitWhenIdle: a close with nothing unacknowledged ends the
// link at once (on synctest's virtual clock: no time passes), and one with
// data in flight ends when the peer acknowledges it, not at a later
// housekeeping walk.
func TestCloseDoesNotWaitWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(17)
		defer n.Close()
		srv, cli, _ := vpair(t, n, skein.Config{}, skein.Config{})
		n.SetConditions(vnet.Conditions{Delay: 20 * time.Millisecond}) // 40 ms round trip
		synctest.Wait()

		t0 := time.Now()
		if err := srv.Disconnect(cli.ID()); err != nil {
			t.Fatal(err)
		}
		e, ok := srv.Poll()
		if !ok || e.Kind != skein.EventDisconnected || !errors.Is(e.Err, skein.ErrClosedLocally) {
			t.Fatalf("after an idle Disconnect: %v %v, want the link ended at once", e, ok)
		}
		if d := time.Since(t0); d != 0 {
			t.Fatalf("idle Disconnect took %v of virtual time", d)
		}
		expect(t, cli, skein.EventDisconnected, skein.ServerID)

		// With a message in flight: ends once it is acknowledged (one
		// round trip), well before a 100 ms housekeeping period would add.
		n2 := vnet.New(18)
		defer n2.Close()
		srv2, cli2, _ := vpair(t, n2, skein.Config{}, skein.Config{})
		n2.SetConditions(vnet.Conditions{Delay: 20 * time.Millisecond})
		synctest.Wait()
		if err := cli2.Send(skein.ServerID, skein.Reliable, []byte("last words")); err != nil {
			t.Fatal(err)
		}
		t0 = time.Now()
		if err := cli2.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d < 40*time.Millisecond || d >= 90*time.Millisecond {
			t.Fatalf("Close with a message in flight took %v of virtual time, want one round trip (40 ms) plus a tick", d)
		}
		m := expect(t, srv2, skein.EventMessage, cli2.ID())
		if string(m.Data) != "last words" {
			t.Fatalf("got %q", m.Data)
		}
	})
}
