package testidl

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	gt "github.com/skein-dev/skein/engine/rmi/internal/testidl/gotypes"
	"github.com/vmihailenco/msgpack/v5"
)

// harness sends every call through a proxy into a capture Sender, then
// dispatches the frame to stubs that record their arguments.
type harness struct {
	t      *testing.T
	d      *rmi.Dispatcher
	every  *EveryProxy
	second *SecondProxy
	frame  []byte
	got    []any
	info   rmi.CallInfo
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, d: rmi.NewDispatcher()}
	send := rmi.SenderFunc(func(to net.HostID, d net.Delivery, data []byte) error {
		h.frame = append([]byte(nil), data...)
		return nil
	})
	h.every = NewEveryProxy(send)
	h.second = NewSecondProxy(send)
	rec := func(info rmi.CallInfo, args ...any) error {
		h.info, h.got = info, args
		return nil
	}
	stub := &EveryStub{
		Bools: func(i rmi.CallInfo, a, b bool) error { return rec(i, a, b) },
		Ints: func(i rmi.CallInfo, a int, b int8, c int16, d int32, e int64) error {
			return rec(i, a, b, c, d, e)
		},
		Uints: func(i rmi.CallInfo, a uint, b uint8, c uint8, d uint16, e uint32, f uint64) error {
			return rec(i, a, b, c, d, e, f)
		},
		Floats:  func(i rmi.CallInfo, a float32, b float64) error { return rec(i, a, b) },
		Strings: func(i rmi.CallInfo, s string, b []byte) error { return rec(i, s, b) },
		Slices: func(i rmi.CallInfo, a []int32, b []string, c [][]byte, d []Inner, e [][]uint16) error {
			return rec(i, a, b, c, d, e)
		},
		Maps: func(i rmi.CallInfo, a map[string]int32, b map[int64][]Inner, c map[bool]string, d map[float32]float64, e map[uint8][]byte) error {
			return rec(i, a, b, c, d, e)
		},
		Structs: func(i rmi.CallInfo, a Inner, b Outer, c Empty) error { return rec(i, a, b, c) },
		GoTypes: func(i rmi.CallInfo, d time.Duration, tm time.Time, c gt.Color, p gt.Plain, cs []gt.Color, ps map[string]gt.Plain) error {
			return rec(i, d, tm, c, p, cs, ps)
		},
		Nothing:   func(i rmi.CallInfo) error { return rec(i) },
		Jump:      func(i rmi.CallInfo, x int32) error { return rec(i, x) },
		AfterJump: func(i rmi.CallInfo, x uint64) error { return rec(i, x) },
	}
	if err := h.d.Attach(stub); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Attach(&SecondStub{Echo: func(i rmi.CallInfo, s string) error { return rec(i, s) }}); err != nil {
		t.Fatal(err)
	}
	return h
}

// roundTrip sends one call, dispatches its frame and checks the stub got want.
func (h *harness) roundTrip(name string, send func() error, want ...any) {
	h.t.Helper()
	h.frame, h.got = nil, nil
	if err := send(); err != nil {
		h.t.Fatalf("%s: send: %v", name, err)
	}
	info := rmi.CallInfo{From: 1234, Relayed: true, Context: rmi.Reliable, Received: time.Unix(5, 0)}
	if err := h.d.Dispatch(info, h.frame); err != nil {
		h.t.Fatalf("%s: dispatch: %v", name, err)
	}
	if h.info != info {
		h.t.Errorf("%s: info = %+v, want %+v", name, h.info, info)
	}
	if want == nil {
		want = []any{}
	}
	if h.got == nil {
		h.got = []any{}
	}
	if !reflect.DeepEqual(h.got, want) {
		h.t.Errorf("%s: got  %#v\nwant %#v", name, h.got, want)
	}
}

func inner(n int) Inner {
	tags := map[string]int32{}
	for i := range n {
		tags[strings.Repeat("k", i+1)] = int32(i * -1000)
	}
	return Inner{Name: strings.Repeat("é", n), Data: bytes.Repeat([]byte{byte(n)}, n), Tags: tags}
}

func TestRoundTripEveryType(t *testing.T) {
	h := newHarness(t)
	p := h.every

	h.roundTrip("Bools", func() error { return p.Bools(1, rmi.Reliable, true, false) }, true, false)
	h.roundTrip("Bools", func() error { return p.Bools(1, rmi.Reliable, false, true) }, false, true)

	for _, v := range []int64{0, 1, -1, 127, 128, -32, -33, -128, -129, 255, 256, 32767, 32768, -32768, -32769,
		65535, 65536, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, math.MinInt32 - 1, math.MaxInt64, math.MinInt64} {
		b, c, d := int8(v), int16(v), int32(v) // truncated copies exercise every width
		h.roundTrip("Ints", func() error { return p.Ints(1, rmi.Reliable, int(v), b, c, d, v) }, int(v), b, c, d, v)
	}
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		b, d, e := uint8(v), uint16(v), uint32(v)
		h.roundTrip("Uints", func() error { return p.Uints(1, rmi.Reliable, uint(v), b, b, d, e, v) }, uint(v), b, b, d, e, v)
	}
	for _, v := range []float64{0, -1.5, 1e300, math.MaxFloat32, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1)} {
		h.roundTrip("Floats", func() error { return p.Floats(1, rmi.Reliable, float32(v), v) }, float32(v), v)
	}
	// NaN: compare bits.
	if err := p.Floats(1, rmi.Reliable, float32(math.NaN()), math.NaN()); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Dispatch(rmi.CallInfo{}, h.frame); err != nil {
		t.Fatal(err)
	}
	if a, b := h.got[0].(float32), h.got[1].(float64); a == a || b == b {
		t.Errorf("NaN round trip: got %v %v", a, b)
	}

	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("x", n)
		b := bytes.Repeat([]byte{0xff}, n)
		h.roundTrip("Strings", func() error { return p.Strings(1, rmi.Reliable, s, b) }, s, b)
	}
	h.roundTrip("Strings nil", func() error { return p.Strings(1, rmi.Reliable, "héllo, 世界", nil) }, "héllo, 世界", []byte(nil))

	h.roundTrip("Slices nil", func() error { return p.Slices(1, rmi.Reliable, nil, nil, nil, nil, nil) },
		[]int32(nil), []string(nil), [][]byte(nil), []Inner(nil), [][]uint16(nil))
	h.roundTrip("Slices empty", func() error {
		return p.Slices(1, rmi.Reliable, []int32{}, []string{}, [][]byte{}, []Inner{}, [][]uint16{})
	}, []int32{}, []string{}, [][]byte{}, []Inner{}, [][]uint16{})
	for _, n := range []int{1, 15, 16, 65535, 65536} {
		a := make([]int32, n)
		for i := range a {
			a[i] = int32(i * 7919)
		}
		b := []string{"", "a", strings.Repeat("b", 40)}
		c := [][]byte{nil, {}, {1, 2, 3}}
		d := []Inner{{}, inner(3), inner(20)}
		e := [][]uint16{nil, {}, {1, 65535}}
		h.roundTrip("Slices", func() error { return p.Slices(1, rmi.Reliable, a, b, c, d, e) }, a, b, c, d, e)
	}

	h.roundTrip("Maps nil", func() error { return p.Maps(1, rmi.Reliable, nil, nil, nil, nil, nil) },
		map[string]int32(nil), map[int64][]Inner(nil), map[bool]string(nil), map[float32]float64(nil), map[uint8][]byte(nil))
	{
		a := map[string]int32{}
		for i := range 70000 { // map32
			a[string(rune(i+0x100))] = int32(i)
		}
		b := map[int64][]Inner{-1: nil, 0: {}, 1 << 40: {inner(2), inner(17)}}
		c := map[bool]string{true: "yes", false: ""}
		d := map[float32]float64{1.5: -2.5, 0: 0}
		e := map[uint8][]byte{0: nil, 255: {}, 7: {7, 7}}
		h.roundTrip("Maps", func() error { return p.Maps(1, rmi.Reliable, a, b, c, d, e) }, a, b, c, d, e)
		h.roundTrip("Maps empty", func() error { return p.Maps(1, rmi.Reliable, map[string]int32{}, nil, nil, nil, nil) },
			map[string]int32{}, map[int64][]Inner(nil), map[bool]string(nil), map[float32]float64(nil), map[uint8][]byte(nil))
	}

	h.roundTrip("Structs zero", func() error { return p.Structs(1, rmi.Reliable, Inner{}, Outer{}, Empty{}) }, Inner{}, Outer{}, Empty{})
	{
		o := Outer{
			In:    inner(5),
			List:  []Inner{inner(0), inner(1)},
			ByID:  map[uint16]Inner{1: inner(1), 65535: {}},
			Grid:  [][]float64{{1, 2}, nil, {}},
			Color: gt.Color{R: 1, G: 2, B: 3, A: 4},
			Plain: gt.Plain{Name: "p", Score: -7},
			Later: Later{N: -1 << 40},
		}
		h.roundTrip("Structs", func() error { return p.Structs(1, rmi.Reliable, inner(4), o, Empty{}) }, inner(4), o, Empty{})
	}

	h.roundTrip("GoTypes zero", func() error {
		return p.GoTypes(1, rmi.Reliable, 0, time.Unix(0, 0), gt.Color{}, gt.Plain{}, nil, nil)
	}, time.Duration(0), time.Unix(0, 0), gt.Color{}, gt.Plain{}, []gt.Color(nil), map[string]gt.Plain(nil))
	{
		tm := time.Unix(1700000000, 123456789)
		cs := []gt.Color{{R: 255}, {A: 255}}
		ps := map[string]gt.Plain{"a": {Name: "x", Score: 1}}
		h.roundTrip("GoTypes", func() error {
			return p.GoTypes(1, rmi.Reliable, -3*time.Second, tm, gt.Color{R: 9, G: 8, B: 7, A: 6}, gt.Plain{Name: "n", Score: 99}, cs, ps)
		}, -3*time.Second, tm, gt.Color{R: 9, G: 8, B: 7, A: 6}, gt.Plain{Name: "n", Score: 99}, cs, ps)
	}

	h.roundTrip("Nothing", func() error { return p.Nothing(1, rmi.Reliable) })
	h.roundTrip("Jump", func() error { return p.Jump(1, rmi.Reliable, -5) }, int32(-5))
	h.roundTrip("AfterJump", func() error { return p.AfterJump(1, rmi.Reliable, math.MaxUint64) }, uint64(math.MaxUint64))
	h.roundTrip("Echo", func() error { return h.second.Echo(1, rmi.Reliable, "echo") }, "echo")
}

func TestGeneratedIDs(t *testing.T) {
	if got, want := (&EveryStub{}).RMIRange(), (rmi.CallRange{First: 100, Last: 151}); got != want {
		t.Errorf("Every range = %v, want %v", got, want)
	}
	ids := map[rmi.CallID]rmi.CallID{Every_Bools: 100, Every_Nothing: 109, Every_Jump: 150, Every_AfterJump: 151, Second_Echo: 200}
	for got, want := range ids {
		if got != want {
			t.Errorf("ID %d, want %d", got, want)
		}
	}
	if got := (&EveryStub{}).RMIName(Every_Jump); got != "Every.Jump" {
		t.Errorf("RMIName = %q", got)
	}
	if got := (&EveryStub{}).RMIName(120); got != "" {
		t.Errorf("RMIName(120) = %q, want empty (a gap)", got)
	}
}

// TestUnmarshalerError checks that a Go type's DecodeRMI error fails the call
// with ErrDecode.
func TestUnmarshalerError(t *testing.T) {
	h := newHarness(t)
	if err := h.every.GoTypes(1, rmi.Reliable, 0, time.Unix(0, 0), gt.Color{A: 1}, gt.Plain{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	err := h.d.Dispatch(rmi.CallInfo{}, h.frame)
	if !errors.Is(err, rmi.ErrDecode) || !strings.Contains(err.Error(), "invalid colour") {
		t.Fatalf("err = %v, want ErrDecode with invalid colour", err)
	}
}

// TestGapInRange checks that an ID inside a stub's range that names no call
// is reported as unknown.
func TestGapInRange(t *testing.T) {
	h := newHarness(t)
	err := h.d.Dispatch(rmi.CallInfo{}, []byte{0, 120, 0x90})
	if !errors.Is(err, rmi.ErrUnknownCall) {
		t.Fatalf("err = %v, want ErrUnknownCall", err)
	}
	if s := h.d.Stats(); s.Unknown != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// TestReflectiveMsgpackInterop checks the wire against the msgpack library:
// frames written by generated code decode with msgpack.Unmarshal, and frames
// written by msgpack.Marshal (which picks other integer widths) dispatch.
func TestReflectiveMsgpackInterop(t *testing.T) {
	h := newHarness(t)
	if err := h.every.Ints(1, rmi.Reliable, -1, 5, -300, 70000, math.MinInt64); err != nil {
		t.Fatal(err)
	}
	var args []any
	if err := msgpack.Unmarshal(h.frame[2:], &args); err != nil {
		t.Fatal(err)
	}
	if len(args) != 5 {
		t.Fatalf("msgpack decoded %d args: %v", len(args), args)
	}

	// msgpack.Marshal writes int8 as 0xd0, int16 as 0xd1...: all accepted.
	body, err := msgpack.Marshal([]any{int64(-1), int8(5), int16(-300), int32(70000), int64(math.MinInt64)})
	if err != nil {
		t.Fatal(err)
	}
	frame := append([]byte{0, byte(Every_Ints)}, body...)
	if err := h.d.Dispatch(rmi.CallInfo{}, frame); err != nil {
		t.Fatal(err)
	}
	want := []any{-1, int8(5), int16(-300), int32(70000), int64(math.MinInt64)}
	if !reflect.DeepEqual(h.got, want) {
		t.Errorf("got %#v, want %#v", h.got, want)
	}

	// Floats written as float64 and as integers are accepted for float32.
	body, _ = msgpack.Marshal([]any{float64(2.5), 7})
	if err := h.d.Dispatch(rmi.CallInfo{}, append([]byte{0, byte(Every_Floats)}, body...)); err != nil {
		t.Fatal(err)
	}
	if want := []any{float32(2.5), float64(7)}; !reflect.DeepEqual(h.got, want) {
		t.Errorf("got %#v, want %#v", h.got, want)
	}

	// A value that does not fit the parameter type is an error, not a truncation.
	body, _ = msgpack.Marshal([]any{0, 300, 0, 0, 0})
	if err := h.d.Dispatch(rmi.CallInfo{}, append([]byte{0, byte(Every_Ints)}, body...)); !errors.Is(err, rmi.ErrDecode) {
		t.Errorf("int8 overflow: err = %v, want ErrDecode", err)
	}
}
