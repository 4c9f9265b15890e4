package net_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// Hosts over real loopback sockets that read and write in batches
// (sendmmsg/recvmmsg on Linux). The vnet tests cover the per-datagram path.

// batchCounter wraps a host's UDP conn and counts its batch calls.
type batchCounter struct {
	net.PacketConn
	bw          net.BatchWriter
	br          net.BatchReader
	multiWrites atomic.Int64 // WriteBatch calls with more than one datagram
	written     atomic.Int64 // datagrams written by WriteBatch
	multiReads  atomic.Int64 // ReadBatch calls that returned more than one
}

func (c *batchCounter) WriteBatch(ms []net.Message) (int, error) {
	n, err := c.bw.WriteBatch(ms)
	if len(ms) > 1 {
		c.multiWrites.Add(1)
	}
	c.written.Add(int64(n))
	return n, err
}

func (c *batchCounter) ReadBatch(ms []net.Message) (int, error) {
	n, err := c.br.ReadBatch(ms)
	if n > 1 {
		c.multiReads.Add(1)
	}
	return n, err
}

// batchHost starts a host on a loopback socket wrapped in a batchCounter;
// it skips the test where the socket does not batch.
func batchHost(t *testing.T, cfg net.Config) (*net.Host, *batchCounter) {
	t.Helper()
	conn, err := net.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bw, okw := conn.(net.BatchWriter)
	br, okr := conn.(net.BatchReader)
	if !okw || !okr {
		conn.Close()
		t.Skip("this platform's UDP conn does not batch")
	}
	c := &batchCounter{PacketConn: conn, bw: bw, br: br}
	h, err := net.NewHost(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, c
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBatchedTransportCountsEveryDatagram streams reliable messages over
// batching sockets, then checks that what each host counted out is what the
// other counted in.
func TestBatchedTransportCountsEveryDatagram(t *testing.T) {
	srv, sconn := batchHost(t, net.Config{Accept: true})
	cli, cconn := batchHost(t, net.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	expect(t, cli, net.EventConnected, net.ServerID)
	expect(t, srv, net.EventConnected, cli.ID())

	// A 64 KiB message on an idle link is flushed at once: about 60
	// datagrams in one batch.
	big := bytes.Repeat([]byte("batch"), 64<<10/5)
	if err := cli.Send(net.ServerID, net.Reliable, big); err != nil {
		t.Fatal(err)
	}
	if e := expect(t, srv, net.EventMessage, cli.ID()); !bytes.Equal(e.Data, big) {
		t.Fatalf("64 KiB message: got %d bytes", len(e.Data))
	}
	if cconn.multiWrites.Load() == 0 {
		t.Fatal("the 64 KiB message did not go out as a batch")
	}
	const count = 3000
	go sendAll(t, cli, net.ServerID, count, nil)
	receiveAll(t, srv, cli.ID(), count)

	eventually(t, "traffic counters", func() (bool, string) {
		cs, ss := cli.Stats().Traffic, srv.Stats().Traffic
		cl, _ := cli.LinkStats(net.ServerID)
		sl, _ := srv.LinkStats(cli.ID())
		// A datagram can be counted as a replay (DropReplay, before the
		// link counts it) when its writer lost the CPU for so long that
		// more than the replay window of newer ones overtook it: the
		// machine's other load, not the batching. KCP sends it again.
		ok := cs.DatagramsOut == ss.DatagramsIn && cs.BytesOut == ss.BytesIn &&
			ss.DatagramsOut == cs.DatagramsIn && ss.BytesOut == cs.BytesIn &&
			cl.DatagramsOut == sl.DatagramsIn+sl.Drops[net.DropReplay] && sl.DatagramsOut == cl.DatagramsIn+cl.Drops[net.DropReplay]
		return ok, fmt.Sprintf("client host %+v, server host %+v; client link %+v, server link %+v; drops %v %v", cs, ss, cl.Traffic, sl.Traffic, srv.Stats().Drops, sl.Drops)
	})
	sl, _ := srv.LinkStats(cli.ID())
	t.Logf("client: %d datagrams in %d multi-datagram writes; server: %d multi-datagram reads, %d replays dropped",
		cconn.written.Load(), cconn.multiWrites.Load(), sconn.multiReads.Load(), sl.Drops[net.DropReplay])
}

// TestBatchedRelayFanout has the server forward relay frames with several
// records (one per receiver) over a batching socket, and checks delivery
// and the relayed counters.
func TestBatchedRelayFanout(t *testing.T) {
	srv, sconn := batchHost(t, net.Config{Accept: true, RelayRate: 1 << 20, RelayPolicy: func(from, to net.HostID) bool { return true }})
	c := dialAll(t, srv, 4, func(int) *net.Host { h, _ := batchHost(t, net.Config{}); return h })
	peer(t, c)
	// Small unreliable group messages: each goes up as one datagram with a
	// record per receiver, which the server forwards as one batch. Paced so
	// that no socket buffer overflows.
	others := []net.HostID{c[1].ID(), c[2].ID(), c[3].ID()}
	floodGroup(t, c, 300, func(msg []byte) error { return c[0].SendMulti(others, net.Unreliable, nil, msg) })
	if sconn.multiWrites.Load() == 0 {
		t.Fatalf("the server forwarded no relay frame as a batch: %+v, written %d", srv.Stats(), sconn.written.Load())
	}
	eventually(t, "relayed counters", func() (bool, string) {
		var in uint64
		for _, h := range c {
			for _, p := range c {
				if p == h {
					continue
				}
				st, _ := h.LinkStats(p.ID())
				in += st.DatagramsIn
			}
		}
		rs := srv.Stats()
		ok := rs.Relayed.DatagramsOut == in && rs.Drops.Total() == 0
		return ok, fmt.Sprintf("server relayed %d, drops %v; peers read %d", rs.Relayed.DatagramsOut, rs.Drops, in)
	})
}

func TestBatchedServerFanout(t *testing.T) {
	gt := new(groupTable)
	srv, sconn := batchHost(t, net.Config{Accept: true, RelayRate: 1 << 20, GroupMembers: gt.members,
		RelayPolicy: func(from, to net.HostID) bool { return true }})
	c := dialAll(t, srv, 4, func(int) *net.Host { h, _ := batchHost(t, net.Config{}); return h })
	peer(t, c)
	const g = net.HostID(900)
	gt.set(g, ids(c...)...)
	// Peers on the relay path: each group message goes up once and the
	// server writes its three sealed copies as one batch. Paced so that no
	// socket buffer overflows.
	others := ids(c[1:]...)
	const count = 300
	floodGroup(t, c, count, func(msg []byte) error { return c[0].SendGroup(g, others, net.Unreliable, nil, msg) })
	if sconn.multiWrites.Load() == 0 {
		t.Fatalf("the server wrote no fan-out as a batch: %+v, written %d", srv.Stats(), sconn.written.Load())
	}
	eventually(t, "fan-out counters", func() (bool, string) {
		rs := srv.Stats()
		ok := rs.Fanned.DatagramsIn == count && rs.Fanned.DatagramsOut == 3*count && rs.Drops.Total() == 0
		return ok, fmt.Sprintf("server fanned %+v, drops %v", rs.Fanned, rs.Drops)
	})
}

// floodGroup sends count numbered messages from c[0] with send, paced so
// that no socket buffer overflows, and checks that every other client gets
// each of them once, in order, through the server.
func floodGroup(t *testing.T, c []*net.Host, count int, send func(msg []byte) error) {
	t.Helper()
	for i := range count {
		if err := send([]byte(fmt.Sprintf("message %d", i))); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	for _, r := range c[1:] {
		for i := range count {
			e := expect(t, r, net.EventMessage, c[0].ID())
			if want := fmt.Sprintf("message %d", i); string(e.Data) != want || !e.Relayed {
				t.Fatalf("got %q (relayed %v), want %q relayed", e.Data, e.Relayed, want)
			}
		}
	}
}
