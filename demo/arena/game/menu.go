package game

import (
	"context"
	"fmt"
	"image/color"
	"math"
	"strings"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/inpututil"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/lan"
	"github.com/skein-dev/skein/engine/net"
)

// menuScene is the title screen: name, server address, and the ways to
// play. Behind it bots play a match on this machine alone.
type menuScene struct {
	name, server field
	message      string
	demo         *sim.World
	bots         []*sim.Bot
	in           map[sim.PlayerID][]sim.Input
	renderer     *worldRenderer
	view         netplay.View
	cam          camera
	seq          uint32
	lan          []lan.Entry
	browseFailed bool
}

func newMenu(g *Game) *menuScene {
	m := &menuScene{
		name:   field{label: "YOUR NAME", value: g.opt.Name, max: netplay.MaxName},
		server: field{label: "SERVER (host:port, or a skein:// join link)", value: g.opt.Server, max: 128},
		in:     map[sim.PlayerID][]sim.Input{},
	}
	m.demo = sim.NewWorld(sim.DefaultMap(), sim.Rules{})
	for i := range 6 {
		id := sim.PlayerID(10 + i)
		if _, err := m.demo.AddPlayer(id); err != nil {
			break // the world is full (it holds sim.MaxPlayers)
		}
		b := sim.NewBot(id, uint64(i)*31+5)
		b.Skill = 0.6
		m.bots = append(m.bots, b)
	}
	m.renderer = newWorldRenderer(g.res, m.demo.Map, nil)
	return m
}

func (m *menuScene) stepDemo() {
	m.seq++
	for _, b := range m.bots {
		in := b.Think(m.demo)
		in.Seq = m.seq
		m.in[b.ID] = append(m.in[b.ID][:0], in)
	}
	m.demo.Step(m.in, nil)
}

// layout returns the menu's widgets' rectangles.
func (m *menuScene) layout(g *Game) (box, name, play, server, quick, host, browse, minus, plus, mapR, lanR rect) {
	w, h := float64(g.w), float64(g.h)
	box = rect{w/2 - 230, math.Max(150, h/2-170), 460, 470}
	x := box.x + 30
	name = rect{x, box.y + 44, 400, 36}
	play = rect{x, box.y + 100, 400, 56}
	minus = rect{x + 44, box.y + 170, 30, 28}
	plus = rect{x + 116, box.y + 170, 30, 28}
	mapR = rect{x + 200, box.y + 170, 100, 28}
	lanR = rect{x + 310, box.y + 170, 90, 28}
	server = rect{x, box.y + 244, 400, 36}
	quick = rect{x, box.y + 296, 128, 44}
	host = rect{x + 136, box.y + 296, 128, 44}
	browse = rect{x + 272, box.y + 296, 128, 44}
	return
}

// lanRow is the rectangle of the i-th LAN game.
func (m *menuScene) lanRow(box rect, i int) rect {
	return rect{box.x + 30, box.y + 376 + float64(i)*28, 400, 26}
}

// browseLAN keeps the list of arena matches announced on the LAN (the
// browser starts with the menu and only listens).
func (m *menuScene) browseLAN(g *Game) {
	if g.browser == nil && !m.browseFailed {
		b, err := lan.Browse(context.Background(), lan.BrowserConfig{Kind: netplay.LANKind, Logger: g.opt.Logger})
		if err != nil {
			m.browseFailed = true
			g.log.Info("not listening for LAN games", "error", err)
			return
		}
		g.browser = b
	}
	if g.browser == nil || g.frame%15 != 0 {
		return
	}
	m.lan = m.lan[:0]
	for _, e := range g.browser.Entries() {
		if _, ok := netplay.ParseLANBeacon(e.Beacon); ok && len(m.lan) < 3 {
			m.lan = append(m.lan, e)
		}
	}
}

func (m *menuScene) update(g *Game) error {
	m.stepDemo()
	box, nameR, play, serverR, quick, host, browse, minus, plus, mapR, lanR := m.layout(g)
	m.browseLAN(g)
	if clicked(lanR) {
		g.opt.LAN = !g.opt.LAN
	}
	for i, e := range m.lan {
		if r := m.lanRow(box, i); clicked(r) {
			if lm, ok := netplay.ParseLANBeacon(e.Beacon); ok {
				m.message = ""
				g.conn = &conn{addr: e.Addr}
				var keys []net.ServerKey
				if !lm.Key.IsZero() {
					keys = append(keys, lm.Key) // the key the beacon named
				}
				g.scene = newConnect(g, e.Addr, "join", uint32(lm.Match), 0, keys...)
				return nil
			}
		}
	}
	if clicked(mapR) {
		i := 0
		for j, n := range sim.Maps {
			if n == g.opt.Map {
				i = j + 1
			}
		}
		g.opt.Map = sim.Maps[i%len(sim.Maps)]
	}
	m.name.update(nameR)
	m.server.update(serverR)
	g.opt.Name = netplay.CleanName(m.name.value)
	g.opt.Server = m.server.value
	if clicked(minus) && g.opt.Bots > 0 {
		g.opt.Bots--
	}
	if clicked(plus) && g.opt.Bots < sim.MaxPlayers-1 {
		g.opt.Bots++
	}
	enter := inpututil.IsKeyJustPressed(ebiten.KeyEnter) || inpututil.IsKeyJustPressed(ebiten.KeyKPEnter)
	switch {
	case clicked(play) || enter && !m.server.focus:
		m.message = ""
		g.playNow()
	case clicked(quick) || enter && m.server.focus:
		m.message = ""
		g.connectTo(m.server.value, "quick", 0)
	case clicked(host):
		m.message = ""
		g.connectTo(m.server.value, "host", 0)
	case clicked(browse):
		m.message = ""
		g.connectTo(m.server.value, "browse", 0)
	}
	if inpututil.IsKeyJustPressed(ebiten.KeyEscape) && !m.name.focus && !m.server.focus {
		return ebiten.Termination
	}
	return nil
}

// drawBackground draws the demo match, slowly panning, darkened.
func (m *menuScene) drawBackground(g *Game, dst *ebiten.Image) {
	dst.Fill(colBG)
	viewOfWorld(&m.view, m.demo)
	t := float64(g.frame) / 60
	mp := m.demo.Map
	m.cam.w, m.cam.h = float64(g.w), float64(g.h)
	m.cam.scale = math.Max(float64(g.w)/float64(mp.W), float64(g.h)/float64(mp.H)) * 1.25
	m.cam.x = float64(mp.W)/2 + math.Sin(t*0.05)*float64(mp.W)*0.12
	m.cam.y = float64(mp.H)/2 + math.Cos(t*0.07)*float64(mp.H)*0.1
	m.cam.clamp(mp)
	m.renderer.update(&m.view, g, false)
	m.renderer.draw(dst, &m.view, &m.cam, g)
	fillRect(dst, rect{0, 0, float64(g.w), float64(g.h)}, color.RGBA{8, 10, 16, 150})
}

func (m *menuScene) draw(g *Game, dst *ebiten.Image) {
	m.drawBackground(g, dst)
	w := float64(g.w)
	box, nameR, play, serverR, quick, host, browse, minus, plus, mapR, lanR := m.layout(g)
	top := math.Max(30, box.y-130)
	drawTextShadow(dst, "SKEIN ARENA", g.res.huge, w/2, top, colAccent, center)
	drawTextShadow(dst, "a top-down shooter on the Skein networking engine", g.res.normal, w/2, top+78, colDim, center)
	panel(dst, box)
	g.drawField(dst, &m.name, nameR)
	g.button(dst, play, "PLAY NOW", true, true)
	drawText(dst, "BOTS", g.res.small, play.x, minus.y+6, colDim, left)
	drawText(dst, "MAP", g.res.small, mapR.x-34, mapR.y+6, colDim, left)
	mapName := g.opt.Map
	if mapName == "" {
		mapName = sim.Maps[0]
	}
	g.button(dst, mapR, mapName+" ›", false, true)
	lanLabel := "LAN: off"
	if g.opt.LAN {
		lanLabel = "LAN: on"
	}
	g.button(dst, lanR, lanLabel, g.opt.LAN, true)
	if hovered(lanR) {
		drawText(dst, "open play now to your network (port 7777) and announce it", g.res.small, w/2, box.y+box.h+40, colDim, center)
	}
	g.button(dst, minus, "–", false, g.opt.Bots > 0)
	drawText(dst, fmt.Sprint(g.opt.Bots), g.res.big, (minus.x+minus.w+plus.x)/2, minus.y+1, colText, center)
	g.button(dst, plus, "+", false, g.opt.Bots < sim.MaxPlayers-1)
	fillRect(dst, rect{box.x + 30, box.y + 212, 400, 1}, colLine)
	g.drawField(dst, &m.server, serverR)
	g.button(dst, quick, "Quick join", false, true)
	g.button(dst, host, "Host match", false, true)
	g.button(dst, browse, "Browse…", false, true)
	drawText(dst, "GAMES ON YOUR LAN", g.res.small, box.x+30, box.y+354, colDim, left)
	if len(m.lan) == 0 {
		drawText(dst, "none heard yet (play now with LAN: on to host one)", g.res.small, box.x+30, box.y+378, colDim, left)
	}
	for i, e := range m.lan {
		r := m.lanRow(box, i)
		bg := color.RGBA{24, 29, 42, 230}
		if hovered(r) {
			bg = color.RGBA{40, 50, 74, 250}
		}
		fillRect(dst, r, bg)
		lm, _ := netplay.ParseLANBeacon(e.Beacon)
		drawText(dst, netplay.CleanName(e.Name), g.res.small, r.x+8, r.y+5, colText, left)
		drawText(dst, fmt.Sprintf("%s · %d/%d · %v", lm.Map, e.Players, e.Capacity, e.Addr.Addr()), g.res.small, r.x+r.w-8, r.y+5, colDim, right)
	}
	if m.message != "" {
		for i, line := range strings.Split(m.message, "\n") { // a refusal has several lines
			drawText(dst, line, g.res.normal, w/2, box.y+box.h+14+float64(i)*22, colWarn, center)
		}
	}
	help := "WASD / arrows move · mouse aims · click or Space shoots · Tab scores · N network panel · Esc menu"
	drawTextShadow(dst, help, g.res.small, w/2, float64(g.h)-30, colDim, center)
}
