package rmi_test

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/gamerpc"
	"github.com/skein-dev/skein/engine/rmi/internal/testidl"
	gt "github.com/skein-dev/skein/engine/rmi/internal/testidl/gotypes"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzDispatch from seedFrames")

// fuzzRig is a dispatcher with every test stub attached. Each stub function
// records its arguments and a closure that sends them again through a proxy.
type fuzzRig struct {
	d      *rmi.Dispatcher
	cap    captureSender
	args   []any
	resend func() error
}

func newFuzzRig(tb testing.TB) *fuzzRig {
	r := &fuzzRig{d: rmi.NewDispatcher()}
	every := testidl.NewEveryProxy(&r.cap)
	second := testidl.NewSecondProxy(&r.cap)
	game := gamerpc.NewGameProxy(&r.cap)
	lobby := gamerpc.NewLobbyProxy(&r.cap)
	enums := testidl.NewEnumeratedProxy(&r.cap)
	rec := func(resend func() error, args ...any) error {
		r.args, r.resend = args, resend
		return nil
	}
	const to = net.ServerID
	ctx := rmi.Reliable
	stubs := []rmi.Stub{
		&testidl.EveryStub{
			Bools: func(_ rmi.CallInfo, a, b bool) error {
				return rec(func() error { return every.Bools(to, ctx, a, b) }, a, b)
			},
			Ints: func(_ rmi.CallInfo, a int, b int8, c int16, d int32, e int64) error {
				return rec(func() error { return every.Ints(to, ctx, a, b, c, d, e) }, a, b, c, d, e)
			},
			Uints: func(_ rmi.CallInfo, a uint, b, c uint8, d uint16, e uint32, f uint64) error {
				return rec(func() error { return every.Uints(to, ctx, a, b, c, d, e, f) }, a, b, c, d, e, f)
			},
			Floats: func(_ rmi.CallInfo, a float32, b float64) error {
				return rec(func() error { return every.Floats(to, ctx, a, b) }, a, b)
			},
			Strings: func(_ rmi.CallInfo, s string, b []byte) error {
				return rec(func() error { return every.Strings(to, ctx, s, b) }, s, b)
			},
			Slices: func(_ rmi.CallInfo, a []int32, b []string, c [][]byte, d []testidl.Inner, e [][]uint16) error {
				return rec(func() error { return every.Slices(to, ctx, a, b, c, d, e) }, a, b, c, d, e)
			},
			Maps: func(_ rmi.CallInfo, a map[string]int32, b map[int64][]testidl.Inner, c map[bool]string, d map[float32]float64, e map[uint8][]byte) error {
				return rec(func() error { return every.Maps(to, ctx, a, b, c, d, e) }, a, b, c, d, e)
			},
			Structs: func(_ rmi.CallInfo, a testidl.Inner, b testidl.Outer, c testidl.Empty) error {
				return rec(func() error { return every.Structs(to, ctx, a, b, c) }, a, b, c)
			},
			GoTypes: func(_ rmi.CallInfo, d time.Duration, t time.Time, c gt.Color, p gt.Plain, cs []gt.Color, ps map[string]gt.Plain) error {
				return rec(func() error { return every.GoTypes(to, ctx, d, t, c, p, cs, ps) }, d, t, c, p, cs, ps)
			},
			Nothing: func(rmi.CallInfo) error { return rec(func() error { return every.Nothing(to, ctx) }) },
			Jump: func(_ rmi.CallInfo, x int32) error {
				return rec(func() error { return every.Jump(to, ctx, x) }, x)
			},
			AfterJump: func(_ rmi.CallInfo, x uint64) error {
				return rec(func() error { return every.AfterJump(to, ctx, x) }, x)
			},
		},
		&testidl.SecondStub{Echo: func(_ rmi.CallInfo, s string) error {
			return rec(func() error { return second.Echo(to, ctx, s) }, s)
		}},
		&testidl.EnumeratedStub{Enums: func(_ rmi.CallInfo, c testidl.Code, d testidl.Dir, cs []testidl.Code, m map[testidl.Code]testidl.Dir, tg testidl.Tagged) error {
			if !c.Valid() || !d.Valid() || !tg.C.Valid() {
				return fmt.Errorf("undeclared enum value reached the stub: %v %v %v", c, d, tg.C)
			}
			return rec(func() error { return enums.Enums(to, ctx, c, d, cs, m, tg) }, c, d, cs, m, tg)
		}},
		&gamerpc.GameStub{
			Player_Move: func(_ rmi.CallInfo, pos, vel gamerpc.Vec2, tick uint32) error {
				return rec(func() error { return game.Player_Move(to, ctx, pos, vel, tick) }, pos, vel, tick)
			},
			Chat: func(_ rmi.CallInfo, text string) error {
				return rec(func() error { return game.Chat(to, ctx, text) }, text)
			},
			// Hit is left nil: ErrNoHandler.
		},
		&gamerpc.LobbyStub{
			Join: func(_ rmi.CallInfo, name string, options map[string]string) error {
				return rec(func() error { return lobby.Join(to, ctx, name, options) }, name, options)
			},
			Ready: func(rmi.CallInfo) error { return rec(func() error { return lobby.Ready(to, ctx) }) },
		},
	}
	for _, s := range stubs {
		if err := r.d.Attach(s); err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

// seedFrames returns a valid frame for every call of the test IDLs.
func seedFrames(tb testing.TB) [][]byte {
	var c captureSender
	var frames [][]byte
	add := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
		frames = append(frames, append([]byte(nil), c.last...))
	}
	every, second := testidl.NewEveryProxy(&c), testidl.NewSecondProxy(&c)
	game, lobby := gamerpc.NewGameProxy(&c), gamerpc.NewLobbyProxy(&c)
	ctx := rmi.Reliable
	in := testidl.Inner{Name: "n", Data: []byte{1}, Tags: map[string]int32{"t": -1}}
	add(every.Bools(1, ctx, true, false))
	add(every.Ints(1, ctx, -1, math.MinInt8, 300, -70000, math.MaxInt64))
	add(every.Uints(1, ctx, 1, 200, 7, 60000, 1<<31, math.MaxUint64))
	add(every.Floats(1, ctx, 1.5, math.Inf(-1)))
	add(every.Strings(1, ctx, "héllo", []byte{0, 1}))
	add(every.Slices(1, ctx, []int32{1, -2}, []string{"a"}, [][]byte{nil, {}}, []testidl.Inner{in}, [][]uint16{{1}}))
	add(every.Maps(1, ctx, map[string]int32{"a": 1}, map[int64][]testidl.Inner{5: {in}}, map[bool]string{true: "t"},
		map[float32]float64{0.5: 2}, map[uint8][]byte{1: nil}))
	add(every.Structs(1, ctx, in, testidl.Outer{In: in, List: []testidl.Inner{in}, Grid: [][]float64{{1}},
		Color: gt.Color{R: 1}, Plain: gt.Plain{Name: "p", Score: 2}, Later: testidl.Later{N: 3}}, testidl.Empty{}))
	add(every.GoTypes(1, ctx, time.Second, time.Unix(1700000000, 5), gt.Color{G: 2}, gt.Plain{Name: "x"},
		[]gt.Color{{B: 3}}, map[string]gt.Plain{"k": {Score: 4}}))
	add(every.Nothing(1, ctx))
	add(every.Jump(1, ctx, -9))
	add(every.AfterJump(1, ctx, 1<<40))
	add(second.Echo(1, ctx, "echo"))
	add(game.Player_Move(1, ctx, gamerpc.Vec2{X: 1, Y: 2}, gamerpc.Vec2{X: 3, Y: 4}, 99))
	add(game.Chat(1, ctx, "gg"))
	add(game.Hit(1, ctx, 1, 2, -3))
	add(lobby.Join(1, ctx, "me", map[string]string{"map": "arena"}))
	add(lobby.Ready(1, ctx))
	enums := testidl.NewEnumeratedProxy(&c)
	add(enums.Enums(1, ctx, testidl.CodeNotFound, testidl.DirLeft, []testidl.Code{testidl.CodeTeapot, testidl.CodeOk},
		map[testidl.Code]testidl.Dir{testidl.CodeOk: testidl.DirRight},
		testidl.Tagged{C: testidl.CodeTeapot, Path: []testidl.Dir{testidl.DirStill}, Seen: map[testidl.Dir]testidl.Code{testidl.DirLeft: testidl.CodeNotFound}}))
	add(enums.Enums(1, ctx, testidl.Code(405), testidl.Dir(2), nil, nil, testidl.Tagged{})) // undeclared values: a decode error
	return frames
}

// FuzzDispatch feeds arbitrary frames to a dispatcher holding every test stub.
// Dispatch must never panic and must fail only with a *CallError. When a frame
// dispatches, its arguments are sent again through the proxy, and the new
// frame must dispatch to the same values (the decoder accepts exactly what
// the encoder can reproduce).
func FuzzDispatch(f *testing.F) {
	for _, fr := range seedFrames(f) {
		f.Add(fr)
	}
	f.Add([]byte{})
	f.Add([]byte{0x07})
	f.Add([]byte{0xff, 0xff, 0x90})
	r := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		r.args, r.resend = nil, nil
		err := r.d.Dispatch(rmi.CallInfo{From: 1000}, frame)
		if err != nil {
			var ce *rmi.CallError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *CallError: %v", err)
			}
			return
		}
		if r.resend == nil {
			return // a call without a recording stub
		}
		first := r.args
		if err := r.resend(); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again := r.cap.last
		if err := r.d.Dispatch(rmi.CallInfo{From: 1000}, again); err != nil {
			t.Fatalf("re-encoded frame % x does not dispatch: %v", again, err)
		}
		if !sameValue(reflect.ValueOf(first), reflect.ValueOf(r.args)) {
			t.Fatalf("round trip changed the arguments:\nfirst %#v\nagain %#v", first, r.args)
		}
	})
}

// sameValue is reflect.DeepEqual where NaN equals NaN (and map entries with NaN
// keys, which cannot be looked up, are compared by count only).
func sameValue(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() || a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y || x != x && y != y
	case reflect.Interface, reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for it := a.MapRange(); it.Next(); {
			k := it.Key()
			if (k.Kind() == reflect.Float32 || k.Kind() == reflect.Float64) && k.Float() != k.Float() {
				continue
			}
			bv := b.MapIndex(k)
			if !bv.IsValid() || !sameValue(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if a.Type() == reflect.TypeFor[time.Time]() {
			return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
		}
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
}

// TestWriteFuzzCorpus rewrites the seed corpus under testdata/fuzz when run
// with -update-corpus; otherwise it checks the corpus holds every seed.
func TestWriteFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDispatch")
	for i, fr := range seedFrames(t) {
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", fr)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != content {
			t.Errorf("%s is missing or stale: run go test -run TestWriteFuzzCorpus -update-corpus", name)
		}
	}
}
