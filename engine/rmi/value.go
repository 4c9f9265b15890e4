package rmi

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Marshaler is implemented by types that encode themselves for RMI without
// reflection. rmigen generates it (with a pointer receiver) for every struct
// declared in an IDL file, so a package generated from one IDL file can be
// imported by another. A Go type brought into an IDL file by an import line
// may implement it to avoid the reflective fallback.
type Marshaler interface {
	// EncodeRMI appends the value as exactly one msgpack value. It reports
	// failure with e.SetError.
	EncodeRMI(e *Encoder)
}

// Unmarshaler is the decoding half of Marshaler.
type Unmarshaler interface {
	// DecodeRMI reads exactly one msgpack value. It reports a malformed or
	// invalid value with d.SetError.
	DecodeRMI(d *Decoder)
}

// EncodeValue writes v, which should be a pointer to the value (so that a
// pointer-receiver Marshaler is found). If v implements Marshaler its
// EncodeRMI is used; otherwise v is encoded by reflection with
// github.com/vmihailenco/msgpack/v5 (compact integers), which honours
// msgpack.CustomEncoder and msgpack.Marshaler. Generated code uses it for Go
// types named by an IDL import line: such calls allocate, IDL-declared types
// do not.
func (e *Encoder) EncodeValue(v any) {
	if m, ok := v.(Marshaler); ok {
		m.EncodeRMI(e)
		return
	}
	enc := msgpack.GetEncoder()
	enc.Reset(e)
	enc.UseCompactInts(true)
	err := enc.Encode(v)
	msgpack.PutEncoder(enc)
	if err != nil {
		e.SetError(err)
	}
}

// DecodeValue reads one value into v, which must be a non-nil pointer, with
// v's Unmarshaler if it has one, or else by reflection with
// github.com/vmihailenco/msgpack/v5 (which honours msgpack.CustomDecoder and
// msgpack.Unmarshaler). The value is first checked with Skip, so lengths
// larger than the frame and deep nesting are refused before reflection. A panic
// inside the reflective decoder (a bug in it, or in a user's DecodeMsgpack)
// becomes a decode error: a hostile frame must never bring the host down.
func (d *Decoder) DecodeValue(v any) {
	if d.err != nil {
		return
	}
	if u, ok := v.(Unmarshaler); ok {
		u.DecodeRMI(d)
		return
	}
	// Vet the value first: the reflective decoder trusts announced lengths
	// (a 5-byte bin32 header could make it allocate 4 GiB) and recurses
	// without a depth limit.
	start := d.off
	d.Skip()
	if d.err != nil {
		return
	}
	r := bytes.NewReader(d.buf[start:d.off])
	if err := reflectDecode(r, v); err != nil {
		d.SetError(err)
		return
	}
	if r.Len() != 0 {
		d.SetError(fmt.Errorf("reflective decoder left %d bytes of the value at offset %d", r.Len(), start))
	}
}

// reflectDecode decodes one value from r into v with a pooled msgpack.Decoder.
func reflectDecode(r *bytes.Reader, v any) (err error) {
	dec := msgpack.GetDecoder()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("msgpack decoder panicked: %v", p)
			return // do not return a decoder in an unknown state to the pool
		}
		msgpack.PutDecoder(dec)
	}()
	dec.Reset(r) // *bytes.Reader is an io.ByteScanner: no read-ahead
	return dec.Decode(v)
}
