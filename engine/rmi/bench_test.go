package rmi_test

import (
	"encoding/binary"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/gamerpc"
	"github.com/vmihailenco/msgpack/v5"
)

// The benchmarks measure Player_Move(pos Vec2, vel Vec2, tick uint32) three
// ways, as sub-benchmarks of one run so benchstat can compare them
// (benchstat -col /codec):
//
//   - codec=rmigen: the generated proxy and stub (msgpack bytes written and
//     read directly, pooled buffer, Dispatcher lookup, counters);
//   - codec=binary: a hand-written encoding/binary codec of the same
//     arguments (2-byte ID + 5 little-endian 4-byte fields), pooled buffer,
//     the same Sender interface and a switch on the ID;
//   - codec=reflect: msgpack.Marshal / msgpack.Unmarshal of an equivalent
//     struct.
//
// path=roundtrip is proxy call -> frame bytes -> stub call; path=send stops at
// the Sender; path=receive starts from a frame.

var (
	benchPos  = gamerpc.Vec2{X: 12.5, Y: -3.25}
	benchVel  = gamerpc.Vec2{X: 0.5, Y: 1}
	benchTick = uint32(123456)
	benchInfo = rmi.CallInfo{From: 1001, Context: rmi.Unreliable, Received: time.Unix(1, 0)}
)

// sink keeps handler results alive.
var sink float32

func moveHandler(info rmi.CallInfo, pos, vel gamerpc.Vec2, tick uint32) error {
	sink += pos.X + vel.Y + float32(tick)
	return nil
}

// discard is a Sender that drops frames.
type discard struct{ n int }

func (d *discard) Send(to net.HostID, del net.Delivery, data []byte) error {
	d.n += len(data)
	return nil
}

// loopback is a Sender that hands the frame straight to a receive function.
type loopback struct {
	recv func(info rmi.CallInfo, frame []byte) error
}

func (l loopback) Send(to net.HostID, del net.Delivery, data []byte) error {
	return l.recv(benchInfo, data)
}

// --- hand-written encoding/binary codec ---

const binaryMoveID = 2000

var binaryPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

type binaryProxy struct{ s rmi.Sender }

func (p binaryProxy) PlayerMove(to net.HostID, ctx rmi.Context, pos, vel gamerpc.Vec2, tick uint32) error {
	bp := binaryPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = binary.BigEndian.AppendUint16(b, binaryMoveID)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(pos.X))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(pos.Y))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(vel.X))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(vel.Y))
	b = binary.LittleEndian.AppendUint32(b, tick)
	err := p.s.Send(to, ctx.Delivery(), b)
	*bp = b
	binaryPool.Put(bp)
	return err
}

type binaryStub struct {
	PlayerMove func(info rmi.CallInfo, pos, vel gamerpc.Vec2, tick uint32) error
}

var errBinary = rmi.ErrDecode

func (s *binaryStub) Dispatch(info rmi.CallInfo, frame []byte) error {
	if len(frame) < 2 {
		return rmi.ErrShortFrame
	}
	switch binary.BigEndian.Uint16(frame) {
	case binaryMoveID:
		a := frame[2:]
		if len(a) != 20 {
			return errBinary
		}
		pos := gamerpc.Vec2{X: math.Float32frombits(binary.LittleEndian.Uint32(a[0:])), Y: math.Float32frombits(binary.LittleEndian.Uint32(a[4:]))}
		vel := gamerpc.Vec2{X: math.Float32frombits(binary.LittleEndian.Uint32(a[8:])), Y: math.Float32frombits(binary.LittleEndian.Uint32(a[12:]))}
		return s.PlayerMove(info, pos, vel, binary.LittleEndian.Uint32(a[16:]))
	}
	return rmi.ErrUnknownCall
}

// --- reflective msgpack ---

type moveArgs struct {
	Pos  gamerpc.Vec2
	Vel  gamerpc.Vec2
	Tick uint32
}

type reflectProxy struct{ s rmi.Sender }

func (p reflectProxy) PlayerMove(to net.HostID, ctx rmi.Context, pos, vel gamerpc.Vec2, tick uint32) error {
	b, err := msgpack.Marshal(&moveArgs{pos, vel, tick})
	if err != nil {
		return err
	}
	return p.s.Send(to, ctx.Delivery(), b)
}

type reflectStub struct {
	PlayerMove func(info rmi.CallInfo, pos, vel gamerpc.Vec2, tick uint32) error
}

func (s *reflectStub) Dispatch(info rmi.CallInfo, frame []byte) error {
	var a moveArgs
	if err := msgpack.Unmarshal(frame, &a); err != nil {
		return err
	}
	return s.PlayerMove(info, a.Pos, a.Vel, a.Tick)
}

func BenchmarkPlayerMove(b *testing.B) {
	type codec struct {
		name string
		send func(s rmi.Sender) func() error
		recv func() func(rmi.CallInfo, []byte) error
	}
	codecs := []codec{
		{"rmigen",
			func(s rmi.Sender) func() error {
				p := gamerpc.NewGameProxy(s)
				return func() error { return p.Player_Move(1002, rmi.Unreliable, benchPos, benchVel, benchTick) }
			},
			func() func(rmi.CallInfo, []byte) error {
				d := rmi.NewDispatcher()
				if err := d.Attach(&gamerpc.GameStub{Player_Move: moveHandler}); err != nil {
					b.Fatal(err)
				}
				return d.Dispatch
			}},
		{"binary",
			func(s rmi.Sender) func() error {
				p := binaryProxy{s}
				return func() error { return p.PlayerMove(1002, rmi.Unreliable, benchPos, benchVel, benchTick) }
			},
			func() func(rmi.CallInfo, []byte) error {
				return (&binaryStub{PlayerMove: moveHandler}).Dispatch
			}},
		{"reflect",
			func(s rmi.Sender) func() error {
				p := reflectProxy{s}
				return func() error { return p.PlayerMove(1002, rmi.Unreliable, benchPos, benchVel, benchTick) }
			},
			func() func(rmi.CallInfo, []byte) error {
				return (&reflectStub{PlayerMove: moveHandler}).Dispatch
			}},
	}
	for _, c := range codecs {
		b.Run("codec="+c.name+"/path=roundtrip", func(b *testing.B) {
			call := c.send(loopback{c.recv()})
			b.ReportAllocs()
			for b.Loop() {
				if err := call(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("codec="+c.name+"/path=send", func(b *testing.B) {
			d := &discard{}
			call := c.send(d)
			b.ReportAllocs()
			for b.Loop() {
				if err := call(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(d.n)/float64(b.N), "bytes/frame")
		})
		b.Run("codec="+c.name+"/path=receive", func(b *testing.B) {
			var frame []byte
			capture := rmi.SenderFunc(func(_ net.HostID, _ net.Delivery, data []byte) error {
				frame = append([]byte(nil), data...)
				return nil
			})
			if err := c.send(capture)(); err != nil {
				b.Fatal(err)
			}
			recv := c.recv()
			b.ReportAllocs()
			for b.Loop() {
				if err := recv(benchInfo, frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
