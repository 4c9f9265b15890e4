package sync_test

import (
	"bytes"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// An unreliable group message of MaxUnreliable bytes arrives whole; one
// byte more is refused with ErrTooLarge.
func TestMaxUnreliableToGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 2, net.Config{})
		a, b := w.clients[0], w.clients[1]
		g, err := w.srv.CreateGroup(w.ids(w.clients), nil)
		if err != nil {
			t.Fatal(err)
		}
		settle(a)
		settle(b)
		msg := bytes.Repeat([]byte{0x5a}, sync.MaxUnreliable)
		if err := a.Send(g, net.Unreliable, msg); err != nil {
			t.Fatalf("Send of MaxUnreliable (%d) bytes to a group: %v", len(msg), err)
		}
		got := settle(b, sync.EventMessage)
		if len(got) != 1 || got[0].Group != g || !bytes.Equal(got[0].Data, msg) {
			t.Fatalf("b got %d messages, want the %d bytes sent to %v", len(got), len(msg), g)
		}
		if err := a.Send(g, net.Unreliable, append(msg, 0)); !errors.Is(err, net.ErrTooLarge) {
			t.Fatalf("Send of MaxUnreliable+1 bytes to a group: %v, want ErrTooLarge", err)
		}
	})
}
