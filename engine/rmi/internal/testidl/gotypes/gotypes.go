// Package gotypes holds Go types that the test IDL brings in with an import
// line: one that implements rmi.Marshaler (encoded without reflection) and one
// that falls back to reflective msgpack.
package gotypes

import (
	"errors"

	"github.com/skein-dev/skein/engine/rmi"
)

// Color is an RGBA colour encoded as one uint32 (0xRRGGBBAA) by its
// rmi.Marshaler methods.
type Color struct {
	R, G, B, A uint8
}

// EncodeRMI writes c as a uint32.
func (c *Color) EncodeRMI(e *rmi.Encoder) {
	e.EncodeUint32(uint32(c.R)<<24 | uint32(c.G)<<16 | uint32(c.B)<<8 | uint32(c.A))
}

// DecodeRMI reads c from a uint32; the value 0x00000001 is rejected, to test
// that an Unmarshaler's error fails the call.
func (c *Color) DecodeRMI(d *rmi.Decoder) {
	v := d.DecodeUint32()
	if v == 1 {
		d.SetError(errors.New("invalid colour"))
		return
	}
	*c = Color{uint8(v >> 24), uint8(v >> 16), uint8(v >> 8), uint8(v)}
}

// Plain is a struct without RMI methods: it is encoded by reflection, as a
// msgpack map of its fields.
type Plain struct {
	Name  string
	Score int
}
