package rmi

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Decoder reads msgpack values from a byte slice without reflection and
// without allocating, except for the strings, byte slices, slices and maps it
// returns (which never alias the input).
//
// Errors are sticky: the first malformed, truncated or out-of-range value
// records an error wrapping ErrDecode, and every later Decode method returns a
// zero value. Check Err (or Finish) once after a group of reads. Decoders are
// plain values: declare one on the stack with NewDecoder.
//
// The decoder accepts every msgpack encoding of a value that fits the
// requested Go type: any integer format for integers (checked for overflow),
// float 32, float 64 or an integer for floats, str or bin for strings and
// byte slices. Nil is accepted only where Go has nil: byte slices, slices and
// maps.
type Decoder struct {
	buf []byte
	off int
	err error
}

// NewDecoder returns a Decoder reading b. The Decoder never modifies b.
func NewDecoder(b []byte) Decoder { return Decoder{buf: b} }

// Reset makes d read b from the start and clears its error.
func (d *Decoder) Reset(b []byte) { *d = Decoder{buf: b} }

// Err returns the first error, or nil.
func (d *Decoder) Err() error { return d.err }

// Remaining returns the number of unread bytes.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Finish returns d's error, or an error wrapping ErrDecode if bytes remain
// unread, or nil.
func (d *Decoder) Finish() error {
	if d.err == nil && d.off != len(d.buf) {
		d.fail("%d trailing bytes at offset %d", len(d.buf)-d.off, d.off)
	}
	return d.err
}

// SetError records err, wrapped with ErrDecode, if d has no error yet; every
// later read returns a zero value. An Unmarshaler that finds a decoded value
// invalid uses it.
func (d *Decoder) SetError(err error) {
	if d.err == nil && err != nil {
		d.err = fmt.Errorf("%w: %w", ErrDecode, err)
		d.off = len(d.buf)
	}
}

func (d *Decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrDecode}, args...)...)
		d.off = len(d.buf)
	}
}

func (d *Decoder) truncated() {
	d.fail("truncated at offset %d", d.off)
}

// readCode returns the next format byte; ok is false at the end of input.
func (d *Decoder) readCode() (c byte, ok bool) {
	if d.off >= len(d.buf) {
		d.truncated()
		return 0, false
	}
	c = d.buf[d.off]
	d.off++
	return c, true
}

// readN returns the next n bytes.
func (d *Decoder) readN(n int) ([]byte, bool) {
	if n < 0 || n > len(d.buf)-d.off {
		d.truncated()
		return nil, false
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b, true
}

func (d *Decoder) read1() uint64 {
	b, ok := d.readN(1)
	if !ok {
		return 0
	}
	return uint64(b[0])
}

func (d *Decoder) read2() uint64 {
	b, ok := d.readN(2)
	if !ok {
		return 0
	}
	return uint64(b[0])<<8 | uint64(b[1])
}

func (d *Decoder) read4() uint64 {
	b, ok := d.readN(4)
	if !ok {
		return 0
	}
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

func (d *Decoder) read8() uint64 {
	b, ok := d.readN(8)
	if !ok {
		return 0
	}
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// integer decodes any msgpack integer whose format byte is c. A negative value
// is returned as neg=true and its two's complement in v.
func (d *Decoder) integer(c byte, want string) (v uint64, neg bool, ok bool) {
	switch {
	case c <= 0x7f:
		return uint64(c), false, true
	case c >= 0xe0:
		return uint64(int64(int8(c))), true, true
	}
	switch c {
	case mpUint8:
		v = d.read1()
	case mpUint16:
		v = d.read2()
	case mpUint32:
		v = d.read4()
	case mpUint64:
		v = d.read8()
	case mpInt8:
		v = uint64(int64(int8(d.read1())))
	case mpInt16:
		v = uint64(int64(int16(d.read2())))
	case mpInt32:
		v = uint64(int64(int32(d.read4())))
	case mpInt64:
		v = d.read8()
	default:
		d.fail("format 0x%02x at offset %d is not %s", c, d.off-1, want)
		return 0, false, false
	}
	if d.err != nil {
		return 0, false, false
	}
	return v, c >= mpInt8 && int64(v) < 0, true
}

// signed decodes an integer that must lie in [lo, hi].
func (d *Decoder) signed(lo, hi int64, want string) int64 {
	if d.off < len(d.buf) && d.buf[d.off] <= 0x7f && int64(d.buf[d.off]) <= hi {
		d.off++
		return int64(d.buf[d.off-1])
	}
	c, ok := d.readCode()
	if !ok {
		return 0
	}
	if c <= 0x7f { // positive fixint: the common case
		if int64(c) > hi {
			d.fail("value %d overflows %s", c, want)
			return 0
		}
		return int64(c)
	}
	v, neg, ok := d.integer(c, want)
	if !ok {
		return 0
	}
	if !neg && v > uint64(hi) {
		d.fail("value %d overflows %s", v, want)
		return 0
	}
	if neg && int64(v) < lo {
		d.fail("value %d overflows %s", int64(v), want)
		return 0
	}
	return int64(v)
}

// unsigned decodes an integer that must lie in [0, hi].
func (d *Decoder) unsigned(hi uint64, want string) uint64 {
	if d.off < len(d.buf) && d.buf[d.off] <= 0x7f {
		d.off++
		return uint64(d.buf[d.off-1])
	}
	c, ok := d.readCode()
	if !ok {
		return 0
	}
	if c <= 0x7f {
		if uint64(c) > hi {
			d.fail("value %d overflows %s", c, want)
			return 0
		}
		return uint64(c)
	}
	v, neg, ok := d.integer(c, want)
	if !ok {
		return 0
	}
	if neg {
		d.fail("value %d overflows %s", int64(v), want)
		return 0
	}
	if v > hi {
		d.fail("value %d overflows %s", v, want)
		return 0
	}
	return v
}

// DecodeBool reads true or false.
func (d *Decoder) DecodeBool() bool {
	c, ok := d.readCode()
	switch {
	case !ok:
		return false
	case c == mpTrue:
		return true
	case c == mpFalse:
		return false
	}
	d.fail("format 0x%02x at offset %d is not bool", c, d.off-1)
	return false
}

// DecodeInt reads an integer that fits an int.
func (d *Decoder) DecodeInt() int { return int(d.signed(math.MinInt, math.MaxInt, "int")) }

// DecodeInt8 reads an integer that fits an int8.
func (d *Decoder) DecodeInt8() int8 { return int8(d.signed(math.MinInt8, math.MaxInt8, "int8")) }

// DecodeInt16 reads an integer that fits an int16.
func (d *Decoder) DecodeInt16() int16 {
	return int16(d.signed(math.MinInt16, math.MaxInt16, "int16"))
}

// DecodeInt32 reads an integer that fits an int32.
func (d *Decoder) DecodeInt32() int32 {
	return int32(d.signed(math.MinInt32, math.MaxInt32, "int32"))
}

// DecodeInt64 reads an integer that fits an int64.
func (d *Decoder) DecodeInt64() int64 { return d.signed(math.MinInt64, math.MaxInt64, "int64") }

// DecodeUint reads a non-negative integer that fits a uint.
func (d *Decoder) DecodeUint() uint { return uint(d.unsigned(math.MaxUint, "uint")) }

// DecodeUint8 reads a non-negative integer that fits a uint8.
func (d *Decoder) DecodeUint8() uint8 { return uint8(d.unsigned(math.MaxUint8, "uint8")) }

// DecodeUint16 reads a non-negative integer that fits a uint16.
func (d *Decoder) DecodeUint16() uint16 { return uint16(d.unsigned(math.MaxUint16, "uint16")) }

// DecodeUint32 reads a non-negative integer that fits a uint32.
func (d *Decoder) DecodeUint32() uint32 {
	if b := d.buf[d.off:]; len(b) >= 5 && b[0] == mpUint32 { // inlined fast path
		d.off += 5
		return binary.BigEndian.Uint32(b[1:])
	}
	return uint32(d.unsigned(math.MaxUint32, "uint32"))
}

// DecodeUint64 reads a non-negative integer.
func (d *Decoder) DecodeUint64() uint64 { return d.unsigned(math.MaxUint64, "uint64") }

// number reads a float 32, float 64 or integer as a float64; is32 reports a
// float 32 (whose bits are returned in f32 to keep NaN payloads intact).
func (d *Decoder) number(want string) (f64 float64, f32 float32, is32 bool) {
	c, ok := d.readCode()
	if !ok {
		return 0, 0, false
	}
	switch c {
	case mpFloat32:
		return 0, math.Float32frombits(uint32(d.read4())), true
	case mpFloat64:
		return math.Float64frombits(d.read8()), 0, false
	}
	v, neg, ok := d.integer(c, want)
	if !ok {
		return 0, 0, false
	}
	if neg {
		return float64(int64(v)), 0, false
	}
	return float64(v), 0, false
}

// DecodeFloat32 reads a float 32, or a float 64 or integer converted to
// float32.
func (d *Decoder) DecodeFloat32() float32 {
	// Fast path (inlined) for the format Encoder writes.
	if b := d.buf[d.off:]; len(b) >= 5 && b[0] == mpFloat32 {
		d.off += 5
		return math.Float32frombits(binary.BigEndian.Uint32(b[1:]))
	}
	return d.float32Slow()
}

func (d *Decoder) float32Slow() float32 {
	f64, f32, is32 := d.number("float32")
	if is32 {
		return f32
	}
	return float32(f64)
}

// DecodeFloat64 reads a float 64, or a float 32 or integer converted to
// float64.
func (d *Decoder) DecodeFloat64() float64 {
	f64, f32, is32 := d.number("float64")
	if is32 {
		return float64(f32)
	}
	return f64
}

// rawLen reads the header of a str or bin value and returns its length.
func (d *Decoder) rawLen(want string, allowNil bool) (n int, isNil bool) {
	c, ok := d.readCode()
	if !ok {
		return 0, false
	}
	switch {
	case c&0xe0 == mpFixStr:
		return int(c & 0x1f), false
	case c == mpStr8 || c == mpBin8:
		return int(d.read1()), false
	case c == mpStr16 || c == mpBin16:
		return int(d.read2()), false
	case c == mpStr32 || c == mpBin32:
		return int(d.read4()), false
	case c == mpNil && allowNil:
		return 0, true
	}
	d.fail("format 0x%02x at offset %d is not %s", c, d.off-1, want)
	return 0, false
}

// DecodeString reads a str (or bin) value.
func (d *Decoder) DecodeString() string {
	n, _ := d.rawLen("string", false)
	b, ok := d.readN(n)
	if !ok {
		return ""
	}
	return string(b)
}

// DecodeBytes reads a bin (or str) value into a new slice, or nil for msgpack
// nil. An empty bin gives an empty, non-nil slice.
func (d *Decoder) DecodeBytes() []byte {
	n, isNil := d.rawLen("[]byte", true)
	if isNil {
		return nil
	}
	b, ok := d.readN(n)
	if !ok {
		return nil
	}
	return append(make([]byte, 0, n), b...)
}

// containerLen reads an array (map when isMap) header. It returns -1 for nil.
func (d *Decoder) containerLen(isMap bool, want string) int {
	c, ok := d.readCode()
	if !ok {
		return 0
	}
	fix, c16, c32 := byte(mpFixArray), byte(mpArray16), byte(mpArray32)
	if isMap {
		fix, c16, c32 = mpFixMap, mpMap16, mpMap32
	}
	switch {
	case c&0xf0 == fix:
		return int(c & 0x0f)
	case c == c16:
		return int(d.read2())
	case c == c32:
		return int(d.read4())
	case c == mpNil:
		return -1
	}
	d.fail("format 0x%02x at offset %d is not %s", c, d.off-1, want)
	return 0
}

// DecodeArrayLen reads an array header and returns its length, or -1 for
// msgpack nil. A length larger than the remaining bytes (every element takes
// at least one) is an error, so a hostile frame cannot make the caller
// allocate more than the frame's size in elements.
func (d *Decoder) DecodeArrayLen() int { return d.DecodeSliceLen(1) }

// DecodeSliceLen is DecodeArrayLen for elements that take at least minSize
// bytes each when encoded: it fails if n*minSize exceeds the remaining bytes.
// Generated code passes the minimum encoded size of the element type.
func (d *Decoder) DecodeSliceLen(minSize int) int {
	n := d.containerLen(false, "array")
	if n > 0 && n > (len(d.buf)-d.off)/max(minSize, 1) {
		d.fail("array of %d elements is longer than the %d bytes left", n, len(d.buf)-d.off)
		return 0
	}
	return n
}

// DecodeMapLen reads a map header and returns its number of entries, or -1
// for msgpack nil. Like DecodeArrayLen, it fails if the entries cannot fit in
// the remaining bytes (two bytes at least per entry).
func (d *Decoder) DecodeMapLen() int {
	n := d.containerLen(true, "map")
	if n > 0 && n > (len(d.buf)-d.off)/2 {
		d.fail("map of %d entries is longer than the %d bytes left", n, len(d.buf)-d.off)
		return 0
	}
	return n
}

// DecodeArrayHeader reads an array header that must announce exactly n
// elements (the arguments of a call, the fields of an IDL struct). It reports
// whether it did; if not, d has an error.
func (d *Decoder) DecodeArrayHeader(n int) bool {
	if d.off < len(d.buf) && n < 16 && d.buf[d.off] == mpFixArray|byte(n) { // inlined fast path
		d.off++
		return true
	}
	return d.arrayHeaderSlow(n)
}

func (d *Decoder) arrayHeaderSlow(n int) bool {
	got := d.containerLen(false, "array")
	if d.err != nil {
		return false
	}
	if got != n {
		d.fail("array of %d elements where %d were expected", got, n)
		return false
	}
	return true
}

// maxSkipDepth bounds the nesting Skip accepts, so that a hostile frame of
// nested one-element arrays cannot exhaust the stack.
const maxSkipDepth = 100

// Skip reads past one msgpack value of any type, checking that every length
// it announces fits in the remaining bytes and that it nests at most 100
// deep. DecodeValue uses it to vet a value before the reflective decoder
// sees it.
func (d *Decoder) Skip() { d.skip(0) }

func (d *Decoder) skip(depth int) {
	if depth > maxSkipDepth {
		d.fail("values nested deeper than %d at offset %d", maxSkipDepth, d.off)
		return
	}
	c, ok := d.readCode()
	if !ok {
		return
	}
	n, elems := 0, 0 // bytes to skip, or elements to skip recursively
	switch {
	case c <= 0x7f || c >= 0xe0 || c == mpNil || c == mpFalse || c == mpTrue:
	case c&0xf0 == mpFixMap:
		elems = 2 * int(c&0x0f)
	case c&0xf0 == mpFixArray:
		elems = int(c & 0x0f)
	case c&0xe0 == mpFixStr:
		n = int(c & 0x1f)
	case c == mpBin8 || c == mpStr8:
		n = int(d.read1())
	case c == mpBin16 || c == mpStr16:
		n = int(d.read2())
	case c == mpBin32 || c == mpStr32:
		n = int(d.read4())
	case c == 0xc7: // ext 8
		n = 1 + int(d.read1())
	case c == 0xc8: // ext 16
		n = 1 + int(d.read2())
	case c == 0xc9: // ext 32
		n = 1 + int(d.read4())
	case c == mpFloat32 || c == mpUint32 || c == mpInt32:
		n = 4
	case c == mpFloat64 || c == mpUint64 || c == mpInt64:
		n = 8
	case c == mpUint8 || c == mpInt8:
		n = 1
	case c == mpUint16 || c == mpInt16:
		n = 2
	case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16 (plus the type byte)
		n = 1 + 1<<(c-0xd4)
	case c == mpArray16:
		elems = int(d.read2())
	case c == mpArray32:
		elems = int(d.read4())
	case c == mpMap16:
		elems = 2 * int(d.read2())
	case c == mpMap32:
		elems = 2 * int(d.read4())
	default: // 0xc1, never used
		d.fail("format 0x%02x at offset %d is not valid msgpack", c, d.off-1)
		return
	}
	if n > 0 {
		d.readN(n)
		return
	}
	if elems > len(d.buf)-d.off {
		d.fail("container of %d values is longer than the %d bytes left", elems, len(d.buf)-d.off)
		return
	}
	for range elems {
		d.skip(depth + 1)
		if d.err != nil {
			return
		}
	}
}
