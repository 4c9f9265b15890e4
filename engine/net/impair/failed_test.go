package impair_test

import (
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net/impair"
)

var errRefused = errors.New("refused")

// refusing is a PacketConn whose writes all fail.
type refusing struct{ *recorder }

func (refusing) WriteTo([]byte, netip.AddrPort) (int, error) { return 0, errRefused }

// A delayed datagram the wrapped conn refuses is counted in Stats.Failed:
// WriteTo had already said it was sent.
func TestFailedCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := impair.Wrap(refusing{newRecorder()})
		defer c.Close()
		c.SetConditions(0, 10*time.Millisecond, 0)
		for range 3 {
			if n, err := c.WriteTo([]byte("x"), dst); n != 1 || err != nil {
				t.Fatalf("WriteTo = %d, %v; want 1, nil (queued)", n, err)
			}
		}
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		if s := c.Stats(); s.Sent != 3 || s.Failed != 3 || s.Queued != 0 {
			t.Errorf("stats %+v, want 3 sent, 3 failed, none queued", s)
		}
		// Sent at once, the refusal goes back to the caller instead.
		c.SetConditions(0, 0, 0)
		if _, err := c.WriteTo([]byte("y"), dst); !errors.Is(err, errRefused) {
			t.Errorf("undelayed WriteTo error = %v, want %v", err, errRefused)
		}
		if s := c.Stats(); s.Failed != 3 {
			t.Errorf("Failed = %d after an undelayed refusal, want 3 (the caller saw it)", s.Failed)
		}
	})
}
