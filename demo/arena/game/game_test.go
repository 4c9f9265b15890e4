package game

import (
	"math"
	"net/netip"
	"testing"

	"github.com/skein-dev/skein/demo/arena/sim"
)

func TestCamera(t *testing.T) {
	m := sim.DefaultMap()
	c := camera{x: 100, y: 100, scale: 1, w: 1280, h: 720}
	c.clamp(m)
	if c.x != 640-margin || c.y != 360-margin {
		t.Errorf("clamped to (%v, %v), want the view's corner on the border", c.x, c.y)
	}
	c = camera{x: 900, y: 700, scale: 0.75, w: 1280, h: 721}
	p := sim.V(1000, 800)
	x, y := c.toScreen(p)
	if q := c.toWorld(x, y); math.Abs(float64(q.X-p.X)) > 1e-3 || math.Abs(float64(q.Y-p.Y)) > 1e-3 {
		t.Errorf("toWorld(toScreen(%v)) = %v", p, q)
	}
	// A view wider than the arena centres it.
	c = camera{x: 0, y: 0, scale: 0.3, w: 1280, h: 720}
	c.clamp(m)
	if c.x != float64(m.W)/2 || c.y != float64(m.H)/2 {
		t.Errorf("small zoom: centre (%v, %v)", c.x, c.y)
	}
}

func TestResolve(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7777": "127.0.0.1:7777",
		"127.0.0.1":      "127.0.0.1:7777",
		"[::1]:9000":     "[::1]:9000",
		"localhost:7000": "127.0.0.1:7000",
	} {
		got, err := resolve(in)
		if err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("resolve(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "localhost:port"} {
		if _, err := resolve(bad); err == nil {
			t.Errorf("resolve(%q) succeeded", bad)
		}
	}
	if !isLoopback("127.0.0.1:0") || isLoopback(":7777") || isLoopback("0.0.0.0:1") {
		t.Error("isLoopback")
	}
}
