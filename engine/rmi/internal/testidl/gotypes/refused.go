package gotypes

import (
	"errors"

	"github.com/skein-dev/skein/engine/rmi"
)

// The types below exist so that rmigen's error table
// (tools/rmigen/testdata/errors) can show each reason it gives for refusing a
// Go type that the runtime cannot carry. No IDL of the repository uses them.

// HalfRMI has EncodeRMI but no DecodeRMI: the receiver would fall back to
// reflection and read something else than was sent.
type HalfRMI struct{ N int }

// EncodeRMI writes h.N.
func (h *HalfRMI) EncodeRMI(e *rmi.Encoder) { e.EncodeInt64(int64(h.N)) }

// TextOnly has MarshalText but no UnmarshalText: msgpack would write text
// that it cannot read back into the struct.
type TextOnly struct{ N int }

// MarshalText returns a fixed text.
func (TextOnly) MarshalText() ([]byte, error) { return []byte("n"), nil }

// Mixed is written with MarshalBinary and read with UnmarshalText.
type Mixed struct{ N int }

// MarshalBinary returns a fixed byte.
func (Mixed) MarshalBinary() ([]byte, error) { return []byte{1}, nil }

// UnmarshalText accepts nothing.
func (*Mixed) UnmarshalText([]byte) error { return errors.New("no") }

// PtrText has its text methods on the pointer only.
type PtrText struct{ S string }

// MarshalText returns p.S.
func (p *PtrText) MarshalText() ([]byte, error) { return []byte(p.S), nil }

// UnmarshalText sets p.S.
func (p *PtrText) UnmarshalText(b []byte) error { p.S = string(b); return nil }

// ByName maps names to PtrText values, which msgpack cannot encode (map
// values are not addressable).
type ByName map[string]PtrText

// Handle is a uintptr, which msgpack cannot encode.
type Handle uintptr

// Wave is a complex number, which msgpack cannot encode.
type Wave complex128

// Deep hides a channel two levels down.
type Deep struct {
	Name  string
	Items []DeepItem
}

// DeepItem is an element of Deep.Items.
type DeepItem struct {
	Done chan struct{}
}

// Secret carries nothing: its only field is unexported.
type Secret struct{ key string }

// Key returns the key, so that the field is used.
func (s Secret) Key() string { return s.key }
