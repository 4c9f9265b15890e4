//go:build linux

package net

import (
	"bytes"
	"errors"
	"fmt"
	stdnet "net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tests of the sendmmsg/recvmmsg path on real loopback sockets. Hosts on
// vnet never take it, so the transport tests exercise the per-datagram path;
// host_batch_test.go runs hosts over it.

// testSlot is the read buffer of these tests (as a Host's reader's).
const testSlot = 2048

// loopbackConn listens on ip:0 (an address in 127.0.0.0/8) and returns the
// conn as the batching udpConn; it is closed when t ends.
func loopbackConn(t testing.TB, ip string) *udpConn {
	t.Helper()
	c, err := stdnet.ListenUDP("udp4", stdnet.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(SocketBuffer)
	_ = c.SetWriteBuffer(SocketBuffer)
	u := UDP(c).(*udpConn)
	if u.sys.raw == nil {
		t.Fatal("no raw conn: the batch path is not in use")
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// datagram returns the i-th test datagram: its index, then a pattern.
func datagram(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i*31 + j)
	}
	b[0], b[1] = byte(i), byte(i>>8)
	return b
}

// readAll reads with ReadBatch until want datagrams came, and returns them
// with their sources, in order.
func readAll(t *testing.T, c *udpConn, want int) (got [][]byte, from []netip.AddrPort) {
	t.Helper()
	msgs := make([]Message, 16)
	for i := range msgs {
		msgs[i].Buf = make([]byte, testSlot)
	}
	deadline := time.AfterFunc(5*time.Second, func() { c.Close() })
	defer deadline.Stop()
	for len(got) < want {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), want, err)
		}
		if n < 1 || n > len(msgs) {
			t.Fatalf("ReadBatch returned %d", n)
		}
		for _, m := range msgs[:n] {
			if m.Truncated {
				t.Fatalf("datagram of %d bytes truncated", m.N)
			}
			got = append(got, bytes.Clone(m.Buf[:m.N]))
			from = append(from, m.Addr)
		}
	}
	return got, from
}

func TestBatchMixedDestinations(t *testing.T) {
	src := loopbackConn(t, "127.0.0.1")
	dsts := []*udpConn{loopbackConn(t, "127.0.0.1"), loopbackConn(t, "127.0.0.2"), loopbackConn(t, "127.0.0.3")}
	const count = 3*maxBatch + 7 // several sendmmsg calls
	var msgs []Message
	for i := range count {
		msgs = append(msgs, Message{Buf: datagram(i, 100+i%900), Addr: dsts[i%3].LocalAddr()})
	}
	n, err := src.WriteBatch(msgs)
	if n != count || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, count)
	}
	for i, m := range msgs {
		if m.N != len(m.Buf) {
			t.Fatalf("message %d: N = %d, want %d", i, m.N, len(m.Buf))
		}
	}
	for d, dst := range dsts {
		got, from := readAll(t, dst, count/3+btoi(d < count%3))
		for k, b := range got {
			i := d + 3*k
			if !bytes.Equal(b, msgs[i].Buf) {
				t.Fatalf("%v: datagram %d differs", dst.LocalAddr(), i)
			}
			if from[k] != src.LocalAddr() {
				t.Fatalf("datagram %d from %v, want %v", i, from[k], src.LocalAddr())
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestBatchSkipsRefusedDatagrams puts datagrams the kernel or the address
// family refuses in the middle of a batch: WriteBatch stops at each with
// its error, and writeMessages writes all the others.
func TestBatchSkipsRefusedDatagrams(t *testing.T) {
	src, dst := loopbackConn(t, "127.0.0.1"), loopbackConn(t, "127.0.0.1")
	to := dst.LocalAddr()
	msgs := []Message{
		{Buf: datagram(0, 64), Addr: to},
		{Buf: datagram(1, 64), Addr: to},
		{Buf: make([]byte, 70000), Addr: to}, // EMSGSIZE
		{Buf: datagram(3, 64), Addr: to},
		{Buf: datagram(4, 64), Addr: netip.AddrPortFrom(to.Addr(), 0)},           // EINVAL: port 0
		{Buf: datagram(5, 64), Addr: netip.MustParseAddrPort("[2001:db8::1]:9")}, // not IPv4: WriteTo refuses
		{Buf: datagram(6, 64), Addr: netip.AddrPort{}},                           // invalid
		{Buf: datagram(7, 64), Addr: to},
	}
	n, err := src.WriteBatch(msgs)
	if n != 2 || !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("WriteBatch = %d, %v; want 2, EMSGSIZE", n, err)
	}
	readAll(t, dst, 2)
	n, err = src.WriteBatch(msgs[4:])
	if n != 0 || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("WriteBatch at port 0 = %d, %v; want 0, EINVAL", n, err)
	}
	writeMessages(src, msgs)
	var sent []int
	for i, m := range msgs {
		if m.N > 0 {
			sent = append(sent, i)
		}
	}
	if fmt.Sprint(sent) != "[0 1 3 7]" {
		t.Fatalf("written: %v, want [0 1 3 7]", sent)
	}
	got, _ := readAll(t, dst, len(sent))
	for k, i := range sent {
		if !bytes.Equal(got[k], msgs[i].Buf) {
			t.Fatalf("datagram %d differs", i)
		}
	}
}

// TestBatchWaitsWhenTheSocketIsFull makes the system call report EAGAIN and
// partial sends, as a full send buffer does: the batch waits for the poller
// and resumes where the kernel stopped, in order. (Loopback never fills a
// UDP send buffer, so the EAGAIN is faked; with it, the fake sends an empty
// datagram straight on the socket, to a sink, so that the socket signals
// "writable" to the poller as a draining buffer would.)
func TestBatchWaitsWhenTheSocketIsFull(t *testing.T) {
	for _, segmented := range []bool{false, true} {
		t.Run(fmt.Sprintf("segmented=%v", segmented), func(t *testing.T) {
			src, dst, sink := loopbackConn(t, "127.0.0.1"), loopbackConn(t, "127.0.0.1"), loopbackConn(t, "127.0.0.1")
			if segmented && !src.sys.gso.Load() {
				t.Skip("no UDP segmentation offload in this kernel")
			}
			src.sys.gso.Store(segmented)
			sinkAddr := &unix.SockaddrInet4{Port: int(sink.LocalAddr().Port()), Addr: [4]byte{127, 0, 0, 1}}
			var calls, eagains atomic.Int64
			real := src.sys.send
			src.sys.send = func(fd uintptr, hdrs *mmsghdr, n int) (int, syscall.Errno) {
				switch c := calls.Add(1); {
				case c%3 == 1:
					eagains.Add(1)
					if err := unix.Sendto(int(fd), nil, 0, sinkAddr); err != nil {
						t.Errorf("nudge: %v", err)
					}
					return -1, unix.EAGAIN
				case c%3 == 2 && n > 1:
					return real(fd, hdrs, 1+n/3) // a partial send
				}
				return real(fd, hdrs, n)
			}
			count := 100
			if segmented {
				count = 600 // 64 datagrams per call, 1 header each
			}
			msgs := make([]Message, count)
			for i := range msgs {
				msgs[i] = Message{Buf: datagram(i, 200), Addr: dst.LocalAddr()}
			}
			guard := time.AfterFunc(10*time.Second, func() { src.Close() }) // fail, do not hang
			n, err := src.WriteBatch(msgs)
			guard.Stop()
			if n != count || err != nil {
				t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, count)
			}
			if eagains.Load() < 2 || calls.Load() < 6 {
				t.Fatalf("%d calls, %d EAGAIN: the test did not exercise waiting", calls.Load(), eagains.Load())
			}
			got, _ := readAll(t, dst, count)
			for i := range got {
				if !bytes.Equal(got[i], msgs[i].Buf) {
					t.Fatalf("datagram %d out of order or corrupted", i)
				}
			}
		})
	}
}

// TestBatchSegmentedSends writes runs of equal-sized datagrams (a KCP
// flush), cut by a shorter one, another size and another destination:
// fewer headers than datagrams reach the kernel, and every datagram
// arrives on its own, intact and in order.
func TestBatchSegmentedSends(t *testing.T) {
	src, a, b := loopbackConn(t, "127.0.0.1"), loopbackConn(t, "127.0.0.1"), loopbackConn(t, "127.0.0.2")
	if !src.sys.gso.Load() {
		t.Skip("no UDP segmentation offload in this kernel")
	}
	var headers, calls atomic.Int64
	real := src.sys.send
	src.sys.send = func(fd uintptr, hdrs *mmsghdr, n int) (int, syscall.Errno) {
		calls.Add(1)
		headers.Add(int64(n))
		return real(fd, hdrs, n)
	}
	var sizes []int
	var dsts []*udpConn
	add := func(n, size int, d *udpConn) {
		for range n {
			sizes = append(sizes, size)
			dsts = append(dsts, d)
		}
	}
	add(70, 1078, a) // more than one call, more than maxSegments
	add(1, 500, a)   // ends a run
	add(5, 1078, a)
	add(3, 1078, b) // another destination
	add(4, 1200, a) // a longer size starts a new run
	add(1, 2, a)
	msgs := make([]Message, len(sizes))
	for i := range msgs {
		msgs[i] = Message{Buf: datagram(i, sizes[i]), Addr: dsts[i].LocalAddr()}
	}
	if n, err := src.WriteBatch(msgs); n != len(msgs) || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, len(msgs))
	}
	for i, m := range msgs {
		if m.N != len(m.Buf) {
			t.Fatalf("datagram %d: N = %d, want %d", i, m.N, len(m.Buf))
		}
	}
	// First call (64 datagrams): 56 (the 60 KiB bound) and 8. Second call:
	// 6 and the shorter one that ends the run, 5, 3 to b, 4 and the
	// shorter last one.
	if h := headers.Load(); h != 6 || calls.Load() != 2 {
		t.Errorf("%d headers in %d calls for %d datagrams, want 6 in 2", h, calls.Load(), len(msgs))
	}
	for _, d := range []*udpConn{a, b} {
		var want [][]byte
		for i, m := range msgs {
			if dsts[i] == d {
				want = append(want, m.Buf)
			}
		}
		got, _ := readAll(t, d, len(want))
		for k := range want {
			if !bytes.Equal(got[k], want[k]) {
				t.Fatalf("%v: datagram %d of %d bytes arrived as %d bytes or out of order", d.LocalAddr(), k, len(want[k]), len(got[k]))
			}
		}
	}
}

// TestBatchSegmentationFallsBack fails segmented sends with EIO, as a way
// out without checksum offload does: the datagrams go one per header, and
// segmentation stays off for the conn.
func TestBatchSegmentationFallsBack(t *testing.T) {
	src, dst := loopbackConn(t, "127.0.0.1"), loopbackConn(t, "127.0.0.1")
	if !src.sys.gso.Load() {
		t.Skip("no UDP segmentation offload in this kernel")
	}
	var refused atomic.Int64
	real := src.sys.send
	src.sys.send = func(fd uintptr, hdrs *mmsghdr, n int) (int, syscall.Errno) {
		if hdrs.hdr.Controllen != 0 {
			refused.Add(1)
			return -1, unix.EIO
		}
		return real(fd, hdrs, n)
	}
	msgs := make([]Message, 20)
	for i := range msgs {
		msgs[i] = Message{Buf: datagram(i, 300), Addr: dst.LocalAddr()}
	}
	for round := range 2 {
		if n, err := src.WriteBatch(msgs); n != len(msgs) || err != nil {
			t.Fatalf("round %d: WriteBatch = %d, %v; want %d, nil", round, n, err, len(msgs))
		}
		got, _ := readAll(t, dst, len(msgs))
		for i := range got {
			if !bytes.Equal(got[i], msgs[i].Buf) {
				t.Fatalf("round %d: datagram %d differs", round, i)
			}
		}
	}
	if refused.Load() != 1 || src.sys.gso.Load() {
		t.Fatalf("%d segmented sends refused, segmentation on: %v; want 1, false", refused.Load(), src.sys.gso.Load())
	}
}

func TestBatchOnClosedConn(t *testing.T) {
	c := loopbackConn(t, "127.0.0.1")
	done := make(chan error, 1)
	go func() {
		msgs := []Message{{Buf: make([]byte, 100)}}
		_, err := c.ReadBatch(msgs)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it block in the poller
	start := time.Now()
	c.Close()
	select {
	case err := <-done:
		if !isClosed(err) {
			t.Fatalf("blocked ReadBatch after Close: %v, want net.ErrClosed", err)
		}
		t.Logf("ReadBatch returned %v after Close", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked 5 s after Close")
	}
	msgs := []Message{{Buf: []byte("x"), Addr: c.LocalAddr()}, {Buf: []byte("y"), Addr: c.LocalAddr()}}
	if n, err := c.WriteBatch(msgs); n != 0 || !isClosed(err) {
		t.Fatalf("WriteBatch after Close = %d, %v; want 0, net.ErrClosed", n, err)
	}
	writeMessages(c, msgs) // must end
}

func TestBatchReadTruncated(t *testing.T) {
	src, dst := loopbackConn(t, "127.0.0.1"), loopbackConn(t, "127.0.0.1")
	if _, err := src.WriteTo(datagram(1, 3000), dst.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := src.WriteTo(datagram(2, 50), dst.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{Buf: make([]byte, testSlot)}, {Buf: make([]byte, testSlot)}}
	var got []Message
	for len(got) < 2 {
		n, err := dst.ReadBatch(msgs[:2-len(got)])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msgs[:n]...)
	}
	if !got[0].Truncated || got[0].N != testSlot {
		t.Fatalf("3000-byte datagram: N %d, truncated %v", got[0].N, got[0].Truncated)
	}
	if got[1].Truncated || got[1].N != 50 {
		t.Fatalf("50-byte datagram: N %d, truncated %v", got[1].N, got[1].Truncated)
	}
	// One datagram at a time (recvfrom rather than recvmmsg).
	for _, size := range []int{3000, testSlot, 50} {
		if _, err := src.WriteTo(datagram(3, size), dst.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if n, err := dst.ReadBatch(msgs[:1]); n != 1 || err != nil {
			t.Fatalf("ReadBatch of one = %d, %v", n, err)
		}
		m := msgs[0]
		if m.Truncated != (size > testSlot) || m.N != min(size, testSlot) || m.Addr != src.LocalAddr() {
			t.Fatalf("%d-byte datagram read alone: N %d, truncated %v, from %v", size, m.N, m.Truncated, m.Addr)
		}
	}
}

// TestSockaddrConversion checks both socket families without opening an
// IPv6 socket: IPv4 destinations on an IPv6 socket go out IPv4-mapped and
// come back unmapped, as ReadFrom reports them.
func TestSockaddrConversion(t *testing.T) {
	for _, tc := range []struct {
		family int
		addr   string
		len    uint32 // 0: not for sendmmsg
		back   string // as read back; "" = addr
	}{
		{unix.AF_INET, "127.0.0.2:7000", unix.SizeofSockaddrInet4, ""},
		{unix.AF_INET, "[::ffff:127.0.0.2]:7000", unix.SizeofSockaddrInet4, "127.0.0.2:7000"},
		{unix.AF_INET, "[::1]:7000", 0, ""},
		{unix.AF_INET6, "127.0.0.2:65535", unix.SizeofSockaddrInet6, ""},
		{unix.AF_INET6, "[2001:db8::7]:1", unix.SizeofSockaddrInet6, ""},
		{unix.AF_INET6, "[fe80::1%1]:1", 0, ""},
	} {
		s := sysConn{family: tc.family}
		a := netip.MustParseAddrPort(tc.addr)
		var sa unix.RawSockaddrInet6
		n := s.putAddr(&sa, a)
		if n != tc.len {
			t.Errorf("%v on family %d: length %d, want %d", a, tc.family, n, tc.len)
			continue
		}
		if n == 0 {
			continue
		}
		back := tc.back
		if back == "" {
			back = tc.addr
		}
		if got := s.addrPort(&sa); got.String() != back {
			t.Errorf("%v on family %d: read back as %v, want %v", a, tc.family, got, back)
		}
	}
}

func TestBatchAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items on purpose")
	}
	src, dst := loopbackConn(t, "127.0.0.1"), loopbackConn(t, "127.0.0.1")
	out := make([]Message, 8)
	for i := range out {
		out[i] = Message{Buf: datagram(i, 500), Addr: dst.LocalAddr()}
	}
	in := make([]Message, len(out))
	for i := range in {
		in[i].Buf = make([]byte, testSlot)
	}
	allocs := testing.AllocsPerRun(200, func() {
		writeMessages(src, out)
		for got := 0; got < len(out); {
			n, err := dst.ReadBatch(in[:len(out)-got])
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch written and read, want 0", allocs)
	}
}

// BenchmarkWriteBatch writes runs of 32 datagrams of 1,078 bytes (a full
// KCP segment, sealed) to one loopback address, as a flush does, with one
// header per datagram (sendmmsg) and as segmented sends (UDP_SEGMENT); a
// reader drains the receiving socket meanwhile, as a peer would:
//
//	go test -run '^$' -bench WriteBatch -count 6 ./engine/net/
func BenchmarkWriteBatch(b *testing.B) {
	for _, segmented := range []bool{false, true} {
		name := "sendmmsg"
		if segmented {
			name = "segmented"
		}
		b.Run(name, func(b *testing.B) {
			src, dst := loopbackConn(b, "127.0.0.1"), loopbackConn(b, "127.0.0.1")
			if segmented && !src.sys.gso.Load() {
				b.Skip("no UDP segmentation offload in this kernel")
			}
			src.sys.gso.Store(segmented)
			go func() { // ends when dst is closed
				in := make([]Message, 32)
				for i := range in {
					in[i].Buf = make([]byte, testSlot)
				}
				for {
					if _, err := dst.ReadBatch(in); err != nil {
						return
					}
				}
			}()
			msgs := make([]Message, 32)
			for i := range msgs {
				msgs[i] = Message{Buf: datagram(i, 1078), Addr: dst.LocalAddr()}
			}
			b.SetBytes(int64(len(msgs) * 1078))
			for b.Loop() {
				writeMessages(src, msgs)
			}
			b.ReportMetric(float64(b.N*len(msgs))/b.Elapsed().Seconds(), "datagrams/s")
		})
	}
}
