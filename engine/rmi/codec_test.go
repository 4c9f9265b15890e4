package rmi_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/skein-dev/skein/engine/rmi"
	"github.com/vmihailenco/msgpack/v5"
)

// msgpackBytes encodes with the msgpack library (compact integers), the
// reference for Encoder's output.
func msgpackBytes(t *testing.T, f func(*msgpack.Encoder) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := f(enc); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var intEdges = []int64{0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1,
	math.MaxInt64, -1, -31, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64}

// TestEncoderMatchesMsgpack checks that Encoder writes the same bytes as the
// msgpack library for every format boundary.
func TestEncoderMatchesMsgpack(t *testing.T) {
	check := func(name string, got []byte, want []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got % x, want % x", name, got, want)
		}
	}
	var e rmi.Encoder
	for _, v := range intEdges {
		e.Reset()
		e.EncodeInt64(v)
		check("int64", e.Bytes(), msgpackBytes(t, func(m *msgpack.Encoder) error { return m.EncodeInt(v) }))
		if v >= 0 {
			e.Reset()
			e.EncodeUint64(uint64(v))
			check("uint64", e.Bytes(), msgpackBytes(t, func(m *msgpack.Encoder) error { return m.EncodeUint(uint64(v)) }))
		}
	}
	e.Reset()
	e.EncodeUint64(math.MaxUint64)
	check("maxuint64", e.Bytes(), msgpackBytes(t, func(m *msgpack.Encoder) error { return m.EncodeUint(math.MaxUint64) }))
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("s", n)
		e.Reset()
		e.EncodeString(s)
		check("string", e.Bytes(), msgpackBytes(t, func(m *msgpack.Encoder) error { return m.EncodeString(s) }))
		b := []byte(s)
		e.Reset()
		e.EncodeBytes(b)
		check("bytes", e.Bytes(), msgpackBytes(t, func(m *msgpack.Encoder) error { return m.EncodeBytes(b) }))
		e.Reset()
		e.EncodeArrayLen(n)
		check("array", e.Bytes(), msgpackBytes(t, func(m *msgpack.Encoder) error { return m.EncodeArrayLen(n) }))
		e.Reset()
		e.EncodeMapLen(n)
		check("map", e.Bytes(), msgpackBytes(t, func(m *msgpack.Encoder) error { return m.EncodeMapLen(n) }))
	}
	e.Reset()
	e.EncodeBytes(nil)
	e.EncodeNil()
	e.EncodeBool(true)
	e.EncodeBool(false)
	e.EncodeFloat32(1.5)
	e.EncodeFloat64(-2.25)
	check("misc", e.Bytes(), msgpackBytes(t, func(m *msgpack.Encoder) error {
		m.EncodeNil()
		m.EncodeNil()
		m.EncodeBool(true)
		m.EncodeBool(false)
		m.EncodeFloat32(1.5)
		return m.EncodeFloat64(-2.25)
	}))
}

// TestDecoderAcceptsEveryIntegerFormat decodes values written by the msgpack
// library in fixed-width formats (EncodeInt8..EncodeUint64).
func TestDecoderAcceptsEveryIntegerFormat(t *testing.T) {
	b := msgpackBytes(t, func(m *msgpack.Encoder) error {
		m.EncodeInt8(-5)
		m.EncodeInt16(-5)
		m.EncodeInt32(-5)
		m.EncodeInt64(-5)
		m.EncodeUint8(5)
		m.EncodeUint16(5)
		m.EncodeUint32(5)
		return m.EncodeUint64(5)
	})
	d := rmi.NewDecoder(b)
	for i := range 4 {
		if v := d.DecodeInt8(); v != -5 {
			t.Errorf("signed %d: %d", i, v)
		}
	}
	for i := range 4 {
		if v := d.DecodeUint8(); v != 5 {
			t.Errorf("unsigned %d: %d", i, v)
		}
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestDecoderRoundTripEdges(t *testing.T) {
	var e rmi.Encoder
	for _, v := range intEdges {
		e.EncodeInt64(v)
	}
	d := rmi.NewDecoder(e.Bytes())
	for _, v := range intEdges {
		if got := d.DecodeInt64(); got != v {
			t.Errorf("DecodeInt64 = %d, want %d", got, v)
		}
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

// TestDecoderErrors checks that every malformed input is an ErrDecode error,
// that errors are sticky, and that nothing panics.
func TestDecoderErrors(t *testing.T) {
	enc := func(f func(e *rmi.Encoder)) []byte {
		var e rmi.Encoder
		f(&e)
		return e.Bytes()
	}
	cases := []struct {
		name string
		in   []byte
		read func(d *rmi.Decoder)
		msg  string
	}{
		{"empty", nil, func(d *rmi.Decoder) { d.DecodeInt32() }, "truncated"},
		{"int8 overflow", enc(func(e *rmi.Encoder) { e.EncodeInt(128) }), func(d *rmi.Decoder) { d.DecodeInt8() }, "overflows int8"},
		{"int8 underflow", enc(func(e *rmi.Encoder) { e.EncodeInt(-129) }), func(d *rmi.Decoder) { d.DecodeInt8() }, "overflows int8"},
		{"int16 overflow", enc(func(e *rmi.Encoder) { e.EncodeInt(1 << 15) }), func(d *rmi.Decoder) { d.DecodeInt16() }, "overflows int16"},
		{"int32 overflow", enc(func(e *rmi.Encoder) { e.EncodeInt(1 << 31) }), func(d *rmi.Decoder) { d.DecodeInt32() }, "overflows int32"},
		{"int64 overflow", enc(func(e *rmi.Encoder) { e.EncodeUint64(1 << 63) }), func(d *rmi.Decoder) { d.DecodeInt64() }, "overflows int64"},
		{"uint8 overflow", enc(func(e *rmi.Encoder) { e.EncodeInt(256) }), func(d *rmi.Decoder) { d.DecodeUint8() }, "overflows uint8"},
		{"uint negative", enc(func(e *rmi.Encoder) { e.EncodeInt(-1) }), func(d *rmi.Decoder) { d.DecodeUint64() }, "overflows uint64"},
		{"uint16 overflow", enc(func(e *rmi.Encoder) { e.EncodeInt(1 << 16) }), func(d *rmi.Decoder) { d.DecodeUint16() }, "overflows uint16"},
		{"uint32 overflow", enc(func(e *rmi.Encoder) { e.EncodeInt(1 << 32) }), func(d *rmi.Decoder) { d.DecodeUint32() }, "overflows uint32"},
		{"int from string", enc(func(e *rmi.Encoder) { e.EncodeString("x") }), func(d *rmi.Decoder) { d.DecodeInt() }, "is not int"},
		{"int from nil", []byte{0xc0}, func(d *rmi.Decoder) { d.DecodeUint() }, "is not uint"},
		{"bool", []byte{0x01}, func(d *rmi.Decoder) { d.DecodeBool() }, "is not bool"},
		{"float from bool", []byte{0xc3}, func(d *rmi.Decoder) { d.DecodeFloat32() }, "is not float32"},
		{"float64 truncated", []byte{0xcb, 1, 2}, func(d *rmi.Decoder) { d.DecodeFloat64() }, "truncated"},
		{"string from int", []byte{0x01}, func(d *rmi.Decoder) { d.DecodeString() }, "is not string"},
		{"string from nil", []byte{0xc0}, func(d *rmi.Decoder) { d.DecodeString() }, "is not string"},
		{"string truncated", []byte{0xa5, 'a'}, func(d *rmi.Decoder) { d.DecodeString() }, "truncated"},
		{"str32 huge", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, func(d *rmi.Decoder) { d.DecodeString() }, "truncated"},
		{"bytes from bool", []byte{0xc2}, func(d *rmi.Decoder) { d.DecodeBytes() }, "is not []byte"},
		{"array from map", []byte{0x80}, func(d *rmi.Decoder) { d.DecodeArrayLen() }, "is not array"},
		{"map from array", []byte{0x90}, func(d *rmi.Decoder) { d.DecodeMapLen() }, "is not map"},
		{"array too long", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1}, func(d *rmi.Decoder) { d.DecodeArrayLen() }, "longer than"},
		{"slice too long", []byte{0x93, 1, 2, 3}, func(d *rmi.Decoder) { d.DecodeSliceLen(2) }, "longer than"},
		{"map too long", []byte{0x82, 1, 2, 3}, func(d *rmi.Decoder) { d.DecodeMapLen() }, "longer than"},
		{"header count", []byte{0x92, 1, 2}, func(d *rmi.Decoder) { d.DecodeArrayHeader(3) }, "where 3 were expected"},
		{"header nil", []byte{0xc0}, func(d *rmi.Decoder) { d.DecodeArrayHeader(0) }, "where 0 were expected"},
		{"trailing", []byte{0x01, 0x02}, func(d *rmi.Decoder) { d.DecodeInt() }, "1 trailing bytes"},
		{"set error", []byte{0x01}, func(d *rmi.Decoder) { d.SetError(errors.New("bad value")) }, "bad value"},
		{"reflective", []byte{0xc1}, func(d *rmi.Decoder) { var s []string; d.DecodeValue(&s) }, "rmi: cannot decode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := rmi.NewDecoder(c.in)
			c.read(&d)
			err := d.Finish()
			if !errors.Is(err, rmi.ErrDecode) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want ErrDecode containing %q", err, c.msg)
			}
			// Sticky: further reads return zero values and keep the first error.
			if v := d.DecodeUint32(); v != 0 {
				t.Errorf("read after error = %d", v)
			}
			if d.Err() != err {
				t.Errorf("error changed to %v", d.Err())
			}
		})
	}
}

func TestDecoderNilAndEmpty(t *testing.T) {
	var e rmi.Encoder
	e.EncodeNil()           // []byte nil
	e.EncodeBytes([]byte{}) // empty
	e.EncodeNil()           // array nil
	e.EncodeArrayLen(0)
	e.EncodeNil() // map nil
	e.EncodeMapLen(0)
	d := rmi.NewDecoder(e.Bytes())
	if b := d.DecodeBytes(); b != nil {
		t.Errorf("nil bytes = %#v", b)
	}
	if b := d.DecodeBytes(); b == nil || len(b) != 0 {
		t.Errorf("empty bytes = %#v", b)
	}
	if n := d.DecodeArrayLen(); n != -1 {
		t.Errorf("nil array len = %d", n)
	}
	if n := d.DecodeArrayLen(); n != 0 {
		t.Errorf("empty array len = %d", n)
	}
	if n := d.DecodeMapLen(); n != -1 {
		t.Errorf("nil map len = %d", n)
	}
	if n := d.DecodeMapLen(); n != 0 {
		t.Errorf("empty map len = %d", n)
	}
	if d.Remaining() != 0 || d.Finish() != nil {
		t.Errorf("remaining %d, err %v", d.Remaining(), d.Err())
	}
}

// TestDecodedBytesDoNotAlias checks that decoded byte slices and strings are
// copies: the transport may reuse its buffer.
func TestDecodedBytesDoNotAlias(t *testing.T) {
	var e rmi.Encoder
	e.EncodeBytes([]byte("abc"))
	buf := append([]byte(nil), e.Bytes()...)
	d := rmi.NewDecoder(buf)
	b := d.DecodeBytes()
	buf[2] = 'X'
	if string(b) != "abc" {
		t.Errorf("decoded bytes alias the frame: %q", b)
	}
}

func TestEncodeValueError(t *testing.T) {
	e := rmi.GetEncoder()
	defer rmi.PutEncoder(e)
	e.EncodeValue(make(chan int))
	if !errors.Is(e.Err(), rmi.ErrEncode) {
		t.Fatalf("err = %v, want ErrEncode", e.Err())
	}
}

func TestHeader(t *testing.T) {
	f := make([]byte, 3)
	rmi.PutHeader(f, 0xABCD)
	id, args, err := rmi.ParseHeader(f)
	if id != 0xABCD || len(args) != 1 || err != nil {
		t.Errorf("ParseHeader = %d %v %v", id, args, err)
	}
	if _, _, err := rmi.ParseHeader([]byte{1}); !errors.Is(err, rmi.ErrShortFrame) {
		t.Errorf("short: %v", err)
	}
}

// TestSkip checks Skip over every msgpack format and its limits.
func TestSkip(t *testing.T) {
	valid := [][]byte{
		{0x05}, {0xe0}, {0xc0}, {0xc2}, {0xc3},
		{0x81, 0x01, 0x02}, {0x92, 0x01, 0xa1, 'x'},
		{0xc4, 1, 0}, {0xc5, 0, 1, 0}, {0xc6, 0, 0, 0, 1, 0},
		{0xd9, 1, 'a'}, {0xda, 0, 1, 'a'}, {0xdb, 0, 0, 0, 1, 'a'},
		{0xc7, 1, 5, 0}, {0xc8, 0, 1, 5, 0}, {0xc9, 0, 0, 0, 1, 5, 0},
		{0xca, 0, 0, 0, 0}, {0xcb, 0, 0, 0, 0, 0, 0, 0, 0},
		{0xcc, 1}, {0xcd, 1, 2}, {0xce, 1, 2, 3, 4}, {0xcf, 1, 2, 3, 4, 5, 6, 7, 8},
		{0xd0, 1}, {0xd1, 1, 2}, {0xd2, 1, 2, 3, 4}, {0xd3, 1, 2, 3, 4, 5, 6, 7, 8},
		{0xd4, 1, 0}, {0xd5, 1, 0, 0}, {0xd6, 1, 0, 0, 0, 0}, {0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0},
		append([]byte{0xd8, 1}, make([]byte, 16)...),
		{0xdc, 0, 1, 0xc0}, {0xdd, 0, 0, 0, 1, 0xc0}, {0xde, 0, 1, 1, 2}, {0xdf, 0, 0, 0, 1, 1, 2},
	}
	for _, b := range valid {
		d := rmi.NewDecoder(b)
		d.Skip()
		if err := d.Finish(); err != nil {
			t.Errorf("Skip(% x): %v", b, err)
		}
	}
	deep := bytes.Repeat([]byte{0x91}, 200)
	invalid := map[string][]byte{
		"reserved":   {0xc1},
		"bin32 huge": {0xc6, 0xff, 0xff, 0xff, 0xff},
		"array huge": {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0},
		"map huge":   {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0, 0xc0},
		"deep":       append(deep, 0xc0),
		"truncated":  {0x92, 0x01},
	}
	for name, b := range invalid {
		d := rmi.NewDecoder(b)
		d.Skip()
		if err := d.Finish(); !errors.Is(err, rmi.ErrDecode) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestDecodeValueRefusesHostileLengths checks that the reflective fallback
// never sees a length the frame cannot hold (msgpack would allocate it).
func TestDecodeValueRefusesHostileLengths(t *testing.T) {
	for _, b := range [][]byte{
		{0xc6, 0xff, 0xff, 0xff, 0xff},                  // bin32 of 4 GiB
		{0xdb, 0x7f, 0xff, 0xff, 0xff},                  // str32 of 2 GiB
		append(bytes.Repeat([]byte{0x91}, 1<<16), 0xc0), // deep nesting
	} {
		var v any
		d := rmi.NewDecoder(b)
		d.DecodeValue(&v)
		if !errors.Is(d.Err(), rmi.ErrDecode) {
			t.Errorf("% x...: err = %v", b[:5], d.Err())
		}
	}
	var s []string
	d := rmi.NewDecoder([]byte{0x92, 0xa1, 'a', 0xa0})
	d.DecodeValue(&s)
	if err := d.Finish(); err != nil || len(s) != 2 || s[0] != "a" {
		t.Errorf("DecodeValue = %q, %v", s, err)
	}
}
