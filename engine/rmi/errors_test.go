package rmi_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/gamerpc"
)

// The overlap error names both stubs and their IDs, and says "rmi:" once
// (the sentinel's prefix; the wrapping adds context only).
func TestOverlapErrorSaysRMIOnce(t *testing.T) {
	d := rmi.NewDispatcher()
	if err := d.Attach(&gamerpc.GameStub{}); err != nil {
		t.Fatal(err)
	}
	err := d.Attach(&gamerpc.GameStub{})
	if !errors.Is(err, rmi.ErrOverlap) {
		t.Fatalf("err = %v, want ErrOverlap", err)
	}
	msg := err.Error()
	if n := strings.Count(msg, "rmi:"); n != 1 {
		t.Errorf("%q says \"rmi:\" %d times, want once", msg, n)
	}
	if strings.Count(msg, "GameStub") != 2 || strings.Count(msg, "2000..2002") != 2 {
		t.Errorf("%q does not name both stubs and their IDs", msg)
	}
}
