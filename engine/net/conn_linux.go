//go:build linux

package net

import (
	stdnet "net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched socket I/O on Linux: udpConn implements BatchWriter with sendmmsg
// and BatchReader with recvmmsg, through the socket's syscall.RawConn so
// that Go's poller still does the waiting (a full send buffer, an empty
// receive queue) and Close still ends a blocked call. The message headers,
// I/O vectors and socket addresses live in pooled, preallocated arrays: a
// batch allocates nothing.
//
// Where the kernel has UDP segmentation offload (UDP_SEGMENT, Linux 4.18+),
// consecutive datagrams of one size to one address (a KCP flush) go in one
// header as one segmented send: the stack is crossed once for the run and
// the datagrams are cut apart at the end (by the NIC, or at the receiving
// socket on loopback). The receiver sees the same datagrams as without.

// maxBatch is the most datagrams one sendmmsg or recvmmsg call moves; a
// longer write takes several calls, a longer read returns maxBatch.
const maxBatch = 64

// Bounds of one segmented send: the kernel's UDP_MAX_SEGMENTS, and a total
// that keeps the IP packet under 64 KiB.
const (
	maxSegments     = 64
	maxSegmentBytes = 60 << 10
)

// mmsghdr is struct mmsghdr of <sys/socket.h>: a message header and the
// byte count the kernel returns for that message.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// mmsgFunc makes one sendmmsg or recvmmsg call on fd for n headers.
type mmsgFunc func(fd uintptr, hdrs *mmsghdr, n int) (int, syscall.Errno)

// sendmmsg and recvmmsg make the system calls of their names, or sendto
// and recvfrom for one plain header: an idle link reads and writes one
// datagram at a time, and the batch calls cost more for one.
func sendmmsg(fd uintptr, hdrs *mmsghdr, n int) (int, syscall.Errno) {
	if n == 1 && hdrs.hdr.Controllen == 0 {
		h := &hdrs.hdr
		r, _, e := unix.Syscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(h.Iov.Base)), uintptr(h.Iov.Len),
			0, uintptr(unsafe.Pointer(h.Name)), uintptr(h.Namelen))
		if e != 0 {
			return -1, e
		}
		hdrs.n = uint32(r)
		return 1, 0
	}
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(hdrs)), uintptr(n), 0, 0, 0)
	return int(r), e
}

func recvmmsg(fd uintptr, hdrs *mmsghdr, n int) (int, syscall.Errno) {
	if n == 1 {
		// MSG_TRUNC: the datagram's real length, to tell truncation.
		h := &hdrs.hdr
		r, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(h.Iov.Base)), uintptr(h.Iov.Len),
			unix.MSG_TRUNC, uintptr(unsafe.Pointer(h.Name)), uintptr(unsafe.Pointer(&h.Namelen)))
		if e != 0 {
			return -1, e
		}
		h.Flags = 0
		if r > uintptr(h.Iov.Len) {
			r, h.Flags = uintptr(h.Iov.Len), unix.MSG_TRUNC
		}
		hdrs.n = uint32(r)
		return 1, 0
	}
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(hdrs)), uintptr(n), 0, 0, 0)
	return int(r), e
}

// sysConn is what a UDP socket needs for sendmmsg and recvmmsg.
type sysConn struct {
	raw        syscall.RawConn // nil: batches fall back to one call per datagram
	family     int             // the socket's: AF_INET or AF_INET6
	send, recv mmsgFunc        // the system calls (tests wrap them)
	zones      sync.Map        // IPv6 scope ID (uint32) → zone name, as net names it
	// backlog is set by a ReadBatch that found its first datagram already
	// waiting, and cleared by one that had to wait or whose recvmmsg for
	// the others found none; see ReadBatch.
	backlog atomic.Bool
	// gso is set while segmented sends are in use: the kernel has them,
	// and none has failed with EIO (no checksum offload on the way out).
	gso atomic.Bool
}

func (s *sysConn) init(c *stdnet.UDPConn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	var family int
	var serr error
	err = raw.Control(func(fd uintptr) {
		family, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	})
	if err != nil || serr != nil || (family != unix.AF_INET && family != unix.AF_INET6) {
		return
	}
	s.raw, s.family, s.send, s.recv = raw, family, sendmmsg, recvmmsg
	_ = raw.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		s.gso.Store(err == nil)
	})
}

// mmsgScratch is the memory one batch call points the kernel at.
type mmsgScratch struct {
	hdrs   [maxBatch]mmsghdr
	iovs   [maxBatch]unix.Iovec            // one per datagram
	names  [maxBatch]unix.RawSockaddrInet6 // one per header; large enough for either family
	cmsgs  [maxBatch][4]uint64             // one per header: UDP_SEGMENT (aligned, room for any word size)
	counts [maxBatch]int                   // datagrams per header

	call  mmsgFunc
	n     int // headers to pass
	used  int // headers set since the scratch left the pool
	done  int // messages moved
	errno syscall.Errno
	wait  bool // run found the socket not ready and had the poller wait
	// noWait makes run give up at once when the socket is not ready (done
	// is then 0): ReadBatch's second call, for datagrams beyond the first.
	noWait bool
	do     func(fd uintptr) bool // run, bound once (a closure per call would allocate)
}

var mmsgPool = sync.Pool{New: func() any {
	sc := new(mmsgScratch)
	sc.do = sc.run
	return sc
}}

// run is the RawConn callback: it returns false to have the poller wait
// until the socket is ready, then run again.
func (sc *mmsgScratch) run(fd uintptr) bool {
	for {
		n, e := sc.call(fd, &sc.hdrs[0], sc.n)
		switch e {
		case 0:
			sc.done, sc.errno = n, 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if sc.noWait {
				sc.done, sc.errno = 0, 0
				return true
			}
			sc.wait = true
			return false
		default:
			sc.done, sc.errno = 0, e
			return true
		}
	}
}

// setRead points header k at buf, to read one datagram and its source.
func (sc *mmsgScratch) setRead(k int, buf []byte) {
	sc.setIov(k, buf)
	sc.hdrs[k] = mmsghdr{hdr: unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&sc.names[k])),
		Namelen: unix.SizeofSockaddrInet6,
		Iov:     &sc.iovs[k],
	}}
	sc.hdrs[k].hdr.SetIovlen(1)
}

// setWrite points header h at the datagrams ms, whose I/O vectors start at
// index i, for the address already in names[h] (namelen bytes). Several
// datagrams make one segmented send of len(ms[0].Buf)-byte segments.
func (sc *mmsgScratch) setWrite(h, i int, ms []Message, namelen uint32) {
	for k := range ms {
		sc.setIov(i+k, ms[k].Buf)
	}
	sc.hdrs[h] = mmsghdr{hdr: unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&sc.names[h])),
		Namelen: namelen,
		Iov:     &sc.iovs[i],
	}}
	hdr := &sc.hdrs[h].hdr
	hdr.SetIovlen(len(ms))
	sc.counts[h] = len(ms)
	if len(ms) > 1 {
		c := &sc.cmsgs[h]
		*c = [4]uint64{}
		cm := (*unix.Cmsghdr)(unsafe.Pointer(c))
		cm.Level, cm.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
		cm.SetLen(unix.CmsgLen(2))
		*(*uint16)(unsafe.Add(unsafe.Pointer(c), unix.CmsgLen(0))) = uint16(len(ms[0].Buf))
		hdr.Control = (*byte)(unsafe.Pointer(c))
		hdr.SetControllen(unix.CmsgSpace(2))
	}
}

func (sc *mmsgScratch) setIov(i int, buf []byte) {
	sc.used = max(sc.used, i+1)
	iov := &sc.iovs[i]
	iov.Base = nil
	if len(buf) > 0 {
		iov.Base = &buf[0]
	}
	iov.SetLen(len(buf))
}

// segmentRun returns how many leading datagrams of ms can go as one
// segmented send: one address, all but the last of one size, the last no
// longer, within the kernel's bounds.
func segmentRun(ms []Message) int {
	size := len(ms[0].Buf)
	if size == 0 {
		return 1
	}
	n, total := 1, size
	for n < len(ms) && n < maxSegments {
		m := &ms[n]
		if m.Addr != ms[0].Addr || len(m.Buf) == 0 || len(m.Buf) > size || total+len(m.Buf) > maxSegmentBytes {
			break
		}
		total += len(m.Buf)
		n++
		if len(m.Buf) < size {
			break // a shorter datagram ends a run
		}
	}
	return n
}

// release drops the scratch's references to the callers' buffers and
// returns it to the pool.
func (sc *mmsgScratch) release() {
	clear(sc.iovs[:sc.used])
	sc.used, sc.call, sc.noWait = 0, nil, false
	mmsgPool.Put(sc)
}

// WriteBatch implements BatchWriter with sendmmsg, and segmented sends
// where it can (see the top of this file). A datagram whose address
// sendmmsg cannot take here (an IPv6 zone, a family the socket does not
// have) goes through WriteTo on its own, which handles or refuses it.
func (u *udpConn) WriteBatch(ms []Message) (int, error) {
	s := &u.sys
	if s.raw == nil {
		return u.writeEach(ms)
	}
	sc := mmsgPool.Get().(*mmsgScratch)
	defer sc.release()
	sc.call = s.send
	written := 0
	single := false // a segmented send failed: one datagram per header from now on
	for written < len(ms) {
		batch := ms[written:min(len(ms), written+maxBatch)]
		segment := !single && s.gso.Load()
		h, i := 0, 0
		for i < len(batch) {
			namelen := s.putAddr(&sc.names[h], batch[i].Addr)
			if namelen == 0 {
				break
			}
			k := 1
			if segment {
				k = segmentRun(batch[i:])
			}
			sc.setWrite(h, i, batch[i:i+k], namelen)
			h++
			i += k
		}
		if h == 0 {
			m := &batch[0]
			n, err := u.WriteTo(m.Buf, m.Addr)
			if err != nil {
				return written, err
			}
			m.N = n
			written++
			continue
		}
		sc.n = h
		if err := s.raw.Write(sc.do); err != nil {
			return written, err // closed
		}
		for h := range sc.done {
			for k := range sc.counts[h] {
				batch[k].N = len(batch[k].Buf)
			}
			batch = batch[sc.counts[h]:]
			written += sc.counts[h]
		}
		if sc.errno != 0 && sc.counts[0] > 1 {
			// A segmented send failed: send its datagrams one by one, so
			// that an error names the one refused. EIO means the way out
			// cannot segment (no checksum offload): stop trying.
			if sc.errno == unix.EIO {
				s.gso.Store(false)
			}
			single = true
			continue
		}
		if sc.errno != 0 || sc.done <= 0 {
			errno := sc.errno
			if errno == 0 {
				errno = unix.EIO // nothing sent and no error: never seen, but never loop
			}
			return written, &stdnet.OpError{Op: "write", Net: "udp", Source: u.c.LocalAddr(),
				Addr: stdnet.UDPAddrFromAddrPort(batch[0].Addr), Err: os.NewSyscallError("sendmmsg", errno)}
		}
	}
	return written, nil
}

func (u *udpConn) writeEach(ms []Message) (int, error) {
	for i := range ms {
		n, err := u.WriteTo(ms[i].Buf, ms[i].Addr)
		if err != nil {
			return i, err
		}
		ms[i].N = n
	}
	return len(ms), nil
}

// ReadBatch implements BatchReader. It reads the first datagram on its
// own (recvfrom, waiting in the poller if need be), then, if the socket
// has a backlog, takes the others already waiting, up to maxBatch in all,
// with one recvmmsg that does not wait. A backlog is a second call in a
// row that found its first datagram already waiting, or a last recvmmsg
// that found some: a reader that had to wait, or that finds just the one
// datagram that followed the last (a ping and an ACK), costs what ReadFrom
// costs, with no batch to set up and no failing recvmmsg before it gets to
// work.
func (u *udpConn) ReadBatch(ms []Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	s := &u.sys
	if s.raw == nil {
		m := &ms[0]
		n, from, err := u.ReadFrom(m.Buf)
		if err != nil {
			return 0, err
		}
		m.N, m.Addr, m.Truncated = n, from, false
		return 1, nil
	}
	sc := mmsgPool.Get().(*mmsgScratch)
	defer sc.release()
	sc.call = s.recv
	sc.setRead(0, ms[0].Buf)
	sc.n, sc.wait = 1, false
	if err := s.raw.Read(sc.do); err != nil {
		return 0, err // closed
	}
	if sc.errno != 0 || sc.done != 1 {
		errno := sc.errno
		if errno == 0 {
			errno = unix.EIO
		}
		return 0, &stdnet.OpError{Op: "read", Net: "udp", Source: u.c.LocalAddr(), Err: os.NewSyscallError("recvfrom", errno)}
	}
	s.readDone(sc, ms[:1])
	if sc.wait {
		s.backlog.Store(false)
		return 1, nil
	}
	rest := ms[1:min(len(ms), maxBatch)]
	if !s.backlog.Load() {
		s.backlog.Store(true)
		return 1, nil
	}
	if len(rest) == 0 {
		return 1, nil
	}
	for k := range rest {
		sc.setRead(k, rest[k].Buf)
	}
	sc.n, sc.noWait = len(rest), true
	if err := s.raw.Read(sc.do); err != nil || sc.errno != 0 {
		return 1, nil // the next call reports what went wrong
	}
	if sc.done == 0 {
		s.backlog.Store(false)
	}
	s.readDone(sc, rest[:sc.done])
	return 1 + sc.done, nil
}

// readDone fills ms from the first len(ms) headers of a read.
func (s *sysConn) readDone(sc *mmsgScratch, ms []Message) {
	for k := range ms {
		h := &sc.hdrs[k]
		m := &ms[k]
		m.N = int(h.n)
		m.Truncated = h.hdr.Flags&unix.MSG_TRUNC != 0
		m.Addr = s.addrPort(&sc.names[k])
	}
}

// putAddr writes a as a socket address of the socket's family into sa and
// returns its length, or 0 if sendmmsg cannot take it here.
func (s *sysConn) putAddr(sa *unix.RawSockaddrInet6, a netip.AddrPort) uint32 {
	ip := a.Addr()
	if !ip.IsValid() || ip.Zone() != "" {
		return 0
	}
	switch s.family {
	case unix.AF_INET:
		ip = ip.Unmap()
		if !ip.Is4() {
			return 0
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
		putPort(&sa4.Port, a.Port())
		return unix.SizeofSockaddrInet4
	case unix.AF_INET6:
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()} // IPv4 as ::ffff:a.b.c.d
		putPort(&sa.Port, a.Port())
		return unix.SizeofSockaddrInet6
	}
	return 0
}

// addrPort reads the source address recvmmsg left in sa, as ReadFrom
// reports it (IPv4-mapped addresses unmapped, IPv6 zones by interface name).
func (s *sysConn) addrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), getPort(&sa4.Port))
	case unix.AF_INET6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			ip = ip.WithZone(s.zone(sa.Scope_id))
		}
		return netip.AddrPortFrom(ip.Unmap(), getPort(&sa.Port))
	}
	return netip.AddrPort{}
}

// zone names an IPv6 scope ID like package net does: the interface's name,
// or the number if there is no such interface.
func (s *sysConn) zone(id uint32) string {
	if z, ok := s.zones.Load(id); ok {
		return z.(string)
	}
	z := strconv.FormatUint(uint64(id), 10)
	if ifi, err := stdnet.InterfaceByIndex(int(id)); err == nil {
		z = ifi.Name
	}
	s.zones.Store(id, z)
	return z
}

// putPort and getPort convert a port to and from network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}
