//go:build !linux

package hostile

import (
	"errors"
	"net/netip"
)

// ErrNotPermitted: raw sockets need root (and Linux, here).
var ErrNotPermitted = errors.New("hostile: raw sockets need root on linux")

// RawSender is only implemented on Linux.
type RawSender struct{}

// NewRawSender fails off Linux.
func NewRawSender() (*RawSender, error) { return nil, ErrNotPermitted }

// Send fails off Linux.
func (r *RawSender) Send(src, dst netip.AddrPort, payload []byte) error { return ErrNotPermitted }

// Close does nothing.
func (r *RawSender) Close() error { return nil }
