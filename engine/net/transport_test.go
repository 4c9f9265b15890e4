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

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

var (
	srvAddr = netip.MustParseAddrPort("10.0.0.1:7000")
	cliAddr = netip.MustParseAddrPort("10.0.0.2:5000")
)

// vpair connects a client to a server over the virtual network n. Call it
// inside a synctest bubble; the hosts close when the test ends.
func vpair(t *testing.T, n *vnet.Network, scfg, ccfg net.Config) (srv, cli *net.Host, cconn *vnet.Conn) {
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
	if srv, err = net.NewHost(sconn, scfg); err != nil {
		t.Fatal(err)
	}
	if cli, err = net.NewHost(cconn, ccfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); srv.Close() })
	if err := cli.Dial(t.Context(), srvAddr); err != nil {
		t.Fatal(err)
	}
	expect(t, cli, net.EventConnected, net.ServerID)
	expect(t, srv, net.EventConnected, cli.ID())
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
func sendAll(t *testing.T, h *net.Host, to net.HostID, count int, between func(i int)) {
	for i := 0; i < count; i++ {
		if between != nil {
			between(i)
		}
		for {
			err := h.Send(to, net.Reliable, message(i))
			if err == nil {
				break
			}
			if !errors.Is(err, net.ErrSendQueueFull) {
				t.Errorf("send %d: %v", i, err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// receiveAll checks that messages [0, count) arrive exactly once, in order,
// intact.
func receiveAll(t *testing.T, h *net.Host, from net.HostID, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		e := expect(t, h, net.EventMessage, from)
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
		srv, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		n.SetConditions(vnet.Conditions{Loss: 0.2, Reorder: 0.1, Duplicate: 0.1, Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond})
		const count = 10000
		go sendAll(t, cli, net.ServerID, count, nil)
		receiveAll(t, srv, cli.ID(), count)
		st, _ := cli.LinkStats(net.ServerID)
		if st.Retransmits == 0 {
			t.Errorf("no retransmits under 20%% loss: %+v", st)
		}
		if d := n.Stats(); d.Duplicated == 0 || d.Dropped.Loss == 0 {
			t.Errorf("impairment not applied: %+v", d)
		}
		t.Logf("retransmits %d, datagrams out %d, replays dropped %d", st.Retransmits, st.DatagramsOut, srv.Stats().Drops[net.DropReplay])
	})
}

func TestUnreliableNeverOlderAfterNewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(2)
		defer n.Close()
		srv, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		n.SetConditions(vnet.Conditions{Loss: 0.05, Reorder: 0.02, Duplicate: 0.2, Delay: 5 * time.Millisecond, Jitter: time.Millisecond})
		const count = 2000
		go func() {
			for i := 1; i <= count; i++ {
				var b [8]byte
				binary.LittleEndian.PutUint32(b[:], uint32(i))
				for ch := uint8(0); ch < 2; ch++ {
					if err := cli.Send(net.ServerID, net.Unreliable.OnChannel(ch), b[:]); err != nil {
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
			if e.Kind != net.EventMessage || e.Delivery.Reliable {
				continue
			}
			seq := binary.LittleEndian.Uint32(e.Data)
			if seq <= last[e.Delivery.Channel] {
				t.Fatalf("channel %d: message %d delivered after %d", e.Delivery.Channel, seq, last[e.Delivery.Channel])
			}
			last[e.Delivery.Channel] = seq
			got++
		}
		stale := srv.Stats().Drops[net.DropStale]
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
		srv, cli, cconn := vpair(t, n, net.Config{}, net.Config{})
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
		if d[net.DropReplay] != 1 || d[net.DropBadSeal] != 1 {
			t.Fatalf("drops: replay %d, bad seal %d; want 1 and 1", d[net.DropReplay], d[net.DropBadSeal])
		}
		ls, _ := srv.LinkStats(cli.ID())
		if ls.Drops[net.DropReplay] != 1 || ls.Drops[net.DropBadSeal] != 1 {
			t.Fatalf("link drops: %v", ls.Drops)
		}
		// The link carries on.
		if err := cli.Send(net.ServerID, net.Reliable, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, srv, net.EventMessage, cli.ID()); string(e.Data) != "still here" {
			t.Fatalf("got %q", e.Data)
		}
	})
}

func TestVanishedClientTimesOutAndIsFreed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(4)
		defer n.Close()
		cfg := net.Config{Timeout: 3 * time.Second, PingInterval: 500 * time.Millisecond}
		srv, cli, _ := vpair(t, n, cfg, cfg)
		id := cli.ID()
		// The client vanishes: nothing it sends arrives any more.
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return from == cliAddr })
		start := time.Now()
		e := expect(t, srv, net.EventDisconnected, id)
		took := time.Since(start)
		if !errors.Is(e.Err, net.ErrTimeout) {
			t.Fatalf("reason %v, want timeout", e.Err)
		}
		if took < cfg.Timeout-cfg.PingInterval || took > cfg.Timeout+time.Second {
			t.Fatalf("detected after %v, timeout %v", took, cfg.Timeout)
		}
		if _, ok := srv.LinkStats(id); ok || srv.Stats().Links != 0 {
			t.Fatalf("server still holds the client: %+v", srv.Stats())
		}
		e = expect(t, cli, net.EventDisconnected, net.ServerID)
		if !errors.Is(e.Err, net.ErrTimeout) {
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
		srv, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		fwd := netip.MustParseAddrPort("10.0.0.9:9000")
		forwarder(t, n, fwd)
		n.SetConditions(vnet.Conditions{Loss: 0.05, Delay: 3 * time.Millisecond, Jitter: time.Millisecond})
		const count = 5000
		swaps := 0
		go sendAll(t, cli, net.ServerID, count, func(i int) {
			if i%100 != 50 {
				return
			}
			to := srvAddr
			if (i/100)%2 == 0 {
				to = fwd
			}
			if err := cli.SetPath(net.ServerID, cli.DirectPath(to)); err != nil {
				t.Errorf("set path: %v", err)
			}
			swaps++
		})
		receiveAll(t, srv, cli.ID(), count)
		if swaps < 40 {
			t.Fatalf("only %d path swaps", swaps)
		}
		// Both directions kept working: the server followed the client.
		if err := srv.Send(cli.ID(), net.Reliable, []byte("back")); err != nil {
			t.Fatal(err)
		}
		expect(t, cli, net.EventMessage, net.ServerID)
	})
}

func TestRTTAndLossEstimates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(6)
		defer n.Close()
		cfg := net.Config{PingInterval: 100 * time.Millisecond, Timeout: 30 * time.Second}
		_, cli, _ := vpair(t, n, cfg, cfg)
		n.SetLinkConditions(srvAddr.Addr(), cliAddr.Addr(), vnet.Conditions{Delay: 40 * time.Millisecond, Loss: 0.1})
		n.SetLinkConditions(cliAddr.Addr(), srvAddr.Addr(), vnet.Conditions{Delay: 40 * time.Millisecond})
		time.Sleep(60 * time.Second)
		st, _ := cli.LinkStats(net.ServerID)
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
		srv, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		n.SetConditions(vnet.Conditions{Loss: 0.1, Delay: 10 * time.Millisecond})
		const count = 300
		sendAll(t, cli, net.ServerID, count, nil)
		if err := cli.Disconnect(net.ServerID); err != nil {
			t.Fatal(err)
		}
		if err := cli.Send(net.ServerID, net.Reliable, []byte("late")); !errors.Is(err, net.ErrLinkClosing) {
			t.Fatalf("send while closing: %v", err)
		}
		receiveAll(t, srv, cli.ID(), count)
		e := expect(t, srv, net.EventDisconnected, cli.ID())
		if !errors.Is(e.Err, net.ErrClosedByPeer) {
			t.Fatalf("reason %v", e.Err)
		}
		expect(t, cli, net.EventDisconnected, net.ServerID)
	})
}

func TestKickAndShutdownReasons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(8)
		defer n.Close()
		srv, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		if err := srv.Kick(cli.ID(), "cheating"); err != nil {
			t.Fatal(err)
		}
		e := expect(t, cli, net.EventDisconnected, net.ServerID)
		var ce *net.CloseError
		if !errors.Is(e.Err, net.ErrKicked) || !errors.As(e.Err, &ce) || ce.Message != "cheating" {
			t.Fatalf("kick reason %v", e.Err)
		}

		c2conn, _ := n.Listen(netip.MustParseAddrPort("10.0.0.3:5000"))
		c2, _ := net.NewHost(c2conn, net.Config{})
		defer c2.Close()
		if err := c2.Dial(t.Context(), srvAddr); err != nil {
			t.Fatal(err)
		}
		expect(t, c2, net.EventConnected, net.ServerID)
		srv.Close()
		e = expect(t, c2, net.EventDisconnected, net.ServerID)
		if !errors.Is(e.Err, net.ErrShutdown) {
			t.Fatalf("shutdown reason %v", e.Err)
		}
	})
}

func TestDialRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(9)
		defer n.Close()
		sconn, _ := n.Listen(srvAddr)
		srv, _ := net.NewHost(sconn, net.Config{Accept: true, MaxLinks: 1})
		defer srv.Close()
		dial := func(addr string) error {
			c, _ := n.Listen(netip.MustParseAddrPort(addr))
			h, _ := net.NewHost(c, net.Config{HandshakeTimeout: 2 * time.Second})
			t.Cleanup(func() { h.Close() })
			return h.Dial(t.Context(), srvAddr)
		}
		if err := dial("10.0.0.2:1"); err != nil {
			t.Fatal(err)
		}
		if err := dial("10.0.0.2:2"); !errors.Is(err, net.ErrServerFull) {
			t.Fatalf("full server: %v", err)
		}
		restore := net.SetHelloVersion(99)
		err := dial("10.0.0.2:3")
		restore()
		var re *net.RejectError
		if !errors.Is(err, net.ErrVersionMismatch) || !errors.As(err, &re) || re.ServerVersion != net.ProtocolVersion {
			t.Fatalf("version: %v", err)
		}
		// A cookie changed in flight is refused.
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
			if len(b) == 128 && b[0] == 0x01 && b[44] != 0 { // a hello with a cookie (length at 44, cookie at 45)
				b[48] ^= 1
			}
			return false
		})
		if err := dial("10.0.0.2:4"); !errors.Is(err, net.ErrBadCookie) {
			t.Fatalf("bad cookie: %v", err)
		}
		// Nobody answering.
		if err := dial2(n, "10.0.0.2:5", netip.MustParseAddrPort("10.0.0.99:1")); !errors.Is(err, net.ErrHandshakeTimeout) {
			t.Fatalf("no server: %v", err)
		}
		if f := srv.Stats().HandshakeFailures; f != 3 {
			t.Fatalf("server counted %d handshake failures, want 3", f)
		}
	})
}

func dial2(n *vnet.Network, local string, to netip.AddrPort) error {
	c, _ := n.Listen(netip.MustParseAddrPort(local))
	h, _ := net.NewHost(c, net.Config{HandshakeTimeout: time.Second})
	defer h.Close()
	return h.Dial(context.Background(), to)
}

func TestEventQueueBackpressureKeepsReliableOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(10)
		defer n.Close()
		srv, cli, _ := vpair(t, n, net.Config{EventQueue: 16}, net.Config{})
		const count = 2000
		go sendAll(t, cli, net.ServerID, count, nil)
		time.Sleep(2 * time.Second) // the server's application is busy
		receiveAll(t, srv, cli.ID(), count)
	})
}

func TestSizeLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(11)
		defer n.Close()
		srv, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		if err := cli.Send(net.ServerID, net.Unreliable, make([]byte, net.MaxUnreliable+1)); !errors.Is(err, net.ErrTooLarge) {
			t.Fatalf("unreliable too large: %v", err)
		}
		if err := cli.Send(net.ServerID, net.Reliable, make([]byte, net.MaxReliable+1)); !errors.Is(err, net.ErrTooLarge) {
			t.Fatalf("reliable too large: %v", err)
		}
		if err := cli.Send(net.ServerID, net.Reliable, nil); !errors.Is(err, net.ErrEmpty) {
			t.Fatalf("empty: %v", err)
		}
		if err := cli.Send(12345, net.Reliable, []byte("x")); !errors.Is(err, net.ErrUnknownPeer) {
			t.Fatalf("unknown: %v", err)
		}
		// The largest of each fits (and fits one datagram, unreliable).
		n.SetConditions(vnet.Conditions{MTU: net.MaxDatagram})
		if err := cli.Send(net.ServerID, net.Unreliable, make([]byte, net.MaxUnreliable)); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, srv, net.EventMessage, cli.ID()); len(e.Data) != net.MaxUnreliable {
			t.Fatalf("got %d bytes", len(e.Data))
		}
		big := bytes.Repeat([]byte{7}, net.MaxReliable)
		if err := cli.Send(net.ServerID, net.Reliable, big); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, srv, net.EventMessage, cli.ID()); !bytes.Equal(e.Data, big) {
			t.Fatalf("got %d bytes", len(e.Data))
		}
		if d := n.Stats().Dropped; d.MTU != 0 {
			t.Fatalf("%d datagrams over the MTU", d.MTU)
		}
	})
}

func TestCipherNegotiation(t *testing.T) {
	for _, tc := range []struct {
		client, server, want net.Cipher
	}{
		{net.AES256GCM, net.AES256GCM, net.AES256GCM},
		{net.ChaCha20Poly1305, net.AES256GCM, net.ChaCha20Poly1305},
		{net.AES256GCM, net.ChaCha20Poly1305, net.ChaCha20Poly1305},
		{net.ChaCha20Poly1305, net.ChaCha20Poly1305, net.ChaCha20Poly1305},
	} {
		t.Run(fmt.Sprintf("%v-%v", tc.client, tc.server), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := vnet.New(30)
				defer n.Close()
				srv, cli, _ := vpair(t, n, net.Config{Cipher: tc.server}, net.Config{Cipher: tc.client})
				cs, _ := cli.LinkStats(net.ServerID)
				ss, _ := srv.LinkStats(cli.ID())
				if cs.Cipher != tc.want || ss.Cipher != tc.want {
					t.Fatalf("client uses %v, server %v; want %v", cs.Cipher, ss.Cipher, tc.want)
				}
				cli.Send(net.ServerID, net.Reliable, []byte("sealed"))
				if e := expect(t, srv, net.EventMessage, cli.ID()); string(e.Data) != "sealed" {
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
		srv, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		n.SetConditions(vnet.Conditions{Delay: 20 * time.Millisecond}) // 40 ms round trip
		synctest.Wait()

		t0 := time.Now()
		if err := srv.Disconnect(cli.ID()); err != nil {
			t.Fatal(err)
		}
		e, ok := srv.Poll()
		if !ok || e.Kind != net.EventDisconnected || !errors.Is(e.Err, net.ErrClosedLocally) {
			t.Fatalf("after an idle Disconnect: %v %v, want the link ended at once", e, ok)
		}
		if d := time.Since(t0); d != 0 {
			t.Fatalf("idle Disconnect took %v of virtual time", d)
		}
		expect(t, cli, net.EventDisconnected, net.ServerID)

		// With a message in flight: ends once it is acknowledged (one
		// round trip), well before a 100 ms housekeeping period would add.
		n2 := vnet.New(18)
		defer n2.Close()
		srv2, cli2, _ := vpair(t, n2, net.Config{}, net.Config{})
		n2.SetConditions(vnet.Conditions{Delay: 20 * time.Millisecond})
		synctest.Wait()
		if err := cli2.Send(net.ServerID, net.Reliable, []byte("last words")); err != nil {
			t.Fatal(err)
		}
		t0 = time.Now()
		if err := cli2.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d < 40*time.Millisecond || d >= 90*time.Millisecond {
			t.Fatalf("Close with a message in flight took %v of virtual time, want one round trip (40 ms) plus a tick", d)
		}
		m := expect(t, srv2, net.EventMessage, cli2.ID())
		if string(m.Data) != "last words" {
			t.Fatalf("got %q", m.Data)
		}
	})
}
