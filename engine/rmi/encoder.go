package rmi

import (
	"fmt"
	"math"
	"sync"
)

// msgpack format codes used by Encoder and Decoder.
const (
	mpNil      = 0xc0
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf
	mpFixArray = 0x90
	mpFixMap   = 0x80
	mpFixStr   = 0xa0
)

// Encoder appends msgpack values to a byte buffer. It writes the msgpack
// bytes directly, without reflection, so encoding the IDL's basic types and
// structs never allocates once the buffer has grown. Integers use the
// smallest msgpack encoding that holds the value (like msgpack's
// UseCompactInts), float32 stays a 4-byte float.
//
// Encoding into a buffer cannot fail; only EncodeValue (the reflective
// fallback for Go types) can, and it records the first error, returned by
// Err. Generated code gets an Encoder from StartCall and hands it to
// (*Proxy).Send, which returns it to a pool.
type Encoder struct {
	buf []byte
	err error
}

// maxPooledBuffer is the largest buffer kept in the Encoder pool; larger ones
// (rare big reliable calls) are left to the garbage collector.
const maxPooledBuffer = 64 << 10

var encoderPool = sync.Pool{New: func() any { return &Encoder{buf: make([]byte, 0, 256)} }}

// GetEncoder returns an empty Encoder from a pool. Return it with PutEncoder
// when its bytes are no longer needed.
func GetEncoder() *Encoder {
	return encoderPool.Get().(*Encoder)
}

// PutEncoder resets e and returns it to the pool. e must not be used again.
func PutEncoder(e *Encoder) {
	if cap(e.buf) > maxPooledBuffer {
		return
	}
	e.Reset()
	encoderPool.Put(e)
}

// StartCall returns a pooled Encoder holding the header of a frame for call id
// and the msgpack array header for nargs arguments. Encode the arguments in
// order, then pass it to (*Proxy).Send (which releases it) or call PutEncoder.
func StartCall(id CallID, nargs int) *Encoder {
	e := GetEncoder()
	e.buf = append(e.buf, byte(id>>8), byte(id))
	e.EncodeArrayLen(nargs)
	return e
}

// Reset empties e, keeping its buffer, and clears its error.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.err = nil
}

// Bytes returns the encoded bytes. They are valid until the next change to e.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len returns the number of encoded bytes.
func (e *Encoder) Len() int { return len(e.buf) }

// Err returns the first error recorded by EncodeValue or SetError.
func (e *Encoder) Err() error { return e.err }

// SetError records err as e's error if it has none yet. A Marshaler that
// cannot encode its value uses it; the call then fails with ErrEncode.
func (e *Encoder) SetError(err error) {
	if e.err == nil && err != nil {
		e.err = fmt.Errorf("%w: %w", ErrEncode, err)
	}
}

// Write appends p (raw bytes, already msgpack). It lets a msgpack.Encoder
// write into e and never fails.
func (e *Encoder) Write(p []byte) (int, error) {
	e.buf = append(e.buf, p...)
	return len(p), nil
}

// WriteByte appends c (a raw byte, already msgpack) and never fails.
func (e *Encoder) WriteByte(c byte) error {
	e.buf = append(e.buf, c)
	return nil
}

// EncodeNil writes msgpack nil.
func (e *Encoder) EncodeNil() { e.buf = append(e.buf, mpNil) }

// EncodeBool writes true or false.
func (e *Encoder) EncodeBool(v bool) {
	if v {
		e.buf = append(e.buf, mpTrue)
	} else {
		e.buf = append(e.buf, mpFalse)
	}
}

// EncodeUint64 writes v in the smallest msgpack integer format.
func (e *Encoder) EncodeUint64(v uint64) {
	switch {
	case v <= 0x7f:
		e.buf = append(e.buf, byte(v))
	case v <= math.MaxUint8:
		e.buf = append(e.buf, mpUint8, byte(v))
	case v <= math.MaxUint16:
		e.buf = append(e.buf, mpUint16, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		e.buf = append(e.buf, mpUint32, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		e.buf = append(e.buf, mpUint64, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
			byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
}

// EncodeInt64 writes v in the smallest msgpack integer format (positive
// values use the unsigned formats, as msgpack's compact encoding does).
func (e *Encoder) EncodeInt64(v int64) {
	switch {
	case v >= 0:
		e.EncodeUint64(uint64(v))
	case v >= -32:
		e.buf = append(e.buf, byte(v))
	case v >= math.MinInt8:
		e.buf = append(e.buf, mpInt8, byte(v))
	case v >= math.MinInt16:
		e.buf = append(e.buf, mpInt16, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		e.buf = append(e.buf, mpInt32, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		e.buf = append(e.buf, mpInt64, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
			byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
}

// EncodeInt writes v as EncodeInt64 does.
func (e *Encoder) EncodeInt(v int) { e.EncodeInt64(int64(v)) }

// EncodeInt8 writes v as EncodeInt64 does.
func (e *Encoder) EncodeInt8(v int8) { e.EncodeInt64(int64(v)) }

// EncodeInt16 writes v as EncodeInt64 does.
func (e *Encoder) EncodeInt16(v int16) { e.EncodeInt64(int64(v)) }

// EncodeInt32 writes v as EncodeInt64 does.
func (e *Encoder) EncodeInt32(v int32) { e.EncodeInt64(int64(v)) }

// EncodeUint writes v as EncodeUint64 does.
func (e *Encoder) EncodeUint(v uint) { e.EncodeUint64(uint64(v)) }

// EncodeUint8 writes v as EncodeUint64 does.
func (e *Encoder) EncodeUint8(v uint8) {
	if v <= 0x7f {
		e.buf = append(e.buf, v)
	} else {
		e.buf = append(e.buf, mpUint8, v)
	}
}

// EncodeUint16 writes v as EncodeUint64 does.
func (e *Encoder) EncodeUint16(v uint16) { e.EncodeUint64(uint64(v)) }

// EncodeUint32 writes v as EncodeUint64 does.
func (e *Encoder) EncodeUint32(v uint32) { e.EncodeUint64(uint64(v)) }

// EncodeFloat32 writes v as a msgpack float 32.
func (e *Encoder) EncodeFloat32(v float32) {
	b := math.Float32bits(v)
	e.buf = append(e.buf, mpFloat32, byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
}

// EncodeFloat64 writes v as a msgpack float 64.
func (e *Encoder) EncodeFloat64(v float64) {
	b := math.Float64bits(v)
	e.buf = append(e.buf, mpFloat64, byte(b>>56), byte(b>>48), byte(b>>40), byte(b>>32),
		byte(b>>24), byte(b>>16), byte(b>>8), byte(b))
}

// EncodeString writes v as a msgpack str.
func (e *Encoder) EncodeString(v string) {
	n := len(v)
	switch {
	case n < 32:
		e.buf = append(e.buf, mpFixStr|byte(n))
	case n <= math.MaxUint8:
		e.buf = append(e.buf, mpStr8, byte(n))
	case n <= math.MaxUint16:
		e.buf = append(e.buf, mpStr16, byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, mpStr32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	e.buf = append(e.buf, v...)
}

// EncodeBytes writes v as msgpack bin, or nil if v is nil.
func (e *Encoder) EncodeBytes(v []byte) {
	if v == nil {
		e.EncodeNil()
		return
	}
	n := len(v)
	switch {
	case n <= math.MaxUint8:
		e.buf = append(e.buf, mpBin8, byte(n))
	case n <= math.MaxUint16:
		e.buf = append(e.buf, mpBin16, byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, mpBin32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	e.buf = append(e.buf, v...)
}

// EncodeArrayLen writes the header of an array of n elements; write the n
// elements next. A nil slice is written with EncodeNil instead.
func (e *Encoder) EncodeArrayLen(n int) {
	switch {
	case n < 16:
		e.buf = append(e.buf, mpFixArray|byte(n))
	case n <= math.MaxUint16:
		e.buf = append(e.buf, mpArray16, byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, mpArray32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// EncodeMapLen writes the header of a map of n entries; write n key, value
// pairs next. A nil map is written with EncodeNil instead.
func (e *Encoder) EncodeMapLen(n int) {
	switch {
	case n < 16:
		e.buf = append(e.buf, mpFixMap|byte(n))
	case n <= math.MaxUint16:
		e.buf = append(e.buf, mpMap16, byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, mpMap32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}
