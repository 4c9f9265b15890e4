package game

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/inpututil"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

// connectScene connects to a server (in the background), then does the
// action: create a match (and add bots), quick-join, join one, or browse.
type connectScene struct {
	addr    netip.AddrPort
	action  string
	match   net.HostID
	bots    int
	started time.Time
	dialed  chan dialResult
	asked   bool
	status  string
}

type dialResult struct {
	s   *netplay.Session
	err error
}

// newConnect dials addr. keys pins the server's key (a join link, a LAN
// beacon, the embedded server); none: trust on first use, the fingerprint
// is shown.
func newConnect(g *Game, addr netip.AddrPort, action string, match uint32, bots int, keys ...net.ServerKey) *connectScene {
	c := &connectScene{addr: addr, action: action, match: net.HostID(match), bots: bots, started: time.Now(), dialed: make(chan dialResult, 1)}
	c.status = fmt.Sprintf("Connecting to %v…", addr)
	if g.conn != nil && g.conn.local != nil {
		c.status = "Starting a local match…"
	}
	cfg := netplay.Config{Name: g.opt.Name, Logger: g.opt.Logger, Uplink: g.opt.Uplink, Credentials: g.opt.Credentials}
	cfg.Net.ServerKeys = keys
	if g.conn != nil {
		g.conn.pinned = len(keys) > 0
		if g.conn.check != nil && !g.conn.pinned {
			g.conn.check.Configure(&cfg.Net)
		}
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		s, err := netplay.Dial(ctx, addr, cfg)
		c.dialed <- dialResult{s, err}
	}()
	return c
}

func (c *connectScene) update(g *Game) error {
	if inpututil.IsKeyJustPressed(ebiten.KeyEscape) {
		go func() { // the dial may still finish: close what it gives
			if r := <-c.dialed; r.s != nil {
				r.s.Close()
			}
		}()
		g.disconnect("")
		return nil
	}
	if g.conn.sess == nil {
		select {
		case r := <-c.dialed:
			if r.err != nil {
				g.disconnect(connectError(r.err))
				return nil
			}
			g.conn.sess = r.s
		default:
			return nil
		}
	}
	s := g.conn.sess
	s.Tick(sim.Input{})
	if !s.Connected() {
		g.disconnect(fmt.Sprintf("Disconnected: %v", s.Err()))
		return nil
	}
	if e := s.LobbyError(); e != "" {
		g.disconnect(e)
		return nil
	}
	if !c.asked {
		c.asked = true
		switch c.action {
		case "host":
			name := g.opt.Name + "'s arena"
			if g.conn.local != nil {
				name = "Play now"
			}
			s.CreateMatch(name, sim.MaxPlayers, g.matchOptions())
			c.status = "Creating a match…"
		case "quick":
			s.QuickJoin()
			c.status = "Finding a match…"
		case "join":
			s.JoinMatch(c.match)
			c.status = fmt.Sprintf("Joining match %d…", c.match)
		case "browse":
			g.scene = newBrowse(g)
			return nil
		}
	}
	if m := s.InMatch(); m != net.NoHost {
		g.advertise(m)
		if c.bots > 0 {
			g.conn.bots = netplay.NewBots(g.opt.Logger)
			g.conn.bots.Add(c.bots, g.conn.addr, m, netplay.BotConfig{Seed: uint64(time.Now().UnixNano())})
		}
		g.scene = newPlay(g, s)
		return nil
	}
	if time.Since(c.started) > 12*time.Second {
		g.disconnect("The server did not answer in time")
	}
	return nil
}

func (c *connectScene) draw(g *Game, dst *ebiten.Image) {
	g.menu.drawBackground(g, dst)
	w, h := float64(g.w), float64(g.h)
	r := rect{w/2 - 220, h/2 - 60, 440, 120}
	panel(dst, r)
	drawText(dst, c.status, g.res.big, w/2, r.y+28, colText, center)
	if g.conn != nil && g.conn.sess != nil {
		drawText(dst, keyNote(g.conn), g.res.small, w/2, r.y+56, colDim, center)
	}
	// A spinner of dots.
	for i := range 8 {
		a := float64(i)/8*2*math.Pi + float64(g.frame)/12
		x, y := w/2+math.Cos(a)*14, r.y+84+math.Sin(a)*14
		alpha := float32(0.25 + 0.75*float64((i+g.frame/4)%8)/8)
		op := &ebiten.DrawImageOptions{}
		op.GeoM.Translate(-16, -16)
		op.GeoM.Scale(0.25, 0.25)
		op.GeoM.Translate(x, y)
		op.ColorScale = scaleOf(colAccent, alpha)
		dst.DrawImage(g.res.glow, op)
	}
	drawText(dst, "Esc: cancel", g.res.small, w/2, r.y+r.h+10, colDim, center)
}

// keyNote says which server key the connection proved and why it is
// trusted: pinned (join link, LAN beacon, embedded server) or on first
// use, for the player to compare with what the server's operator shows.
func keyNote(c *conn) string {
	if c.check != nil && !c.pinned {
		if note := trustNote(c.check); note != "" {
			return note
		}
	}
	how := "trusted on first use: compare it with the server's"
	if c.pinned {
		how = "pinned"
	}
	return fmt.Sprintf("server key %s (%s)", c.sess.ServerKey().Fingerprint(), how)
}

// shortFingerprint is the start of a key's fingerprint, for the network
// panel (the connect screen shows it whole).
func shortFingerprint(k net.ServerKey) string {
	f := k.Fingerprint()
	return f[:min(len(f), 7+12)] + "…"
}
