package impair_test

import (
	"errors"
	stdnet "net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/impair"
)

// recorder is a PacketConn that records what is written to it and when.
type recorder struct {
	mu     sync.Mutex
	sent   []sent
	closed chan struct{}
	once   sync.Once
}

type sent struct {
	at   time.Time
	data string
	to   netip.AddrPort
}

func newRecorder() *recorder { return &recorder{closed: make(chan struct{})} }

func (r *recorder) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	<-r.closed
	return 0, netip.AddrPort{}, stdnet.ErrClosed
}

func (r *recorder) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	r.mu.Lock()
	r.sent = append(r.sent, sent{at: time.Now(), data: string(b), to: to})
	r.mu.Unlock()
	return len(b), nil
}

func (r *recorder) LocalAddr() netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:1") }

func (r *recorder) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

func (r *recorder) got() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.sent...)
}

var dst = netip.MustParseAddrPort("127.0.0.1:9")

func TestPassThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		c := impair.Wrap(rec)
		defer c.Close()
		start := time.Now()
		buf := []byte("hello")
		if n, err := c.WriteTo(buf, dst); n != 5 || err != nil {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
		buf[0] = 'J' // the caller may reuse its buffer at once
		got := rec.got()
		if len(got) != 1 || got[0].data != "hello" || got[0].to != dst || !got[0].at.Equal(start) {
			t.Fatalf("got %+v, want hello sent at once", got)
		}
		if s := c.Stats(); s.Sent != 1 || s.Lost != 0 || s.Queued != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		c := impair.Wrap(rec)
		defer c.Close()
		c.SetConditions(0, 100*time.Millisecond, 0)
		start := time.Now()
		buf := []byte("a")
		c.WriteTo(buf, dst)
		buf[0] = 'X' // copied: the queued datagram keeps its bytes
		time.Sleep(30 * time.Millisecond)
		c.WriteTo([]byte("b"), dst)
		synctest.Wait()
		if got := rec.got(); len(got) != 0 {
			t.Fatalf("sent before the delay: %+v", got)
		}
		if q := c.Stats().Queued; q != 2 {
			t.Errorf("Queued = %d, want 2", q)
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		got := rec.got()
		if len(got) != 2 {
			t.Fatalf("got %d datagrams, want 2", len(got))
		}
		if got[0].data != "a" || got[0].at.Sub(start) != 100*time.Millisecond {
			t.Errorf("first: %q after %v, want a after 100ms", got[0].data, got[0].at.Sub(start))
		}
		if got[1].data != "b" || got[1].at.Sub(start) != 130*time.Millisecond {
			t.Errorf("second: %q after %v, want b after 130ms", got[1].data, got[1].at.Sub(start))
		}
		// Turning the delay off sends at once again.
		c.SetConditions(0, 0, 0)
		c.WriteTo([]byte("c"), dst)
		if got := rec.got(); len(got) != 3 || got[2].data != "c" {
			t.Errorf("after reset: %+v", got)
		}
	})
}

func TestJitterBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		c := impair.Wrap(rec, impair.WithSeed(7))
		defer c.Close()
		const delay, jitter = 50 * time.Millisecond, 20 * time.Millisecond
		c.SetConditions(0, delay, jitter)
		sentAt := make(map[string]time.Time)
		for i := range 200 {
			k := string(rune('A'+i%26)) + string(rune('a'+i/26))
			sentAt[k] = time.Now()
			c.WriteTo([]byte(k), dst)
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got := rec.got()
		if len(got) != 200 {
			t.Fatalf("got %d datagrams, want 200", len(got))
		}
		var lo, hi time.Duration = time.Hour, 0
		for _, s := range got {
			d := s.at.Sub(sentAt[s.data])
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < delay-jitter || hi > delay+jitter {
			t.Errorf("delays in [%v, %v], want within [%v, %v]", lo, hi, delay-jitter, delay+jitter)
		}
		if hi-lo < jitter {
			t.Errorf("delays in [%v, %v]: jitter not applied", lo, hi)
		}
	})
}

func TestLoss(t *testing.T) {
	rec := newRecorder()
	c := impair.Wrap(rec, impair.WithSeed(1))
	defer c.Close()
	c.SetConditions(0.25, 0, 0)
	const n = 20000
	for range n {
		c.WriteTo([]byte{1}, dst)
	}
	s := c.Stats()
	if s.Lost+s.Sent != n {
		t.Fatalf("lost %d + sent %d != %d", s.Lost, s.Sent, n)
	}
	if frac := float64(s.Lost) / n; frac < 0.23 || frac > 0.27 {
		t.Errorf("lost %.3f, want about 0.25", frac)
	}
	if got := len(rec.got()); uint64(got) != s.Sent {
		t.Errorf("recorder got %d, Stats.Sent %d", got, s.Sent)
	}
	c.SetConditions(2, 0, 0) // clamped to 1
	c.WriteTo([]byte{1}, dst)
	if got := c.Conditions().Loss; got != 1 {
		t.Errorf("Loss = %v, want clamped to 1", got)
	}
	if c.Stats().Sent != s.Sent {
		t.Errorf("a datagram got through at loss 1")
	}
}

func TestQueueLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		c := impair.Wrap(rec, impair.WithQueueLimit(4))
		defer c.Close()
		c.SetConditions(0, time.Second, 0)
		for range 10 {
			if _, err := c.WriteTo([]byte("x"), dst); err != nil {
				t.Fatal(err)
			}
		}
		if s := c.Stats(); s.Queued != 4 || s.Overflow != 6 {
			t.Fatalf("stats %+v, want 4 queued and 6 overflowed", s)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := len(rec.got()); got != 4 {
			t.Errorf("sent %d, want 4", got)
		}
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		c := impair.Wrap(rec)
		c.SetConditions(0, time.Second, 0)
		c.WriteTo([]byte("late"), dst)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal("second Close:", err)
		}
		if _, err := c.WriteTo([]byte("x"), dst); !errors.Is(err, stdnet.ErrClosed) {
			t.Errorf("WriteTo after Close: %v, want net.ErrClosed", err)
		}
		if _, _, err := c.ReadFrom(make([]byte, 10)); !errors.Is(err, stdnet.ErrClosed) {
			t.Errorf("ReadFrom after Close: %v", err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait() // the sender goroutine has ended (synctest fails the test otherwise)
		if got := rec.got(); len(got) != 0 {
			t.Errorf("queued datagram sent after Close: %+v", got)
		}
	})
}

// TestConcurrent hammers a Conn from several goroutines while conditions
// change (run with -race).
func TestConcurrent(t *testing.T) {
	rec := newRecorder()
	c := impair.Wrap(rec)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if g == 0 && i%50 == 0 {
					c.SetConditions(float64(i%3)/10, time.Duration(i%4)*time.Millisecond, time.Millisecond)
				}
				c.WriteTo([]byte{byte(i)}, dst)
				_ = c.Stats()
			}
		}()
	}
	wg.Wait()
	c.Close()
	s := c.Stats()
	if s.Sent+s.Lost+s.Overflow > 2000 {
		t.Errorf("counted more than written: %+v", s)
	}
}

// TestUDP checks the wrapper over a real loopback socket.
func TestUDP(t *testing.T) {
	a, err := net.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := impair.Wrap(a)
	defer c.Close()
	c.SetConditions(0, 20*time.Millisecond, 0)
	start := time.Now()
	if _, err := c.WriteTo([]byte("ping"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := b.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "ping" || from != c.LocalAddr() {
		t.Errorf("got %q from %v", buf[:n], from)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("arrived after %v, want at least 20ms", el)
	}
}
