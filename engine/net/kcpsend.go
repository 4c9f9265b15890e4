package net

import (
	"reflect"
	"unsafe"

	kcp "github.com/xtaci/kcp-go/v5"
)

// kcpSend locates kcp-go's private send buffer in a *kcp.KCP: snd_buf (a
// ring: head, tail, elements of segment) and, in each segment, the fields
// that say whether and when it is sent again (xmit, fastack, acked). Found
// by reflection once; ok is false if kcp-go's layout is not the one
// expected (TestKCPSendLayout fails then), and kcpResendNow does nothing:
// a switch of path then waits for the segments' retransmission timeouts.
// Private API of kcp-go v5.6.72: see the top of kcpcore.go before
// upgrading it.
var kcpSend = findKCPSendLayout()

type kcpSendOffsets struct {
	ok                   bool
	buf                  uintptr
	rHead, rTail, rElems uintptr
	segSize              uintptr
	xmit, fastack, acked uintptr
}

func findKCPSendLayout() (o kcpSendOffsets) {
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
	var ok [7]bool
	var rt, et reflect.Type
	o.buf, rt, ok[0] = field(reflect.TypeFor[kcp.KCP](), "snd_buf", reflect.Pointer)
	if !ok[0] {
		return kcpSendOffsets{}
	}
	o.rHead, _, ok[1] = field(rt.Elem(), "head", reflect.Int)
	o.rTail, _, ok[2] = field(rt.Elem(), "tail", reflect.Int)
	o.rElems, et, ok[3] = field(rt.Elem(), "elements", reflect.Slice)
	if !ok[3] {
		return kcpSendOffsets{}
	}
	seg := et.Elem()
	o.segSize = seg.Size()
	o.xmit, _, ok[4] = field(seg, "xmit", reflect.Uint32)
	o.fastack, _, ok[5] = field(seg, "fastack", reflect.Uint32)
	o.acked, _, ok[6] = field(seg, "acked", reflect.Uint32)
	for _, v := range ok {
		if !v {
			return kcpSendOffsets{}
		}
	}
	o.ok = true
	return o
}

// kcpResendNow marks every segment of k that was sent and is not yet
// acknowledged for a fast retransmission, and returns how many it marked:
// the next full flush sends them again at once, with the core's current
// retransmission timeout and no back-off, where they would otherwise wait
// for their own (backed-off) timeouts. A switch of path calls it so that
// what the old path lost is resent on the new one without delay. Call it
// under the link's mutex.
func kcpResendNow(k *kcp.KCP) int {
	if !kcpSend.ok {
		return 0
	}
	r := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(k), kcpSend.buf))
	if r == nil {
		return 0
	}
	head := *(*int)(unsafe.Add(r, kcpSend.rHead))
	tail := *(*int)(unsafe.Add(r, kcpSend.rTail))
	elems := (*sliceHeader)(unsafe.Add(r, kcpSend.rElems))
	if elems.len == 0 || head < 0 || tail < 0 || head >= elems.len || tail >= elems.len {
		return 0
	}
	n := 0
	for i := head; i != tail; i = (i + 1) % elems.len {
		seg := unsafe.Add(elems.data, uintptr(i)*kcpSend.segSize)
		if *(*uint32)(unsafe.Add(seg, kcpSend.acked)) != 0 || *(*uint32)(unsafe.Add(seg, kcpSend.xmit)) == 0 {
			continue
		}
		// kcpFastResend duplicate acks: the flush's fast retransmission,
		// which (unlike a timeout) does not back the timeout off.
		*(*uint32)(unsafe.Add(seg, kcpSend.fastack)) = kcpFastResend
		n++
	}
	return n
}
