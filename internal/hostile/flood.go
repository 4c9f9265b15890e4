package hostile

import (
	"context"
	"fmt"
	stdnet "net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
)

// Flood sends datagrams to one target from many sockets at a paced rate,
// in batches (sendmmsg on Linux), and stops by itself after Count
// datagrams or Duration, whichever comes first.
type Flood struct {
	// Target is where every datagram goes.
	Target netip.AddrPort
	// Sources are the local addresses to bind, one socket each ("127.0.0.50:0");
	// datagrams go out from them in turn. Empty: one socket on 127.0.0.1.
	Sources []string
	// Rate is datagrams per second over all sockets; 0: as fast as the
	// sockets take them.
	Rate int
	// Count bounds the datagrams sent (required, > 0).
	Count int
	// Duration bounds the time spent (required, > 0).
	Duration time.Duration
	// Batch is datagrams per write call; 0 means 64.
	Batch int
	// Make returns datagram i to send from src; it may reuse buf (its
	// previous result for the same batch slot) and return it.
	Make func(i int, src netip.AddrPort, buf []byte) []byte
}

// FloodStats says what a flood sent.
type FloodStats struct {
	Datagrams, Bytes int
	Elapsed          time.Duration
}

// Rate is datagrams per second achieved.
func (s FloodStats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Datagrams) / s.Elapsed.Seconds()
}

// SourcePorts returns n local addresses on ip with port 0 (one socket
// each, so n source ports).
func SourcePorts(ip string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = ip + ":0"
	}
	return out
}

// Run floods until Count, Duration or ctx ends it.
func (f Flood) Run(ctx context.Context) (FloodStats, error) {
	if f.Count <= 0 || f.Duration <= 0 || f.Make == nil {
		return FloodStats{}, fmt.Errorf("hostile: flood needs Count, Duration and Make")
	}
	srcs := f.Sources
	if len(srcs) == 0 {
		srcs = []string{"127.0.0.1:0"}
	}
	batch := f.Batch
	if batch <= 0 {
		batch = 64
	}
	type sock struct {
		c    *stdnet.UDPConn
		p    *ipv4.PacketConn
		addr netip.AddrPort
		msgs []ipv4.Message
		bufs [][]byte
	}
	socks := make([]*sock, 0, len(srcs))
	defer func() {
		for _, s := range socks {
			s.c.Close()
		}
	}()
	dst := stdnet.UDPAddrFromAddrPort(f.Target)
	for _, a := range srcs {
		c, err := Listen(a)
		if err != nil {
			return FloodStats{}, err
		}
		_ = c.SetWriteBuffer(4 << 20)
		s := &sock{c: c, p: ipv4.NewPacketConn(c), addr: c.LocalAddr().(*stdnet.UDPAddr).AddrPort(), msgs: make([]ipv4.Message, batch), bufs: make([][]byte, batch)}
		socks = append(socks, s)
	}
	ctx, cancel := context.WithTimeout(ctx, f.Duration)
	defer cancel()
	var st FloodStats
	start := time.Now()
	const tick = time.Millisecond
	next := start
	turn := 0
	for st.Datagrams < f.Count && ctx.Err() == nil {
		// How many datagrams are due by now at the paced rate.
		due := f.Count - st.Datagrams
		if f.Rate > 0 {
			due = min(due, int(time.Since(start).Seconds()*float64(f.Rate))+1-st.Datagrams)
			if due <= 0 {
				next = next.Add(tick)
				time.Sleep(time.Until(next))
				continue
			}
		}
		for due > 0 && ctx.Err() == nil {
			s := socks[turn%len(socks)]
			turn++
			n := min(due, batch)
			for j := range n {
				s.bufs[j] = f.Make(st.Datagrams+j, s.addr, s.bufs[j][:0])
				s.msgs[j] = ipv4.Message{Buffers: [][]byte{s.bufs[j]}, Addr: dst}
			}
			sent, err := s.p.WriteBatch(s.msgs[:n], 0)
			if err != nil {
				// A full socket buffer: count what went and go on.
				sent = max(sent, 0)
			}
			for j := range sent {
				st.Bytes += len(s.bufs[j])
			}
			st.Datagrams += sent
			due -= n
			if sent == 0 {
				time.Sleep(tick)
				break
			}
		}
	}
	st.Elapsed = time.Since(start)
	return st, nil
}
