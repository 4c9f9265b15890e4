package rmi_test

import (
	"errors"
	"testing"

	"github.com/skein-dev/skein/engine/rmi"
)

// TestStartArgs covers the start of every generated stub case: a fixarray
// header, the same count in a longer encoding (any msgpack encoding is
// accepted), a count that differs, a frame cut before its header, and a
// nil function, which decodes nothing and finishes with ErrNoHandler.
func TestStartArgs(t *testing.T) {
	array16 := []byte{0xdc, 0, 16}
	for range 16 {
		array16 = append(array16, 7)
	}
	for _, tc := range []struct {
		name    string
		args    []byte
		n       int
		handled bool
		want    error
	}{
		{"fixarray", []byte{0x92, 1, 2}, 2, true, nil},
		{"array16 of 2", []byte{0xdc, 0, 2, 1, 2}, 2, true, nil},
		{"array16 of 16", array16, 16, true, nil},
		{"count differs", []byte{0x93, 1, 2, 3}, 2, true, rmi.ErrDecode},
		{"empty", nil, 2, true, rmi.ErrDecode},
		{"no handler", []byte{0x92, 1, 2}, 2, false, rmi.ErrNoHandler},
		{"no handler, malformed", []byte{0xc1}, 2, false, rmi.ErrNoHandler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := rmi.NewDecoder(tc.args)
			d.StartArgs(tc.n, tc.handled)
			var sum int
			for range tc.n {
				sum += int(d.DecodeUint8())
			}
			err := d.Finish()
			if tc.want == nil && (err != nil || sum == 0) || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Finish = %v (sum %d), want %v", err, sum, tc.want)
			}
			if tc.want != nil && sum != 0 && !errors.Is(err, rmi.ErrDecode) {
				t.Errorf("decoded %d without a handler", sum)
			}
			if errors.Is(err, rmi.ErrNoHandler) && errors.Is(err, rmi.ErrDecode) {
				t.Errorf("a nil function is not a malformed frame: %v", err)
			}
		})
	}
}

// TestStartResults covers the start of every generated ReplyFunc: the
// request's failure is Finish's error and nothing is decoded; a malformed
// result list is a decode error, which ReplyError passes on, while a
// failure status is not (the caller's callback has it).
func TestStartResults(t *testing.T) {
	failed := rmi.Fail(rmi.StatusRateLimited)
	d := rmi.NewDecoder([]byte{0x91, 5})
	d.StartResults(1, failed)
	if v := d.DecodeUint8(); v != 0 || d.Finish() != failed {
		t.Errorf("failed request: decoded %d, Finish %v", v, d.Finish())
	}
	if rmi.ReplyError(failed) != nil {
		t.Errorf("ReplyError(a failure status) = %v, want nil", rmi.ReplyError(failed))
	}
	d = rmi.NewDecoder([]byte{0x91, 5})
	d.StartResults(1, nil)
	if v := d.DecodeUint8(); v != 5 || d.Finish() != nil {
		t.Errorf("decoded %d, Finish %v", v, d.Finish())
	}
	d = rmi.NewDecoder([]byte{0x92, 5})
	d.StartResults(1, nil)
	d.DecodeUint8()
	if err := d.Finish(); !errors.Is(err, rmi.ErrDecode) || rmi.ReplyError(err) != err {
		t.Errorf("malformed results: Finish %v, ReplyError %v", err, rmi.ReplyError(err))
	}
	got := errors.New("not called")
	if err := rmi.ReplyNone(func(err error) { got = err }, []byte{0x90}, nil); err != nil || got != nil {
		t.Errorf("ReplyNone: %v, callback got %v", err, got)
	}
	if err := rmi.ReplyNone(func(err error) { got = err }, []byte{0x91, 1}, nil); !errors.Is(err, rmi.ErrDecode) || !errors.Is(got, rmi.ErrDecode) {
		t.Errorf("ReplyNone of a result: %v, callback got %v", err, got)
	}
	if err := rmi.ReplyNone(nil, nil, failed); err != nil {
		t.Errorf("ReplyNone without a callback: %v", err)
	}
	var e rmi.Encoder
	if err := rmi.NoResults(&e, failed); err != failed || e.Len() != 0 {
		t.Errorf("NoResults(failed) = %v, wrote %x", err, e.Bytes())
	}
	if err := rmi.NoResults(&e, nil); err != nil || string(e.Bytes()) != "\x90" {
		t.Errorf("NoResults(nil) = %v, wrote %x", err, e.Bytes())
	}
}
