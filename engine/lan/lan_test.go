package lan

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// These tests send only to 127.0.0.0/8 (ScopeLoopback, or explicit
// loopback targets).

// freePort returns a UDP port nobody on 127.0.0.1 uses right now.
func freePort(t testing.TB) uint16 {
	t.Helper()
	c, err := listenShared("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
}

// testLogger logs to t.Log when -v is given.
func testLogger(t testing.TB) hclog.Logger {
	if !testing.Verbose() {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Debug, Output: testWriter{t}})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// checkGoroutines fails the test if goroutines started during it are still
// running shortly after it ends (its Cleanups run first).
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines left (had %d):\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// waitFor polls cond until it holds or 10 s pass (a generous bound: the
// conditions themselves take milliseconds).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func entryNamed(b *Browser, name string) (Entry, bool) {
	i := slices.IndexFunc(b.Entries(), func(e Entry) bool { return e.Name == name })
	if i < 0 {
		return Entry{}, false
	}
	return b.Entries()[i], true
}

// An advertiser and a browser on loopback, by each method: the entry comes,
// follows updates, and goes at once with the goodbye.
func TestLoopback(t *testing.T) {
	for _, m := range []struct {
		name   string
		method Method
	}{{"broadcast", Broadcast}, {"multicast", Multicast}, {"both", 0}} {
		t.Run(m.name, func(t *testing.T) {
			checkGoroutines(t)
			ctx := t.Context()
			port := freePort(t)
			br, err := Browse(ctx, BrowserConfig{Port: port, Scope: ScopeLoopback, Methods: m.method, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer br.Close()
			ad, err := Advertise(ctx, AdvertiserConfig{Port: port, Scope: ScopeLoopback, Methods: m.method, Interval: 100 * time.Millisecond, Logger: testLogger(t)},
				Beacon{Kind: "test", Name: "Ana's game", Players: 1, Capacity: 4, Protocol: 3, Port: 40001})
			if err != nil {
				t.Fatal(err)
			}
			defer ad.Close()

			e, err := br.Wait(ctx, func(e Entry) bool { return e.Name == "Ana's game" })
			if err != nil {
				t.Fatal(err)
			}
			if e.Addr != netip.MustParseAddrPort("127.0.0.1:40001") || e.Kind != "test" || e.Players != 1 ||
				e.Capacity != 4 || e.Protocol != 3 || e.Instance != ad.Instance() {
				t.Errorf("entry %+v", e)
			}
			if err := ad.Update(func(b *Beacon) { b.Players = 2 }); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "players=2", func() bool { e, ok := entryNamed(br, "Ana's game"); return ok && e.Players == 2 })
			if err := ad.Update(func(b *Beacon) { b.Name = "bad\x00name" }); err == nil {
				t.Error("Update accepted a name with a control character")
			}

			ad.Close()
			// The goodbye removes it long before the 5 s TTL.
			start := time.Now()
			waitFor(t, "the goodbye", func() bool { return len(br.Entries()) == 0 })
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("entry went after %v: the goodbye was not applied", d)
			}
			st := br.Stats()
			if st.Accepted == 0 || st.Drops != [NumDropReasons]uint64{} {
				t.Errorf("browser stats %+v", st)
			}
			if as := ad.Stats(); as.Sent == 0 || as.Rounds == 0 {
				t.Errorf("advertiser stats %+v", as)
			}
		})
	}
}

// Two browsers on one machine share the port and both hear the beacon.
func TestBrowsersShareThePort(t *testing.T) {
	checkGoroutines(t)
	ctx := t.Context()
	port := freePort(t)
	var brs []*Browser
	for range 2 {
		br, err := Browse(ctx, BrowserConfig{Port: port, Scope: ScopeLoopback})
		if err != nil {
			t.Fatal(err)
		}
		defer br.Close()
		brs = append(brs, br)
	}
	ad, err := Advertise(ctx, AdvertiserConfig{Port: port, Scope: ScopeLoopback, Interval: 100 * time.Millisecond}, Beacon{Name: "shared", Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	for i, br := range brs {
		if _, err := br.Wait(ctx, nil); err != nil {
			t.Fatalf("browser %d: %v", i, err)
		}
	}
}

// Entries expire TTL after the last beacon, and Changed says so.
func TestLoopbackExpiry(t *testing.T) {
	checkGoroutines(t)
	ctx := t.Context()
	port := freePort(t)
	br, err := Browse(ctx, BrowserConfig{Port: port, Scope: ScopeLoopback, TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	send(t, port, mustEncode(t, Beacon{Instance: 42, Name: "once", Port: 5}))
	if _, err := br.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	select { // drop the signal of the arrival, if Wait left it
	case <-br.Changed():
	default:
	}
	for len(br.Entries()) != 0 {
		select {
		case <-br.Changed():
		case <-time.After(10 * time.Second):
			t.Fatal("no change signalled for the expiry")
		}
	}
}

// Malformed, foreign and future beacons are dropped and counted; the
// browser keeps working.
func TestMalformedDropped(t *testing.T) {
	checkGoroutines(t)
	ctx := t.Context()
	port := freePort(t)
	br, err := Browse(ctx, BrowserConfig{Port: port, Scope: ScopeLoopback, Kind: "arena"})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	good := mustEncode(t, Beacon{Instance: 1, Kind: "arena", Name: "ok", Port: 5})
	truncated := good[:len(good)-1]
	future := append([]byte(nil), good...)
	future[4] = 2
	for _, d := range [][]byte{
		[]byte("hello?"),   // foreign
		truncated,          // malformed
		future,             // version
		make([]byte, 1500), // malformed: oversized
		append(append([]byte(nil), good...), 'x'),                  // malformed: trailing byte
		mustEncode(t, Beacon{Instance: 2, Kind: "chess", Port: 5}), // another kind: ignored
		good,
	} {
		send(t, port, d)
	}
	if _, err := br.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all datagrams counted", func() bool { return br.Stats().Received == 7 })
	st := br.Stats()
	want := BrowserStats{Received: 7, Accepted: 1, Ignored: 1}
	want.Drops[DropForeign] = 1
	want.Drops[DropMalformed] = 3
	want.Drops[DropVersion] = 1
	if st != want {
		t.Errorf("stats\n got %+v\nwant %+v", st, want)
	}
	if es := br.Entries(); len(es) != 1 || es[0].Name != "ok" {
		t.Errorf("entries %+v", es)
	}
	// Out of scope: a loopback browser ignores other machines.
	br.handle(good, netip.MustParseAddrPort("10.1.0.11:5000"), time.Now())
	br.handle(good, netip.MustParseAddrPort("0.0.0.0:5000"), time.Now())
	if n := br.Stats().Drops[DropScope]; n != 2 {
		t.Errorf("DropScope %d, want 2", n)
	}
}

// Canceling the context stops both sides; Close after that is harmless.
func TestContextStops(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithCancel(t.Context())
	port := freePort(t)
	br, err := Browse(ctx, BrowserConfig{Port: port, Scope: ScopeLoopback})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := Advertise(ctx, AdvertiserConfig{Port: port, Scope: ScopeLoopback}, Beacon{Name: "x", Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := br.Wait(context.Background(), func(Entry) bool { return false }); err != ErrClosed {
		t.Errorf("Wait after cancel: %v, want ErrClosed", err)
	}
	ad.Close()
	br.Close()
}

func TestConfigErrors(t *testing.T) {
	ctx := t.Context()
	if _, err := Advertise(ctx, AdvertiserConfig{Scope: ScopeLoopback}, Beacon{Name: "no port"}); err == nil {
		t.Error("Advertise accepted a beacon without a port")
	}
	if _, err := Browse(ctx, BrowserConfig{Group: netip.MustParseAddr("10.0.0.1")}); err == nil {
		t.Error("Browse accepted a unicast group")
	}
}

func mustEncode(t *testing.T, b Beacon) []byte {
	t.Helper()
	d, err := AppendBeacon(nil, &b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// send sends one datagram to the loopback broadcast address.
func send(t *testing.T, port uint16, data []byte) {
	t.Helper()
	c, err := listenShared("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDPAddrPort(data, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 255, 255, 255}), port)); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	os.Exit(m.Run())
}

// A context that is already canceled, or is canceled while Advertise and
// Browse return, stops them cleanly.
func TestContextCanceledEarly(t *testing.T) {
	checkGoroutines(t)
	port := freePort(t)
	for range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		go cancel()
		ad, err := Advertise(ctx, AdvertiserConfig{Port: port, Scope: ScopeLoopback}, Beacon{Name: "x", Port: 1})
		if err != nil {
			t.Fatal(err)
		}
		br, err := Browse(ctx, BrowserConfig{Port: port, Scope: ScopeLoopback})
		if err != nil {
			t.Fatal(err)
		}
		<-ctx.Done()
		ad.Close()
		br.Close()
	}
}
