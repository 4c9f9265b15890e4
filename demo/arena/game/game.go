// Package game is the arena's Ebitengine front end: the menu, the match
// browser, the match itself (world, effects, HUD, scoreboard, network
// panel) and sound. The simulation lives in package sim and the network
// play in package netplay; this package only reads their state and feeds
// them the player's input.
package game

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/inpututil"
	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/demo/assets"
	"github.com/skein-dev/skein/engine/lan"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/trust"
)

// Options configure the game; main sets them from flags.
type Options struct {
	// Name is the player's name.
	Name string
	// Credentials are sent to every match server joined: the player's
	// local profile (netplay.Profile), which names them to an open-mode
	// server. Empty: anonymous.
	Credentials []byte
	// Server is the match server the menu offers ("host:port").
	Server string
	// Bots is how many bots join a match this player creates.
	Bots int
	// Map is the map of a match this player creates (see sim.Maps).
	Map string
	// Listen is where "play now" runs its embedded server: 127.0.0.1:0 for
	// this machine only, or e.g. :7777 to let the LAN join.
	Listen string
	// LAN opens play-now matches to the local network: the embedded server
	// listens on LANListen and the match is advertised (engine/lan).
	LAN bool
	// LANLocal announces on this machine only (loopback): for trying the
	// LAN list with several windows on one computer.
	LANLocal bool
	// Start is what to do at once instead of showing the menu: "play"
	// (play now), "quick", "host" or "browse" (on Server), or "join" (match
	// Join on Server).
	Start string
	Join  uint32
	// Autoplay lets the AI play this player (demos, tests, benchmarks).
	Autoplay bool
	// ExitAfter quits after this long (zero: never).
	ExitAfter time.Duration
	// StatsFile, if set, receives frame and network statistics as JSON at
	// exit.
	StatsFile string
	// Mute turns sound off.
	Mute bool
	// ShowNet opens the network panel at the start of a match.
	ShowNet bool
	// Uplink is netplay.Config.Uplink for this player (0: the default,
	// negative: no cap).
	Uplink int
	// Width and Height are the window's first size (zero: 1280×720). The
	// window is resizable.
	Width, Height int
	// KnownServers is the file of remembered server keys (trust on first
	// use for servers joined by host:port without a key, see engine/trust;
	// "": os.UserConfigDir()/skein/known_servers).
	KnownServers string
	// Logger receives the logs (nil: none).
	Logger hclog.Logger
}

// Game is the ebiten.Game of the arena.
type Game struct {
	opt   Options
	log   hclog.Logger
	res   *res
	snd   *sounds
	scene scene
	frame int
	w, h  int
	start time.Time

	conn    *conn
	menu    *menuScene
	known   *trust.Store // remembered server keys, opened at the first join by host:port
	browser *lan.Browser // LAN games, while the menu has been shown
	stats   frameStats
	err     error
	stop    <-chan struct{}
}

// scene is one screen of the game.
type scene interface {
	update(g *Game) error
	draw(g *Game, dst *ebiten.Image)
}

// conn is the current connection: an optional embedded server, the
// session, and the bots this player started.
type conn struct {
	local *netplay.Local
	sess  *netplay.Session
	bots  *netplay.Bots
	addr  netip.AddrPort
	ad    *lan.Advertiser // the match announced on the LAN, if it is
	// pinned: the server's key was known before connecting (join link,
	// LAN beacon, embedded server); otherwise it is trusted on first use.
	pinned bool
	// check remembers the key of a server joined by host:port without a
	// key (trust on first use, Options.KnownServers).
	check *trust.Check
}

// LANListen is where play now listens when open to the LAN (":0" when the
// port is taken).
const LANListen = ":7777"

// New loads the assets and returns the game at its menu (or at the start
// action of opt).
func New(opt Options) (*Game, error) {
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	opt.Name = netplay.CleanName(opt.Name)
	r, err := loadRes()
	if err != nil {
		return nil, err
	}
	g := &Game{opt: opt, log: opt.Logger.Named("game"), res: r, w: 1280, h: 720, start: time.Now()}
	g.snd = newSounds(!opt.Mute, g.log)
	g.menu = newMenu(g)
	g.scene = g.menu
	switch opt.Start {
	case "play":
		g.playNow()
	case "quick", "host", "browse", "join":
		g.connectTo(opt.Server, opt.Start, opt.Join)
	}
	return g, nil
}

// Run opens the window and runs the game until it quits.
func Run(opt Options) error {
	g, err := New(opt)
	if err != nil {
		return err
	}
	ebiten.SetWindowTitle("Skein Arena")
	w, h := opt.Width, opt.Height
	if w <= 0 || h <= 0 {
		w, h = 1280, 720
	}
	ebiten.SetWindowSize(w, h)
	ebiten.SetWindowResizingMode(ebiten.WindowResizingModeEnabled)
	// Keep running in the background: a host that stopped ticking when its
	// window lost focus would freeze everyone's match.
	ebiten.SetRunnableOnUnfocused(true)
	if img, err := assets.Image("icon"); err == nil {
		ebiten.SetWindowIcon([]image.Image{img})
	}
	// SIGINT and SIGTERM end the game like the Quit button, so that -stats
	// is written and the match is left gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g.stop = ctx.Done()
	// Every scene covers the whole screen: clearing it first would cost a
	// full-screen pass, which software GL feels.
	ebiten.SetScreenClearedEveryFrame(false)
	err = ebiten.RunGameWithOptions(g, &ebiten.RunGameOptions{})
	g.shutdown()
	if errors.Is(err, ebiten.Termination) {
		err = nil
	}
	if err == nil {
		err = g.err
	}
	return err
}

// Update runs one tick (ebiten calls it sim.TickRate times a second).
func (g *Game) Update() error {
	g.frame++
	if g.opt.ExitAfter > 0 && time.Since(g.start) >= g.opt.ExitAfter {
		return ebiten.Termination
	}
	select {
	case <-g.stop:
		return ebiten.Termination
	default:
	}
	if ebiten.IsKeyPressed(ebiten.KeyAlt) && inpututil.IsKeyJustPressed(ebiten.KeyEnter) || inpututil.IsKeyJustPressed(ebiten.KeyF11) {
		ebiten.SetFullscreen(!ebiten.IsFullscreen())
	}
	g.stats.tick()
	return g.scene.update(g)
}

// Draw draws the current scene.
func (g *Game) Draw(screen *ebiten.Image) {
	g.stats.frame()
	g.scene.draw(g, screen)
}

// Layout uses the window's size as the screen's: the game scales its
// camera to it.
func (g *Game) Layout(w, h int) (int, int) {
	g.w, g.h = max(w, 320), max(h, 240)
	return g.w, g.h
}

// playNow starts an embedded server, creates a match on it and adds bots.
func (g *Game) playNow() {
	listen := g.opt.Listen
	if g.opt.LAN && !g.opt.LANLocal && isLoopback(listen) {
		listen = LANListen
	}
	local, err := netplay.StartLocal(listen, g.opt.Logger)
	if err != nil && listen == LANListen {
		local, err = netplay.StartLocal(":0", g.opt.Logger)
	}
	if err != nil {
		g.menu.message = fmt.Sprintf("Could not start the local server: %v", err)
		return
	}
	g.conn = &conn{local: local, addr: local.Addr()}
	g.scene = newConnect(g, local.Addr(), "host", 0, g.opt.Bots, local.Key())
}

// connectTo connects to a match server for action (quick, host, browse,
// join).
func (g *Game) connectTo(server, action string, match uint32) {
	server, key, pinned, err := netplay.ParseJoin(server)
	var addr netip.AddrPort
	if err == nil {
		addr, err = resolve(server)
	}
	if err != nil {
		g.menu.message = err.Error()
		g.scene = g.menu
		return
	}
	g.conn = &conn{addr: addr}
	bots := 0
	if action == "host" {
		bots = g.opt.Bots
	}
	var keys []net.ServerKey
	if pinned {
		keys = append(keys, key)
	} else {
		// No key given: the one remembered for this name, or trust on
		// first use and remember it.
		chk, err := g.checkServer(serverName(server, addr))
		if err != nil {
			g.conn = nil
			g.menu.message = err.Error()
			g.scene = g.menu
			return
		}
		g.conn.check = chk
	}
	g.scene = newConnect(g, addr, action, match, bots, keys...)
}

// isLoopback reports whether a listen address is on this machine only.
func isLoopback(listen string) bool {
	ap, err := netip.ParseAddrPort(listen)
	return err == nil && ap.Addr().IsLoopback()
}

// advertise announces the play-now match on the LAN.
func (g *Game) advertise(match net.HostID) {
	c := g.conn
	if !g.opt.LAN || c == nil || c.local == nil {
		return
	}
	port := c.local.Server().UDPAddr().Port()
	scope := lan.ScopeLAN
	if g.opt.LANLocal {
		scope = lan.ScopeLoopback
	}
	ad, err := netplay.AdvertiseMatch(context.Background(), scope, port, g.opt.Name+"'s arena",
		netplay.LANMatch{Match: match, Map: g.matchOptions().Map, Key: c.local.Key()}, 1, sim.MaxPlayers, g.opt.Logger)
	if err != nil {
		g.log.Warn("cannot advertise on the LAN", "error", err)
		return
	}
	c.ad = ad
}

// resolve turns "host:port" (port 7777 when missing) into an address.
func resolve(server string) (netip.AddrPort, error) { return netplay.ResolveServer(server) }

// disconnect ends the current connection in the background (a graceful
// close takes a moment) and returns to the menu with message.
func (g *Game) disconnect(message string) {
	c := g.conn
	g.conn = nil
	g.menu.message = message
	g.scene = g.menu
	ebiten.SetCursorMode(ebiten.CursorModeVisible)
	if c != nil {
		go c.close()
	}
}

func (c *conn) close() {
	if c.ad != nil {
		c.ad.Close()
	}
	if c.bots != nil {
		c.bots.Stop()
	}
	if c.sess != nil {
		c.sess.Close()
	}
	if c.local != nil {
		c.local.Close()
	}
}

// shutdown closes everything at exit and writes the statistics.
func (g *Game) shutdown() {
	if g.opt.StatsFile != "" {
		if err := g.writeStats(); err != nil {
			g.log.Error("stats", "error", err)
		}
	}
	if g.conn != nil {
		g.conn.close()
		g.conn = nil
	}
	if g.browser != nil {
		g.browser.Close()
	}
}

// frameStats measures frames and ticks per second.
type frameStats struct {
	frames, ticks int
	windowStart   time.Time
	windowFrames  int
	fpsSamples    []float64
	first         time.Time
}

func (s *frameStats) tick() { s.ticks++ }

func (s *frameStats) frame() {
	now := time.Now()
	if s.first.IsZero() {
		s.first, s.windowStart = now, now
	}
	s.frames++
	s.windowFrames++
	if d := now.Sub(s.windowStart); d >= time.Second {
		s.fpsSamples = append(s.fpsSamples, float64(s.windowFrames)/d.Seconds())
		s.windowStart, s.windowFrames = now, 0
	}
}

// Stats is what -stats writes.
type Stats struct {
	Seconds      float64   `json:"seconds"`
	Frames       int       `json:"frames"`
	Ticks        int       `json:"ticks"`
	FPSPerSecond []float64 `json:"fps_per_second"`
	FPSMean      float64   `json:"fps_mean"`
	FPSMin       float64   `json:"fps_min"`
	Players      int       `json:"players"`
	IsHost       bool      `json:"is_host"`
	BytesIn      uint64    `json:"bytes_in"`
	BytesOut     uint64    `json:"bytes_out"`
	NetSeconds   float64   `json:"net_seconds"`
	Kills        int       `json:"kills"`
}

func (g *Game) writeStats() error {
	s := Stats{Seconds: time.Since(g.stats.first).Seconds(), Frames: g.stats.frames, Ticks: g.stats.ticks, FPSPerSecond: g.stats.fpsSamples}
	// Skip the first two seconds (window setup, connection) for the figures.
	samples := g.stats.fpsSamples
	if len(samples) > 3 {
		samples = samples[2:]
	}
	if len(samples) > 0 {
		s.FPSMin = samples[0]
		for _, f := range samples {
			s.FPSMean += f
			s.FPSMin = min(s.FPSMin, f)
		}
		s.FPSMean /= float64(len(samples))
	}
	if p, ok := g.scene.(*playScene); ok {
		s.Players = len(p.view.Players)
		s.IsHost = p.view.IsHost
		for _, pl := range p.view.Players {
			s.Kills += int(pl.Kills)
		}
		st := p.sess.Client().Host().Stats()
		s.BytesIn, s.BytesOut = st.BytesIn, st.BytesOut
		s.NetSeconds = time.Since(p.started).Seconds()
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(g.opt.StatsFile, b, 0o600) // the player's own figures: theirs to share
}

// matchOptions are the options of a match this player creates.
func (g *Game) matchOptions() proto.MatchOptions {
	o := netplay.DefaultOptions()
	if g.opt.Map != "" {
		o.Map = g.opt.Map
	}
	return o
}
