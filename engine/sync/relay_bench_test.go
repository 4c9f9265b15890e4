package sync_test

import (
	"context"
	"encoding/binary"
	"fmt"
	stdnet "net"
	"net/netip"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// BenchmarkRelayFanout measures copies delivered per second when one member
// of a group of N sends 64-byte unreliable messages to the group and the
// server fans them out, against a raw UDP fan-out (one socket that receives
// each datagram and re-sends it to N-1 sockets, no sealing) in the same run.
// skein is Client.Send: one fan-out frame up, a copy sealed by the server
// for each member; skein-records is the per-peer path (net.Host.SendMulti:
// N-1 datagrams sealed end to end by the sender, packed into relay records,
// forwarded unchanged). Receivers on both sides only count what reaches
// their socket (a Skein client's socket swallows the copies once counted),
// so the figure is the sender's and the relay's work, not N full client
// stacks sharing two cores:
//
//	go test -run '^$' -bench RelayFanout -benchtime 20000x ./engine/sync/
func BenchmarkRelayFanout(b *testing.B) {
	for _, n := range []int{4, 16, 64} {
		b.Run(fmt.Sprintf("raw/N=%d", n), func(b *testing.B) { rawFanout(b, n) })
		b.Run(fmt.Sprintf("skein/N=%d", n), func(b *testing.B) { skeinFanout(b, n, false) })
		b.Run(fmt.Sprintf("skein-records/N=%d", n), func(b *testing.B) { skeinFanout(b, n, true) })
	}
}

func loopbackUDP(b *testing.B) *stdnet.UDPConn {
	c, err := stdnet.ListenUDP("udp", &stdnet.UDPAddr{IP: stdnet.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	c.SetReadBuffer(net.SocketBuffer)
	c.SetWriteBuffer(net.SocketBuffer)
	return c
}

// measure runs send b.N times, then waits until delivered stops growing,
// and reports copies/s.
func measure(b *testing.B, copiesPerSend int, delivered *atomic.Int64, send func()) {
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var last atomic.Int64 // time of the last delivery seen, ns since start
	for range b.N {
		send()
	}
	b.StopTimer()
	seen, quiet := delivered.Load(), time.Now()
	for time.Since(quiet) < 200*time.Millisecond && delivered.Load() < int64(b.N*copiesPerSend) {
		time.Sleep(5 * time.Millisecond)
		if d := delivered.Load(); d != seen {
			seen, quiet = d, time.Now()
			last.Store(int64(time.Since(start)))
		}
	}
	elapsed := time.Duration(last.Load())
	if elapsed == 0 {
		elapsed = time.Since(start)
	}
	got := delivered.Load()
	b.ReportMetric(float64(got)/elapsed.Seconds(), "copies/s")
	b.ReportMetric(100*float64(got)/float64(b.N*copiesPerSend), "delivered-%")
}

func rawFanout(b *testing.B, n int) {
	relay, sender := loopbackUDP(b), loopbackUDP(b)
	var recv []*stdnet.UDPConn
	for range n - 1 {
		recv = append(recv, loopbackUDP(b))
	}
	var delivered atomic.Int64
	var wg stdsync.WaitGroup
	for _, r := range recv {
		wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := r.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				delivered.Add(1)
			}
		})
	}
	addrs := make([]*stdnet.UDPAddr, len(recv))
	for i, r := range recv {
		addrs[i] = r.LocalAddr().(*stdnet.UDPAddr)
	}
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			k, _, err := relay.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			for _, a := range addrs {
				relay.WriteToUDP(buf[:k], a)
			}
		}
	})
	msg := make([]byte, 64)
	to := relay.LocalAddr().(*stdnet.UDPAddr)
	measure(b, n-1, &delivered, func() { sender.WriteToUDP(msg, to) })
	relay.Close()
	sender.Close()
	for _, r := range recv {
		r.Close()
	}
	wg.Wait()
}

func skeinFanout(b *testing.B, n int, records bool) {
	// No per-client relay cap: this measures what the relay can carry.
	// Every client comes from 127.0.0.1: no per-source handshake rate.
	srv, err := sync.ListenServer("127.0.0.1:0", sync.ServerConfig{Net: net.Config{RelayRate: 1 << 30, SourceHandshakeRate: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	go func() { // the server application drains its events
		for {
			if _, err := srv.Next(context.Background()); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clients := make([]*sync.Client, n)
	ids := make([]net.HostID, n)
	var delivered atomic.Int64
	var counting atomic.Bool
	for i := range clients {
		conn, err := net.ListenUDP("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		if i > 0 {
			conn = &countingConn{PacketConn: conn, on: &counting, delivered: &delivered, server: srv.Host().LocalAddr()}
		}
		// Peers on loopback would punch through at once: keep them on the
		// relay, which is what this measures.
		c, err := sync.NewClient(conn, sync.ClientConfig{Net: net.Config{DisableP2P: true}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.Connect(ctx, srv.Host().LocalAddr()); err != nil {
			b.Fatal(err)
		}
		clients[i], ids[i] = c, c.ID()
	}
	time.Sleep(50 * time.Millisecond) // the server registers the last connects
	g, err := srv.CreateGroup(ids, nil)
	if err != nil {
		b.Fatal(err)
	}
	var wg stdsync.WaitGroup
	stop, cancelAll := context.WithCancel(context.Background())
	for _, c := range clients {
		wg.Go(func() {
			for {
				if _, err := c.Next(stop); err != nil {
					return
				}
			}
		})
	}
	// Wait until the sender knows every member and peer link.
	for len(clients[0].Members(g)) < n {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	counting.Store(true)
	msg := make([]byte, 64)
	send := func() { clients[0].Send(g, net.Unreliable, msg) }
	if records {
		head := []byte{2, byte(g), byte(g >> 8), byte(g >> 16), byte(g >> 24)} // engine/sync's group tag
		send = func() { clients[0].Host().SendMulti(ids[1:], net.Unreliable, head, msg) }
	}
	measure(b, n-1, &delivered, send)
	counting.Store(false)
	b.ReportMetric(float64(srv.Host().Stats().Relayed.DatagramsOut)/float64(b.N*(n-1))*100, "relayed-%")
	cancelAll()
	wg.Wait()
}

// fannedCopy is the size of the server's copy of a 64-byte group message:
// data header 11, frame header 3, sender 4, channel and sequence 5, group
// tag 5, the message, AEAD tag 16.
const fannedCopy = 11 + 3 + 4 + 5 + 5 + 64 + 16

// countingConn counts and swallows the peer messages that reach a receiver
// while on is set: relayed peer datagrams, and the server's fanned copies
// (told apart from the rest of the server link's traffic by their size);
// everything else goes through.
type countingConn struct {
	net.PacketConn
	on        *atomic.Bool
	delivered *atomic.Int64
	server    netip.AddrPort
}

func (c *countingConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.on.Load() || from != c.server || n < 5 || b[0] != 0x10 ||
			binary.LittleEndian.Uint32(b[1:5]) == uint32(net.ServerID) && n != fannedCopy {
			return n, from, err
		}
		c.delivered.Add(1)
	}
}
