package testidl

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/vmihailenco/msgpack/v5"
)

// enumRig sends Enumerated.Enums through a proxy and dispatches the frame to
// a stub that records its arguments.
type enumRig struct {
	d     *rmi.Dispatcher
	proxy *EnumeratedProxy
	frame []byte
	calls int
	got   []any
}

func newEnumRig(t *testing.T) *enumRig {
	r := &enumRig{d: rmi.NewDispatcher()}
	r.proxy = NewEnumeratedProxy(rmi.SenderFunc(func(_ net.HostID, _ net.Delivery, data []byte) error {
		r.frame = append([]byte(nil), data...)
		return nil
	}))
	err := r.d.Attach(&EnumeratedStub{Enums: func(_ rmi.CallInfo, c Code, d Dir, cs []Code, m map[Code]Dir, tg Tagged) error {
		r.calls++
		r.got = []any{c, d, cs, m, tg}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoundTripEnums(t *testing.T) {
	r := newEnumRig(t)
	tg := Tagged{C: CodeTeapot, Path: []Dir{DirLeft, DirStill, DirRight}, Seen: map[Dir]Code{DirLeft: CodeNotFound, DirRight: CodeOk}}
	cs := []Code{CodeOk, CodeNotFound, CodeTeapot}
	m := map[Code]Dir{CodeTeapot: DirLeft}
	if err := r.proxy.Enums(1, rmi.Reliable, CodeNotFound, DirLeft, cs, m, tg); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Dispatch(rmi.CallInfo{}, r.frame); err != nil {
		t.Fatal(err)
	}
	want := []any{CodeNotFound, DirLeft, cs, m, tg}
	if !reflect.DeepEqual(r.got, want) {
		t.Errorf("got %#v, want %#v", r.got, want)
	}
	// The wire is plain msgpack integers: 404 as uint16, -1 as a negative fixint.
	dec := msgpack.NewDecoder(bytes.NewReader(r.frame[rmi.HeaderSize:]))
	if n, err := dec.DecodeArrayLen(); err != nil || n != 5 {
		t.Fatalf("array of %d, %v", n, err)
	}
	args := make([]any, 2)
	for i := range args {
		var err error
		if args[i], err = dec.DecodeInterface(); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := args[0].(uint16); !ok || n != 404 {
		t.Errorf("Code on the wire = %#v, want uint16 404", args[0])
	}
	if n, ok := args[1].(int8); !ok || n != -1 {
		t.Errorf("Dir on the wire = %#v, want int8 -1", args[1])
	}
}

// TestEnumOutOfRange sends, for each place an enum can be (parameter, slice
// element, map key and value, struct field and its slice and map), a value
// the IDL does not declare: every frame fails with ErrDecode wrapping an
// *rmi.EnumError, is counted as malformed, and the stub never runs.
func TestEnumOutOfRange(t *testing.T) {
	good := func() []any {
		return []any{uint16(0), int8(0), []any{uint16(404)}, map[any]any{uint16(418): int8(1)},
			[]any{uint16(0), []any{int8(-1)}, map[any]any{int8(0): uint16(0)}}}
	}
	cases := []struct {
		name  string
		edit  func(a []any)
		typ   string
		value string
	}{
		{"param Code", func(a []any) { a[0] = uint16(405) }, "Code", "405"},
		{"param Code huge", func(a []any) { a[0] = uint64(1 << 40) }, "", ""}, // overflows uint16 first
		{"param Dir", func(a []any) { a[1] = int8(2) }, "Dir", "2"},
		{"param Dir negative", func(a []any) { a[1] = int8(-2) }, "Dir", "-2"},
		{"slice elem", func(a []any) { a[2] = []any{uint16(0), uint16(1)} }, "Code", "1"},
		{"map key", func(a []any) { a[3] = map[any]any{uint16(7): int8(0)} }, "Code", "7"},
		{"map value", func(a []any) { a[3] = map[any]any{uint16(0): int8(-128)} }, "Dir", "-128"},
		{"struct field", func(a []any) { a[4].([]any)[0] = uint16(65535) }, "Code", "65535"},
		{"struct slice", func(a []any) { a[4].([]any)[1] = []any{int8(0), int8(3)} }, "Dir", "3"},
		{"struct map key", func(a []any) { a[4].([]any)[2] = map[any]any{int8(9): uint16(0)} }, "Dir", "9"},
		{"struct map value", func(a []any) { a[4].([]any)[2] = map[any]any{int8(1): uint16(403)} }, "Code", "403"},
	}
	r := newEnumRig(t)
	// The unedited frame dispatches: the edits below are what fails.
	body, err := msgpack.Marshal(good())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.d.Dispatch(rmi.CallInfo{}, append([]byte{1, 44}, body...)); err != nil {
		t.Fatalf("base frame: %v", err)
	}
	for i, c := range cases {
		args := good()
		c.edit(args)
		body, err := msgpack.Marshal(args)
		if err != nil {
			t.Fatal(err)
		}
		calls := r.calls
		err = r.d.Dispatch(rmi.CallInfo{From: 7}, append([]byte{1, 44}, body...))
		if !errors.Is(err, rmi.ErrDecode) {
			t.Errorf("%s: err = %v, want ErrDecode", c.name, err)
		}
		var ee *rmi.EnumError
		if c.typ != "" {
			if !errors.As(err, &ee) || !errors.Is(err, rmi.ErrEnumValue) {
				t.Errorf("%s: err = %v, want an *rmi.EnumError", c.name, err)
			} else if ee.Type != c.typ || rmi.EnumString(ee.Type, ee.Value, ee.Unsigned) != c.typ+"("+c.value+")" {
				t.Errorf("%s: EnumError = %+v, want %s value %s", c.name, ee, c.typ, c.value)
			}
		}
		if r.calls != calls {
			t.Errorf("%s: the stub ran on an undeclared value", c.name)
		}
		if s := r.d.Stats(); s.Malformed != uint64(i+1) {
			t.Errorf("%s: Malformed = %d, want %d", c.name, s.Malformed, i+1)
		}
	}
}

func TestEnumString(t *testing.T) {
	for v, want := range map[Code]string{CodeOk: "Ok", CodeNotFound: "NotFound", CodeTeapot: "Teapot", 405: "Code(405)"} {
		if got := v.String(); got != want {
			t.Errorf("Code %d String = %q, want %q", uint16(v), got, want)
		}
	}
	for v, want := range map[Dir]string{DirLeft: "Left", DirStill: "Still", DirRight: "Right", -128: "Dir(-128)", 2: "Dir(2)"} {
		if got := v.String(); got != want {
			t.Errorf("Dir %d String = %q, want %q", int8(v), got, want)
		}
	}
	for v, want := range map[Code]bool{0: true, 1: false, 403: false, 404: true, 417: false, 418: true, 65535: false} {
		if v.Valid() != want {
			t.Errorf("Code(%d).Valid() = %v", uint16(v), !want)
		}
	}
	for v := -128; v <= 127; v++ {
		if got, want := Dir(v).Valid(), v >= -1 && v <= 1; got != want {
			t.Errorf("Dir(%d).Valid() = %v", v, got)
		}
	}
	if DirLeft != -1 || DirStill != 0 || DirRight != 1 || CodeTeapot != 418 {
		t.Error("enum constants do not have the IDL's values")
	}
}
