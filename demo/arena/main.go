// Command arena is the Skein demo game: a top-down arena shooter for 2 to
// 16 players on P2P groups, with the group's host as the authority.
//
//	go run ./demo/arena                          # play now: embedded server and bots
//	go run ./demo/arena -server 10.0.0.5:7777    # the menu, pointed at a server
//	go run ./demo/arena -headless -bots 15 -server 10.0.0.5:7777   # load test
//
// See -help for every flag, and demo/arena/README.md.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/game"
	"github.com/skein-dev/skein/demo/arena/headless"
	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/engine/net"
)

func main() {
	var (
		name      = flag.String("name", defaultName(), "your player name")
		server    = flag.String("server", "", "match server host:port, or a join link skein://host:port#KEY that pins the server's key (default: none, the menu offers play now)")
		bots      = flag.Int("bots", 7, "bots: added to a match you create (window), or how many to run (-headless)")
		mapName   = flag.String("map", "Foundry", "map of a match you create: Foundry (30×20) or Pit (20×12)")
		listen    = flag.String("listen", "127.0.0.1:0", "where play now's embedded server listens")
		lanF      = flag.Bool("lan", false, "open play now to your LAN: listen on :7777 and announce the match (the menu has the same switch)")
		lanLocal  = flag.Bool("lan-local", false, "with -lan: announce on this machine only (several windows on one computer)")
		start     = flag.String("start", "", "skip the menu: play, quick, host, browse or join (default: play when no -server, else the menu)")
		match     = flag.Uint("match", 0, "match ID for -start join (and -headless)")
		autoplay  = flag.Bool("autoplay", false, "let the AI play your player (demos, tests, benchmarks)")
		exitAfter = flag.Duration("exit-after", 0, "quit after this long (0: never)")
		stats     = flag.String("stats", "", "write frame and network statistics as JSON to this file at exit")
		mute      = flag.Bool("mute", false, "no sound")
		showNet   = flag.Bool("netpanel", false, "open the network panel when a match starts")
		size      = flag.String("size", "1280x720", "first window size (the window is resizable)")
		headlessF = flag.Bool("headless", false, "no window: run -bots bot clients (against -server, or an embedded server)")
		duration  = flag.Duration("duration", 0, "with -headless: stop after this long (0: until interrupted)")
		logLevel  = flag.String("log", "warn", "log level: trace, debug, info, warn, error, off")
		uplink    = flag.Int("uplink", netplay.DefaultUplink/1000, "kB/s this player's group messages may send directly; above it the match server fans them out (0: no cap)")
		cpuProf   = flag.String("cpuprofile", "", "write a CPU profile to this file")
		tokenF    = flag.String("token", "", "a connect token (tools/skein-token's output) for a match server in token mode, sent instead of your profile; it admits one connection")
		profDir   = flag.String("profile-dir", "", "directory of your player profile (a generated ID and your name, sent to match servers; default: your config directory's skein/), for tests and several players on one computer")
		known     = flag.String("known-servers", "", "file of remembered server keys: a server joined by host:port without a key is trusted on first use and must prove the same key later (default: your config directory's skein/known_servers)")
	)
	flag.Parse()
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "arena", Level: hclog.LevelFromString(*logLevel), Output: os.Stderr})
	if *logLevel == "off" {
		log = hclog.NewNullLogger()
	}

	if *headlessF {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		cfg := headless.Config{Bots: *bots, Map: *mapName, Match: uint32(*match), Logger: log, Listen: *listen, Out: os.Stdout}
		if *server != "" {
			host, key, pinned, err := netplay.ParseJoin(*server)
			if err != nil {
				fail(err)
			}
			ap, err := netplay.ResolveServer(host)
			if err != nil {
				fail(err)
			}
			cfg.Server = ap
			if pinned {
				cfg.ServerKeys = []net.ServerKey{key}
			}
		}
		if err := headless.Run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			fail(err)
		}
		return
	}

	if *start == "" && *server == "" {
		*start = "play"
	}
	if *start == "join" && *match == 0 {
		fail(errors.New("-start join needs -match ID"))
	}
	var width, height int
	if _, err := fmt.Sscanf(*size, "%dx%d", &width, &height); err != nil {
		fail(fmt.Errorf("-size %q: want WIDTHxHEIGHT", *size))
	}
	prof, err := netplay.LoadProfile(*profDir, *name)
	if err != nil {
		fail(err)
	}
	creds := prof.Credentials()
	if *tokenF != "" {
		if creds, err = base64.RawURLEncoding.DecodeString(strings.TrimSpace(*tokenF)); err != nil {
			fail(fmt.Errorf("-token: %w", err))
		}
	}
	err = game.Run(game.Options{
		Width: width, Height: height,
		Name: *name, Server: *server, Bots: *bots, Map: *mapName, Listen: *listen, LAN: *lanF, LANLocal: *lanLocal, Start: *start, Join: uint32(*match),
		Autoplay: *autoplay, ExitAfter: *exitAfter, StatsFile: *stats, Mute: *mute, ShowNet: *showNet, Logger: log,
		Uplink: uplinkBytes(*uplink), KnownServers: *known, Credentials: creds,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "arena:", err)
		if windowError(err) {
			fmt.Fprintln(os.Stderr, windowHint)
		}
		os.Exit(1)
	}
}

// uplinkBytes turns the -uplink flag (kB/s, 0 for no cap) into
// netplay.Config.Uplink.
func uplinkBytes(kBs int) int {
	if kBs <= 0 {
		return -1
	}
	return kBs * 1000
}

// windowHint follows an error from the window: the usual causes are no
// display and missing run-time libraries.
const windowHint = `arena: the window could not open. Check that a display is set ($DISPLAY), and
  on Debian/Ubuntu install the libraries the game loads: bash scripts/deps.sh --demo
  (or: apt-get install libgl1 libgl1-mesa-dri libx11-6 libxcursor1 libxext6 libxi6 libxinerama1 libxrandr2 libxrender1 libasound2).
  Without a display, bots can still play: go run ./demo/arena -headless -bots 4 -duration 30s`

// windowError reports whether err looks like the window system failing to
// start (no display, a library that did not load).
func windowError(err error) bool {
	s := strings.ToLower(err.Error())
	for _, k := range []string{"window system", "display", "glfw", "dlopen", ".so", "opengl", "x11"} {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

func defaultName() string {
	if u, err := user.Current(); err == nil && u.Username != "" && u.Username != "root" {
		return u.Username
	}
	return fmt.Sprintf("Player%d", time.Now().UnixNano()%900+100)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "arena:", err)
	os.Exit(1)
}
