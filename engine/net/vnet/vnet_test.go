package vnet_test

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// packetConn is engine/net.PacketConn, copied so that this test does not
// depend on the package being built next door.
type packetConn interface {
	ReadFrom(b []byte) (n int, from netip.AddrPort, err error)
	WriteTo(b []byte, to netip.AddrPort) (int, error)
	LocalAddr() netip.AddrPort
	Close() error
}

var _ packetConn = (*vnet.Conn)(nil)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

func listen(t *testing.T, n *vnet.Network, addr string) *vnet.Conn {
	t.Helper()
	c, err := n.Listen(ap(addr))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func write(t *testing.T, c *vnet.Conn, to netip.AddrPort, s string) {
	t.Helper()
	if n, err := c.WriteTo([]byte(s), to); err != nil || n != len(s) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
}

// arrival is one datagram read by a collector.
type arrival struct {
	at   time.Duration // since the collector started
	from netip.AddrPort
	data string
}

// collect reads c in a goroutine until it is closed. The returned function
// closes c and returns everything read.
func collect(c *vnet.Conn) func() []arrival {
	start := time.Now()
	var (
		mu  sync.Mutex
		got []arrival
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, arrival{time.Since(start), from, string(buf[:n])})
			mu.Unlock()
		}
	}()
	return func() []arrival {
		c.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// settle lets virtual time run until every datagram in flight has landed.
func settle() {
	time.Sleep(time.Minute)
	synctest.Wait()
}

func TestListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		a := listen(t, n, "10.0.0.1:0")
		b := listen(t, n, "10.0.0.1:0")
		if a.LocalAddr() == b.LocalAddr() || a.LocalAddr().Port() == 0 {
			t.Fatalf("port 0 gave %v and %v", a.LocalAddr(), b.LocalAddr())
		}
		if _, err := n.Listen(a.LocalAddr()); !errors.Is(err, vnet.ErrAddrInUse) {
			t.Fatalf("Listen on a used address: %v, want ErrAddrInUse", err)
		}
		if _, err := n.Listen(ap("0.0.0.0:1")); err == nil {
			t.Fatal("Listen on 0.0.0.0 succeeded")
		}
		c := listen(t, n, "[::ffff:10.0.0.2]:7")
		if got := c.LocalAddr(); got != ap("10.0.0.2:7") {
			t.Fatalf("LocalAddr = %v, want unmapped", got)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("second Close = %v", err)
		}
		listen(t, n, a.LocalAddr().String()) // free again
	})
}

func TestDeliverAndCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:2")
		buf := []byte("hello")
		if _, err := a.WriteTo(buf, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		copy(buf, "XXXXX") // the caller reuses its buffer
		got := make([]byte, 3)
		nr, from, err := b.ReadFrom(got) // truncates like UDP
		if err != nil || from != a.LocalAddr() || string(got[:nr]) != "hel" {
			t.Fatalf("ReadFrom = %d %v %v %q", nr, from, err, got[:nr])
		}
		write(t, a, ap("10.0.0.9:9"), "nobody")
		st := n.Stats()
		if st.Sent != 2 || st.Delivered != 1 || st.Dropped.NoRoute != 1 || st.Dropped.Total() != 1 {
			t.Fatalf("Stats = %+v", st)
		}
		if as, bs := a.Stats(), b.Stats(); as.Sent != 2 || as.Dropped.NoRoute != 1 || bs.Delivered != 1 {
			t.Fatalf("conn stats a=%+v b=%+v", as, bs)
		}
	})
}

func TestLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(42)
		defer n.Close()
		n.SetConditions(vnet.Conditions{Loss: 0.1})
		n.QueueLen = 20000
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		get := collect(b)
		const total = 20000
		for range total {
			write(t, a, b.LocalAddr(), "x")
		}
		settle()
		got := len(get())
		rate := 1 - float64(got)/total
		// 4 standard deviations: sqrt(0.1*0.9/20000) = 0.0021.
		if math.Abs(rate-0.1) > 0.0085 {
			t.Fatalf("loss rate %.4f, want 0.1", rate)
		}
		if st := n.Stats(); st.Dropped.Loss != uint64(total-got) || st.Delivered != uint64(got) {
			t.Fatalf("Stats = %+v, received %d", st, got)
		}
	})
}

func TestDelay(t *testing.T) {
	wall := time.Now()
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		n.SetConditions(vnet.Conditions{Delay: 500 * time.Millisecond})
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		start := time.Now()
		write(t, a, b.LocalAddr(), "ping")
		buf := make([]byte, 16)
		if _, _, err := b.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 500*time.Millisecond {
			t.Fatalf("delivered after %v, want 500ms", d)
		}
	})
	if d := time.Since(wall); d >= 500*time.Millisecond { // real time would take at least the 500 ms
		t.Errorf("500 ms of virtual delay took %v of wall time", d)
	}
}

func TestJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(7)
		defer n.Close()
		n.SetConditions(vnet.Conditions{Delay: 50 * time.Millisecond, Jitter: 20 * time.Millisecond})
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		get := collect(b)
		for range 200 {
			write(t, a, b.LocalAddr(), "j")
		}
		settle()
		got := get()
		if len(got) != 200 {
			t.Fatalf("received %d, want 200", len(got))
		}
		lo, hi := got[0].at, got[len(got)-1].at
		if lo < 30*time.Millisecond || hi > 70*time.Millisecond || hi-lo < 30*time.Millisecond {
			t.Fatalf("delays span [%v, %v], want within [30ms, 70ms] and spread", lo, hi)
		}
	})
}

// inversions counts pairs that arrived out of write order.
func inversions(got []arrival) (inv int) {
	last := -1
	for _, g := range got {
		i, _ := strconv.Atoi(g.data)
		if i < last {
			inv++
		}
		last = max(last, i)
	}
	return inv
}

func TestReorder(t *testing.T) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run(fmt.Sprint("delay=", delay), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := vnet.New(3)
				defer n.Close()
				n.SetConditions(vnet.Conditions{Delay: delay, Reorder: 0.2})
				a := listen(t, n, "10.0.0.1:1")
				b := listen(t, n, "10.0.0.2:1")
				get := collect(b)
				for i := range 200 {
					write(t, a, b.LocalAddr(), strconv.Itoa(i))
					time.Sleep(100 * time.Microsecond)
				}
				settle()
				got := get()
				if len(got) != 200 {
					t.Fatalf("received %d, want 200", len(got))
				}
				if inv := inversions(got); inv < 10 {
					t.Fatalf("%d datagrams overtaken, want many", inv)
				}
			})
		})
	}
	t.Run("none without reorder", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := vnet.New(3)
			defer n.Close()
			n.SetConditions(vnet.Conditions{Delay: 20 * time.Millisecond})
			a := listen(t, n, "10.0.0.1:1")
			b := listen(t, n, "10.0.0.2:1")
			get := collect(b)
			for i := range 100 {
				write(t, a, b.LocalAddr(), strconv.Itoa(i))
			}
			settle()
			if got := get(); len(got) != 100 || inversions(got) != 0 {
				t.Fatalf("received %d with %d inversions, want 100 in order", len(got), inversions(got))
			}
		})
	})
}

func TestDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(5)
		defer n.Close()
		n.SetConditions(vnet.Conditions{Duplicate: 0.25})
		n.QueueLen = 4096
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		get := collect(b)
		for i := range 1000 {
			write(t, a, b.LocalAddr(), strconv.Itoa(i))
		}
		settle()
		got := get()
		seen := map[string]int{}
		for _, g := range got {
			seen[g.data]++
		}
		dups := len(got) - len(seen)
		if len(seen) != 1000 || dups < 200 || dups > 300 {
			t.Fatalf("%d distinct, %d duplicates, want 1000 and ~250", len(seen), dups)
		}
		if st := n.Stats(); st.Duplicated != uint64(dups) || st.Delivered != uint64(len(got)) {
			t.Fatalf("Stats = %+v, %d duplicates", st, dups)
		}
	})
}

func TestMTU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		n.SetConditions(vnet.Conditions{MTU: 100})
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		get := collect(b)
		write(t, a, b.LocalAddr(), string(make([]byte, 100)))
		write(t, a, b.LocalAddr(), string(make([]byte, 101)))
		settle()
		if got := get(); len(got) != 1 || len(got[0].data) != 100 {
			t.Fatalf("received %d datagrams", len(got))
		}
		if st := n.Stats(); st.Dropped.MTU != 1 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

func TestBandwidth(t *testing.T) {
	t.Run("paces", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := vnet.New(1)
			defer n.Close()
			n.SetConditions(vnet.Conditions{Bandwidth: 10000, QueueBytes: 1 << 20, Delay: 10 * time.Millisecond})
			a := listen(t, n, "10.0.0.1:1")
			b := listen(t, n, "10.0.0.2:1")
			get := collect(b)
			for i := range 10 {
				write(t, a, b.LocalAddr(), strconv.Itoa(i)+string(make([]byte, 999)))
			}
			settle()
			got := get()
			if len(got) != 10 {
				t.Fatalf("received %d, want 10", len(got))
			}
			for i, g := range got {
				// 1000 bytes at 10 kB/s: one every 100 ms, plus the delay.
				if want := time.Duration(i+1)*100*time.Millisecond + 10*time.Millisecond; g.at != want {
					t.Errorf("datagram %d at %v, want %v", i, g.at, want)
				}
			}
		})
	})
	t.Run("bounded queue drops", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := vnet.New(1)
			defer n.Close()
			// The default queue is 250 ms of traffic = 2500 bytes.
			n.SetConditions(vnet.Conditions{Bandwidth: 10000})
			a := listen(t, n, "10.0.0.1:1")
			b := listen(t, n, "10.0.0.2:1")
			get := collect(b)
			for range 10 {
				write(t, a, b.LocalAddr(), string(make([]byte, 1000)))
			}
			settle()
			if got := get(); len(got) != 2 {
				t.Fatalf("received %d, want 2", len(got))
			}
			if st := n.Stats(); st.Dropped.Bandwidth != 8 {
				t.Fatalf("Stats = %+v", st)
			}
		})
	})
}

func TestQueueOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		n.QueueLen = 4
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		for i := range 10 {
			write(t, a, b.LocalAddr(), strconv.Itoa(i))
		}
		if st := n.Stats(); st.Delivered != 4 || st.Dropped.QueueFull != 6 {
			t.Fatalf("Stats = %+v", st)
		}
		if st := b.Stats(); st.Delivered != 4 || st.Dropped.QueueFull != 6 {
			t.Fatalf("receiver Stats = %+v", st)
		}
		buf := make([]byte, 8)
		nr, _, _ := b.ReadFrom(buf)
		if string(buf[:nr]) != "0" {
			t.Fatalf("first datagram %q, want the oldest", buf[:nr])
		}
	})
}

func TestCloseUnblocksReadFrom(t *testing.T) {
	for _, closeNetwork := range []bool{false, true} {
		t.Run(fmt.Sprint("network=", closeNetwork), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := vnet.New(1)
				a := listen(t, n, "10.0.0.1:1")
				errc := make(chan error, 1)
				go func() {
					_, _, err := a.ReadFrom(make([]byte, 8))
					errc <- err
				}()
				synctest.Wait() // the reader is durably blocked
				if closeNetwork {
					n.Close()
				} else {
					a.Close()
				}
				if err := <-errc; !errors.Is(err, net.ErrClosed) {
					t.Fatalf("ReadFrom after Close = %v, want net.ErrClosed", err)
				}
				if _, err := a.WriteTo([]byte("x"), a.LocalAddr()); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("WriteTo after Close = %v, want net.ErrClosed", err)
				}
				if _, _, err := a.ReadFrom(nil); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("ReadFrom after Close = %v, want net.ErrClosed", err)
				}
				n.Close()
			})
		})
	}
}

func TestCloseDiscardsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		n.SetConditions(vnet.Conditions{Delay: time.Second})
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		write(t, a, b.LocalAddr(), "late")
		b.Close()
		settle()
		if st := n.Stats(); st.Dropped.NoRoute != 1 {
			t.Fatalf("Stats = %+v", st)
		}
		write(t, a, ap("10.0.0.2:1"), "later")
		n.Close() // nothing fires after this
		settle()
		if st := n.Stats(); st.Dropped.Total() != 1 || st.Delivered != 0 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

func TestLinkConditions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		n.SetConditions(vnet.Conditions{Delay: 10 * time.Millisecond})
		n.SetLinkConditions(ip("10.0.0.1"), ip("10.0.0.2"), vnet.Conditions{Delay: 100 * time.Millisecond})
		a := listen(t, n, "10.0.0.1:1")
		a2 := listen(t, n, "10.0.0.1:2") // same host, other port
		b := listen(t, n, "10.0.0.2:1")
		c := listen(t, n, "10.0.0.3:1")
		getA, getB, getC := collect(a), collect(b), collect(c)
		write(t, a2, b.LocalAddr(), "a->b")
		write(t, b, a2.LocalAddr(), "b->a")
		write(t, a2, c.LocalAddr(), "a->c")
		settle()
		n.ClearLinkConditions(ip("10.0.0.1"), ip("10.0.0.2"))
		getA()
		if got := getB(); len(got) != 1 || got[0].at != 100*time.Millisecond {
			t.Fatalf("a->b: %+v, want after 100ms", got)
		}
		if got := getC(); len(got) != 1 || got[0].at != 10*time.Millisecond {
			t.Fatalf("a->c: %+v, want after 10ms", got)
		}
		buf := make([]byte, 8)
		if _, _, err := a2.ReadFrom(buf); err != nil { // b->a used the default
			t.Fatal(err)
		}
	})
}

func TestFilterAndRouter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		a := listen(t, n, "10.0.0.1:1")
		b := listen(t, n, "10.0.0.2:1")
		c := listen(t, n, "10.0.0.3:1")
		n.SetFilter(func(from, to netip.AddrPort, p []byte) bool {
			if string(p) == "corrupt" {
				p[0] = 'C'
			}
			return string(p) == "drop"
		})
		// Send everything for b to c instead, as if spoofed from 1.2.3.4.
		n.SetRouter(vnet.RouterFunc(func(p *vnet.Packet) bool {
			if p.To == b.LocalAddr() {
				p.To, p.From = c.LocalAddr(), ap("1.2.3.4:5")
			}
			return string(p.Data) != "route-drop"
		}))
		getB, getC := collect(b), collect(c)
		for _, s := range []string{"drop", "corrupt", "route-drop", "ok"} {
			write(t, a, b.LocalAddr(), s)
		}
		settle()
		if got := getB(); len(got) != 0 {
			t.Fatalf("b got %+v", got)
		}
		want := []arrival{{0, ap("1.2.3.4:5"), "Corrupt"}, {0, ap("1.2.3.4:5"), "ok"}}
		if got := getC(); !slices.Equal(got, want) {
			t.Fatalf("c got %+v, want %+v", got, want)
		}
		if st := n.Stats(); st.Dropped.Filter != 1 || st.Dropped.Router != 1 {
			t.Fatalf("Stats = %+v", st)
		}
	})
}

// script runs a fixed exchange on an impaired network and returns what each
// side saw, with virtual arrival times.
func script(t *testing.T, seed int64) (out []arrival) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(seed)
		defer n.Close()
		n.SetConditions(vnet.Conditions{
			Loss: 0.2, Duplicate: 0.1, Reorder: 0.1,
			Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond,
			Bandwidth: 50000,
		})
		a := listen(t, n, "10.0.0.1:0")
		b := listen(t, n, "10.0.0.2:0")
		getA, getB := collect(a), collect(b)
		for i := range 300 {
			write(t, a, b.LocalAddr(), "a"+strconv.Itoa(i)+string(make([]byte, i)))
			write(t, b, a.LocalAddr(), "b"+strconv.Itoa(i))
			time.Sleep(time.Duration(i%7) * time.Millisecond)
		}
		settle()
		out = append(getA(), getB()...)
	})
	return out
}

func TestDeterminism(t *testing.T) {
	first, second, other := script(t, 99), script(t, 99), script(t, 100)
	if len(first) < 300 {
		t.Fatalf("only %d datagrams arrived", len(first))
	}
	if !slices.Equal(first, second) {
		t.Fatal("same seed, different deliveries")
	}
	if slices.Equal(first, other) {
		t.Fatal("different seeds, same deliveries")
	}
}

func TestOutsideBubble(t *testing.T) {
	n := vnet.New(1)
	defer n.Close()
	n.SetConditions(vnet.Conditions{Delay: 5 * time.Millisecond})
	a := listen(t, n, "10.0.0.1:1")
	b := listen(t, n, "10.0.0.2:1")
	start := time.Now()
	write(t, a, b.LocalAddr(), "real time")
	buf := make([]byte, 16)
	nr, _, err := b.ReadFrom(buf)
	if err != nil || string(buf[:nr]) != "real time" {
		t.Fatalf("ReadFrom = %q, %v", buf[:nr], err)
	}
	if d := time.Since(start); d < 5*time.Millisecond {
		t.Fatalf("delivered after %v, want at least 5ms", d)
	}
}

func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(1)
		defer n.Close()
		n.SetConditions(vnet.Conditions{Delay: time.Millisecond, Jitter: time.Millisecond, Loss: 0.1})
		srv := listen(t, n, "10.0.0.100:1")
		get := collect(srv)
		var wg sync.WaitGroup
		for i := range 8 {
			c := listen(t, n, fmt.Sprintf("10.0.0.%d:1", i+1))
			wg.Go(func() {
				for j := range 100 {
					write(t, c, srv.LocalAddr(), strconv.Itoa(j))
					time.Sleep(time.Millisecond)
				}
			})
		}
		go n.SetConditions(vnet.Conditions{Delay: 2 * time.Millisecond})
		wg.Wait()
		settle()
		got := get()
		if st := n.Stats(); st.Sent != 800 || st.Delivered != uint64(len(got)) || st.Delivered+st.Dropped.Total() != 800 {
			t.Fatalf("Stats = %+v, received %d", st, len(got))
		}
	})
}
