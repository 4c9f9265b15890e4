package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	kcp "github.com/xtaci/kcp-go/v5"
)

// Memory budgets for received reliable data.
//
// A link's KCP core keeps two things a peer controls: out-of-order segments
// waiting for a gap to fill (rcv_buf), and complete segments not yet taken
// because the event queue is full (rcv_queue, the stalled path). Each held
// segment pins one of kcp-go's 1500-byte pool buffers whatever its length,
// so the budgets charge kcpHeldCost per segment, not its payload: a peer
// sending one-byte segments pays the same as one sending full ones.
//
//   - The receive window (kcpRecvWindow segments) is the hard per-link
//     bound: KCP ignores data at or past rcv_nxt+window, and moves at most a
//     window of segments into rcv_queue. A KCP sender never sends past the
//     window its receiver advertises (at most rcv_wnd minus the queue),
//     so a segment there comes from a hostile peer: the link is shed.
//   - Config.LinkReceiveBudget bounds one link's out-of-order data: a
//     segment that would be held past it is refused (DropOverBudget) before
//     KCP sees it, and the sender retransmits it later. By default it is
//     the window, which no sender keeping to the window exceeds.
//   - Config.HostReceiveBudget bounds what every link holds together (out of
//     order and stalled). Past it the link holding the most is shed.
//
// A shed link is told with a close frame (closeOverBudget) and removed at
// once, which frees its KCP core; its EventDisconnected carries
// ErrOverBudget.

// ErrOverBudget is the disconnect reason of a link shed because it held
// more received data than its budget allows, or sent reliable data outside
// the receive window (see Config.LinkReceiveBudget and
// Config.HostReceiveBudget). A peer shed this way sees it too.
var ErrOverBudget = errors.New("skein/net: over the receive memory budget")

const (
	// kcpRecvWindow is the KCP receive window, in segments. The stream's
	// messages are KCP messages of one segment each (stream.go), so a
	// message of any size is delivered through any window; 256 bounds
	// one stream's throughput to about 290 KB per round trip: over
	// vnet, 22 MB/s at 10 ms, 4.7 MB/s at 50 ms, 2.3 MB/s at 100 ms
	// (TestWindowThroughput). Small messages share segments under load,
	// so it carries many more of them than 256 per round trip.
	kcpRecvWindow = 256
	// kcpHeldCost is what one held segment costs: kcp-go copies it into a
	// 1500-byte pool buffer, plus its entry in the receive heap or queue.
	kcpHeldCost = 1600
	// Defaults of Config.LinkReceiveBudget and Config.HostReceiveBudget.
	defaultLinkReceiveBudget = kcpRecvWindow * kcpHeldCost
	defaultHostReceiveBudget = 32 << 20
)

// kcpRecv locates kcp-go's private receive state in a *kcp.KCP:
// rcv_nxt, the length of rcv_queue (a ring: head, tail, elements) and of
// rcv_buf (a heap over a segments slice). Found by reflection once; ok is
// false if kcp-go's layout is not the one expected (TestKCPRecvLayout
// fails then), and the budgets other than the window do nothing. Private
// API of kcp-go v5.6.72: see the top of kcpcore.go before upgrading it.
var kcpRecv = findKCPRecvLayout()

type kcpRecvOffsets struct {
	ok                   bool
	nxt, wnd, queue, buf uintptr
	qHead, qTail, qElems uintptr
	hSegs                uintptr
}

func findKCPRecvLayout() (o kcpRecvOffsets) {
	t := reflect.TypeFor[kcp.KCP]()
	field := func(t reflect.Type, name string, kind reflect.Kind) (uintptr, reflect.Type, bool) {
		if t.Kind() != reflect.Struct {
			return 0, nil, false
		}
		f, ok := t.FieldByName(name)
		if !ok || f.Type.Kind() != kind || len(f.Index) != 1 {
			return 0, nil, false
		}
		return f.Offset, f.Type, true
	}
	var ok [8]bool
	var qt, bt reflect.Type
	o.nxt, _, ok[0] = field(t, "rcv_nxt", reflect.Uint32)
	o.wnd, _, ok[1] = field(t, "rcv_wnd", reflect.Uint32)
	o.queue, qt, ok[2] = field(t, "rcv_queue", reflect.Pointer)
	o.buf, bt, ok[3] = field(t, "rcv_buf", reflect.Pointer)
	if !ok[2] || !ok[3] {
		return kcpRecvOffsets{}
	}
	o.qHead, _, ok[4] = field(qt.Elem(), "head", reflect.Int)
	o.qTail, _, ok[5] = field(qt.Elem(), "tail", reflect.Int)
	o.qElems, _, ok[6] = field(qt.Elem(), "elements", reflect.Slice)
	o.hSegs, _, ok[7] = field(bt.Elem(), "segments", reflect.Slice)
	for _, v := range ok {
		if !v {
			return kcpRecvOffsets{}
		}
	}
	o.ok = true
	return o
}

// sliceHeader is the layout of a Go slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// kcpRecvState is a snapshot of a KCP core's receive side.
type kcpRecvState struct {
	nxt, wnd      uint32
	queued, ahead int // segments in rcv_queue and in rcv_buf
}

// readKCPRecv reads k's receive state. Call it under the link's mutex.
func readKCPRecv(k *kcp.KCP) (s kcpRecvState) {
	if !kcpRecv.ok {
		return kcpRecvState{wnd: kcpRecvWindow}
	}
	p := unsafe.Pointer(k)
	s.nxt = *(*uint32)(unsafe.Add(p, kcpRecv.nxt))
	s.wnd = *(*uint32)(unsafe.Add(p, kcpRecv.wnd))
	if q := *(*unsafe.Pointer)(unsafe.Add(p, kcpRecv.queue)); q != nil {
		head := *(*int)(unsafe.Add(q, kcpRecv.qHead))
		tail := *(*int)(unsafe.Add(q, kcpRecv.qTail))
		if head <= tail {
			s.queued = tail - head
		} else {
			s.queued = (*sliceHeader)(unsafe.Add(q, kcpRecv.qElems)).len - head + tail
		}
	}
	if b := *(*unsafe.Pointer)(unsafe.Add(p, kcpRecv.buf)); b != nil {
		s.ahead = (*sliceHeader)(unsafe.Add(b, kcpRecv.hSegs)).len
	}
	return s
}

// held is the memory the state pins, in bytes.
func (s kcpRecvState) held() int64 { return int64(s.queued+s.ahead) * kcpHeldCost }

// kcpVerdict is what inputKCPLocked did with a frame of KCP segments.
type kcpVerdict uint8

const (
	kcpInputOK        kcpVerdict = iota
	kcpInputMalformed            // refused by the KCP core
	kcpInputShed                 // data past the receive window: shed the link
)

// inputKCPLocked checks the segments of one KCP frame against the receive
// window and the link's budget, and gives the acceptable ones to the KCP
// core. Segments that would be held out of order past LinkReceiveBudget are
// left out and counted (DropOverBudget). Call it under l.mu.
func (l *link) inputKCPLocked(body []byte) kcpVerdict {
	s := readKCPRecv(l.kcp)
	budget := int64(l.h.cfg.LinkReceiveBudget)
	ahead := int64(s.ahead) * kcpHeldCost // out-of-order data held, then as it would grow
	refuse := false
	for b := body; len(b) >= kcp.IKCP_OVERHEAD; {
		n := int(binary.LittleEndian.Uint32(b[20:]))
		if n > len(b)-kcp.IKCP_OVERHEAD {
			break // malformed: the core refuses it
		}
		if b[4] == kcp.IKCP_CMD_PUSH {
			d := int32(binary.LittleEndian.Uint32(b[12:]) - s.nxt)
			switch {
			case d >= int32(s.wnd):
				return kcpInputShed
			case d > 0:
				ahead += kcpHeldCost
				refuse = refuse || ahead > budget
			}
		}
		b = b[kcp.IKCP_OVERHEAD+n:]
	}
	if refuse {
		return l.inputEachKCPLocked(body)
	}
	if l.kcp.Input(body, kcp.IKCP_PACKET_REGULAR, false) < 0 {
		return kcpInputMalformed
	}
	return kcpInputOK
}

// inputEachKCPLocked is inputKCPLocked's slow path, for a frame that may
// take the link past its budget: the segments go to the KCP core one by
// one, each checked against the state the previous ones left (a segment
// filling the gap turns the ones after it from out of order to in order),
// and a data segment that would be held out of order past the budget is
// left out and counted.
func (l *link) inputEachKCPLocked(body []byte) kcpVerdict {
	budget := int64(l.h.cfg.LinkReceiveBudget)
	for len(body) >= kcp.IKCP_OVERHEAD {
		n := int(binary.LittleEndian.Uint32(body[20:]))
		if n > len(body)-kcp.IKCP_OVERHEAD {
			return kcpInputMalformed // as the core would say
		}
		seg := body[:kcp.IKCP_OVERHEAD+n]
		body = body[len(seg):]
		if seg[4] == kcp.IKCP_CMD_PUSH {
			s := readKCPRecv(l.kcp)
			if int32(binary.LittleEndian.Uint32(seg[12:])-s.nxt) > 0 && int64(s.ahead+1)*kcpHeldCost > budget {
				l.h.dropOn(l, DropOverBudget)
				continue
			}
		}
		if l.kcp.Input(seg, kcp.IKCP_PACKET_REGULAR, false) < 0 {
			return kcpInputMalformed
		}
	}
	return kcpInputOK // the core ignores a tail shorter than a header too
}

// syncHeldLocked brings the link's share of the host's held bytes up to
// date after its KCP core took or gave up segments, and reports whether the
// host is now over its budget. Call it under l.mu.
func (l *link) syncHeldLocked() (overHost bool) {
	if l.removed {
		return false
	}
	n := readKCPRecv(l.kcp).held() + int64(len(l.rx)-l.rxOff) // and what waits in the reassembly buffer
	if d := n - l.held.Swap(n); d != 0 {
		return l.h.held.Add(d) > int64(l.h.cfg.HostReceiveBudget)
	}
	return false
}

// releaseHeldLocked gives the link's held bytes back to the host; the link
// is being removed. Call it under l.mu.
func (l *link) releaseHeldLocked() {
	l.h.held.Add(-l.held.Swap(0))
}

// HeldBytes reports the memory the host's links pin with received reliable
// data not yet delivered (out of order, or waiting for room in the event
// queue), as charged against Config.HostReceiveBudget.
func (h *Host) HeldBytes() int64 { return h.held.Load() }

// shedLargest sheds links, the one holding the most first, until the host
// is back within its receive budget.
func (h *Host) shedLargest() {
	if !h.shedding.TryLock() {
		return // another reader is at it
	}
	defer h.shedding.Unlock()
	for h.held.Load() > int64(h.cfg.HostReceiveBudget) {
		var worst *link
		var most int64
		h.mu.RLock()
		for _, l := range h.byID {
			if n := l.held.Load(); n > most {
				worst, most = l, n
			}
		}
		h.mu.RUnlock()
		if worst == nil {
			return
		}
		h.shed(worst, fmt.Sprintf("holds %d bytes of received data, host over its %d-byte budget", most, h.cfg.HostReceiveBudget))
	}
}

// shed disconnects l at once because it went over a receive budget: the peer
// is told (closeOverBudget) and the link's memory is released. Call it
// without l.mu.
func (h *Host) shed(l *link, why string) {
	l.mu.Lock()
	if l.removed {
		l.mu.Unlock()
		return
	}
	l.drops.add(DropOverBudget)
	h.drops.add(DropOverBudget)
	l.queueFrameLocked(frameClose, []byte{closeOverBudget})
	out, p := l.takeLocked()
	l.mu.Unlock()
	l.writeOut(out, p)
	h.log.Debug("link shed", "peer", l.id, "reason", why)
	h.removeLink(l, &CloseError{Reason: ErrOverBudget, Message: why})
}
