package rmi_test

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/testidl"
)

// The request/response benchmarks measure Service.Double(x int32, code Code)
// returns (twice int64, result Code) round trips on one in-memory
// transport: a Sender that hands the frame at once to the other side's
// receive function, with the fields a host's message event carries (so a
// round trip is: proxy -> Sender -> request frame -> receiver -> handler ->
// Sender -> response frame -> receiver -> callback, all on one goroutine).
// Two ways, as sub-benchmarks of one run (benchstat -col /impl):
//
//   - impl=rmigen: the generated proxy and stub over rmi.Requests and two
//     rmi.Dispatchers (sequence numbers, pending table, reply window,
//     counters);
//   - impl=hand: what a user writes without request/response calls, on the
//     same transport: a request frame and a reply frame (ID, uint32
//     sequence number, msgpack arguments with the same Encoder and
//     Decoder) sent through the same kind of Sender, a map from sequence
//     number to callback on the caller's side, a switch on the ID on the
//     receiving side. No retries, reply cache, timeouts or counters.

// rrPair is a caller and a callee connected by loopback Senders.
type rrPair struct {
	cliD, srvD *rmi.Dispatcher
	cliR       *rmi.Requests
	proxy      *testidl.ServiceProxy
}

// rrLoop delivers a frame from host from at once, as a host delivers a
// message event.
type rrLoop struct {
	from    net.HostID
	receive func(from net.HostID, d net.Delivery, data []byte) error
}

func (l rrLoop) Send(_ net.HostID, d net.Delivery, data []byte) error {
	return l.receive(l.from, d, data)
}

// dispatchTo returns the receive function of a host whose messages go to
// the Dispatcher *d.
func dispatchTo(d **rmi.Dispatcher) func(net.HostID, net.Delivery, []byte) error {
	return func(from net.HostID, del net.Delivery, data []byte) error {
		return (*d).Dispatch(rmi.CallInfo{From: from, Context: rmi.ContextOf(del)}, data)
	}
}

func newRRPair(tb testing.TB) *rrPair {
	p := &rrPair{cliD: rmi.NewDispatcher(), srvD: rmi.NewDispatcher()}
	p.cliR = rmi.NewRequests(rrLoop{1001, dispatchTo(&p.srvD)}, rmi.RequestConfig{})
	srvR := rmi.NewRequests(rrLoop{net.ServerID, dispatchTo(&p.cliD)}, rmi.RequestConfig{})
	p.cliD.SetRequests(p.cliR)
	p.srvD.SetRequests(srvR)
	if err := p.srvD.Attach(&testidl.ServiceStub{Double: doubleHandler}); err != nil {
		tb.Fatal(err)
	}
	p.proxy = testidl.NewServiceProxy(p.cliR)
	return p
}

func doubleHandler(_ rmi.CallInfo, x int32, code testidl.Code) (int64, testidl.Code, error) {
	return 2 * int64(x), code, nil
}

var rrSum int64

func rrDone(twice int64, _ testidl.Code, err error) {
	if err == nil {
		rrSum += twice
	}
}

// handRR is the hand-written request/response: one caller and one callee,
// each with its own Sender to the other.
type handRR struct {
	mu      sync.Mutex
	nextSeq uint32
	pending map[uint32]func(twice int64, code testidl.Code, err error)
	enc     rmi.Encoder
	reply   rmi.Encoder

	toCallee, toCaller rmi.Sender
}

func newHandRR() *handRR {
	h := &handRR{pending: map[uint32]func(int64, testidl.Code, error){}}
	h.toCallee = rrLoop{1001, h.serve}
	h.toCaller = rrLoop{net.ServerID, h.receive}
	return h
}

var (
	handRequestID rmi.CallID = 0xf000
	handReplyID   rmi.CallID = 0xf001
)

func (h *handRR) double(x int32, code testidl.Code, done func(int64, testidl.Code, error)) error {
	h.mu.Lock()
	h.nextSeq++
	seq := h.nextSeq
	h.pending[seq] = done
	h.mu.Unlock()
	h.enc.Reset()
	h.enc.Write([]byte{byte(handRequestID >> 8), byte(handRequestID), 0, 0, 0, 0})
	binary.BigEndian.PutUint32(h.enc.Bytes()[2:], seq)
	h.enc.EncodeArrayLen(2)
	h.enc.EncodeInt32(x)
	code.EncodeRMI(&h.enc)
	return h.toCallee.Send(net.ServerID, net.Reliable, h.enc.Bytes())
}

// serve is the callee: decode, run, reply.
func (h *handRR) serve(from net.HostID, del net.Delivery, frame []byte) error {
	id, body, _ := rmi.ParseHeader(frame)
	if id != handRequestID || len(body) < 4 {
		return rmi.ErrUnknownCall
	}
	d := rmi.NewDecoder(body[4:])
	if !d.DecodeArrayHeader(2) {
		return d.Err()
	}
	x := d.DecodeInt32()
	var code testidl.Code
	code.DecodeRMI(&d)
	if err := d.Finish(); err != nil {
		return err
	}
	twice, res, _ := doubleHandler(rmi.CallInfo{From: from, Context: rmi.ContextOf(del)}, x, code)
	h.reply.Reset()
	h.reply.Write([]byte{byte(handReplyID >> 8), byte(handReplyID)})
	h.reply.Write(body[:4])
	h.reply.EncodeArrayLen(2)
	h.reply.EncodeInt64(twice)
	res.EncodeRMI(&h.reply)
	return h.toCaller.Send(from, del, h.reply.Bytes())
}

// receive is the caller's side of the reply.
func (h *handRR) receive(_ net.HostID, _ net.Delivery, frame []byte) error {
	id, body, _ := rmi.ParseHeader(frame)
	if id != handReplyID || len(body) < 4 {
		return rmi.ErrUnknownCall
	}
	seq := binary.BigEndian.Uint32(body)
	h.mu.Lock()
	done := h.pending[seq]
	delete(h.pending, seq)
	h.mu.Unlock()
	d := rmi.NewDecoder(body[4:])
	var twice int64
	var code testidl.Code
	if d.DecodeArrayHeader(2) {
		twice = d.DecodeInt64()
		code.DecodeRMI(&d)
	}
	err := d.Finish()
	if done != nil {
		done(twice, code, err)
	}
	return err
}

func BenchmarkRequestRoundTrip(b *testing.B) {
	b.Run("impl=rmigen", func(b *testing.B) {
		p := newRRPair(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := p.proxy.Double(net.ServerID, rmi.Reliable, int32(i), testidl.CodeTeapot, rrDone); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=hand", func(b *testing.B) {
		h := newHandRR()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := h.double(int32(i), testidl.CodeTeapot, rrDone); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRequestAllocs holds the allocation targets of request/response calls
// without strings or slices: none to send, none to serve and answer, none to
// deliver the response (after warm-up: pooled encoders, recycled pending
// calls and reply buffers).
func TestRequestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	// A request frame, for the serve side below.
	var c captureSender
	pc, err := testidl.NewServiceProxy(rmi.NewRequests(&c, rmi.RequestConfig{})).Double(net.ServerID, rmi.Reliable, 7, testidl.CodeOk, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc.Cancel()
	// Send side: the frame is dropped, the pending call cancelled.
	p := testidl.NewServiceProxy(rmi.NewRequests(&discard{}, rmi.RequestConfig{}))
	send := func() {
		pend, err := p.Double(net.ServerID, rmi.Reliable, 7, testidl.CodeOk, rrDone)
		if err != nil {
			t.Fatal(err)
		}
		pend.Cancel()
	}
	for range 100 {
		send()
	}
	if n := testing.AllocsPerRun(1000, send); n != 0 {
		t.Errorf("send allocs = %v, want 0", n)
	}
	// Reply side: serve a request and deliver its response.
	pair := newRRPair(t)
	var seq uint32
	srvR := rmi.NewRequests(&discard{}, rmi.RequestConfig{}) // a sink that does not allocate
	srvD := rmi.NewDispatcher()
	srvD.SetRequests(srvR)
	if err := srvD.Attach(&testidl.ServiceStub{Double: doubleHandler}); err != nil {
		t.Fatal(err)
	}
	req := append([]byte(nil), c.last...)
	serve := func() {
		seq++
		binary.BigEndian.PutUint32(req[2:], seq)
		if err := srvD.Dispatch(rmi.CallInfo{From: 1001}, req); err != nil {
			t.Fatal(err)
		}
	}
	for range 600 { // past the reply window: slots and buffers recycle
		serve()
	}
	if n := testing.AllocsPerRun(1000, serve); n > 0 {
		t.Errorf("serve allocs = %v, want 0", n)
	}
	roundTrip := func() {
		if _, err := pair.proxy.Double(net.ServerID, rmi.Reliable, 7, testidl.CodeOk, rrDone); err != nil {
			t.Fatal(err)
		}
	}
	for range 600 {
		roundTrip()
	}
	if n := testing.AllocsPerRun(1000, roundTrip); n != 0 {
		t.Errorf("round trip allocs = %v, want 0", n)
	}
}

// BenchmarkEnumDecode decodes a parameter as an IDL enum (with its range
// check) and as the plain integer of the same type, from the same bytes.
func BenchmarkEnumDecode(b *testing.B) {
	sparse := []byte{0xcd, 0x01, 0xa2} // 418: Code is sparse (0, 404, 418)
	contiguous := []byte{0xff}         // -1: Dir is contiguous (-1..1)
	b.Run("type=uint16/kind=plain", func(b *testing.B) {
		var v uint16
		for b.Loop() {
			d := rmi.NewDecoder(sparse)
			v += d.DecodeUint16()
		}
		sinkU16 = v
	})
	b.Run("type=uint16/kind=enum-sparse", func(b *testing.B) {
		var v testidl.Code
		for b.Loop() {
			d := rmi.NewDecoder(sparse)
			var c testidl.Code
			c.DecodeRMI(&d)
			v += c
		}
		sinkU16 = uint16(v)
	})
	b.Run("type=int8/kind=plain", func(b *testing.B) {
		var v int8
		for b.Loop() {
			d := rmi.NewDecoder(contiguous)
			v += d.DecodeInt8()
		}
		sinkI8 = v
	})
	b.Run("type=int8/kind=enum-contiguous", func(b *testing.B) {
		var v testidl.Dir
		for b.Loop() {
			d := rmi.NewDecoder(contiguous)
			var c testidl.Dir
			c.DecodeRMI(&d)
			v += c
		}
		sinkI8 = int8(v)
	})
}

var (
	sinkU16 uint16
	sinkI8  int8
)

var (
	pairMu sync.Mutex
	pairN  int
)

// BenchmarkMutexPair is one uncontended sync.Mutex Lock/Unlock pair: the
// unit of what the generated round trip takes twice more than the
// hand-written one (BENCHMARKS.md, "RMI v2").
func BenchmarkMutexPair(b *testing.B) {
	for b.Loop() {
		pairMu.Lock()
		pairN++
		pairMu.Unlock()
	}
}
