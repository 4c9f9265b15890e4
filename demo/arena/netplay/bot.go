package netplay

import (
	"context"
	"fmt"
	"net/netip"
	stdsync "sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

// BotConfig configures a bot client.
type BotConfig struct {
	// Session configures the bot's session (its Name is the bot's name).
	Session Config
	// Match is the match to join; NoHost quick-joins.
	Match net.HostID
	// Seed varies the bot's decisions.
	Seed uint64
	// Skill from 0 to 1; zero means 0.5.
	Skill float32
	// OnTick, if set, is called after every tick on the bot's goroutine
	// (tests and load statistics).
	OnTick func(*Session)
}

// BotNames are the names bots take, in order.
var BotNames = []string{"Mika", "Juno", "Oskar", "Ines", "Tarek", "Yuki", "Bram", "Noor",
	"Pavel", "Lucia", "Emeka", "Saga", "Ravi", "Hana", "Dario", "Ayla", "Kofi", "Mei"}

// RunBot connects a bot to the server at addr, joins a match and plays it
// at sim.TickRate until ctx ends or the connection does. It returns nil
// when ctx ended.
func RunBot(ctx context.Context, addr netip.AddrPort, cfg BotConfig) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	s, err := Dial(dctx, addr, cfg.Session)
	cancel()
	if err != nil {
		return err
	}
	defer s.Close()
	if cfg.Match != net.NoHost {
		s.JoinMatch(cfg.Match)
	} else {
		s.QuickJoin()
	}
	return play(ctx, s, cfg)
}

// play drives s with a bot brain at sim.TickRate until ctx ends or the
// connection does.
func play(ctx context.Context, s *Session, cfg BotConfig) error {
	var brain *sim.Bot
	talk := NewChatter(cfg.Seed)
	tick := time.Second / sim.TickRate
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		// Run the ticks that are due (a few at most after a stall).
		now := time.Now()
		if now.Sub(next) > 5*tick {
			next = now.Add(-tick)
		}
		for !next.After(now) {
			next = next.Add(tick)
			var in sim.Input
			if s.InMatch() != net.NoHost {
				if brain == nil {
					brain = sim.NewBot(sim.PlayerID(s.ID()), cfg.Seed)
					if cfg.Skill > 0 {
						brain.Skill = cfg.Skill
					}
				}
				if w := s.World(); w != nil {
					in = brain.Think(w)
				}
			}
			s.Tick(in)
			talk.Step(s)
			s.Chat() // a bot reads nothing
			if cfg.OnTick != nil {
				cfg.OnTick(s)
			}
		}
		if !s.Connected() {
			return fmt.Errorf("bot %s: %w", s.Name(), s.Err())
		}
		if e := s.LobbyError(); e != "" {
			return fmt.Errorf("bot %s: %s", s.Name(), e)
		}
		timer.Reset(time.Until(next))
	}
}

// Bots runs bot clients in goroutines until Stop.
type Bots struct {
	log    hclog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     stdsync.WaitGroup
	mu     stdsync.Mutex
	n      int
}

// NewBots returns an empty set of bots logging to log (nil: nowhere).
func NewBots(log hclog.Logger) *Bots {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Bots{log: log.Named("bots"), ctx: ctx, cancel: cancel}
}

// Add starts n bots that join match (NoHost: quick-join) on the server at
// addr. Their names follow BotNames.
func (b *Bots) Add(n int, addr netip.AddrPort, match net.HostID, base BotConfig) {
	for range n {
		b.mu.Lock()
		i := b.n
		b.n++
		b.mu.Unlock()
		cfg := base
		cfg.Match = match
		cfg.Seed = base.Seed + uint64(i)*7919
		cfg.Session.Name = BotNames[i%len(BotNames)]
		if i >= len(BotNames) {
			cfg.Session.Name = fmt.Sprintf("%s %d", cfg.Session.Name, i/len(BotNames)+1)
		}
		if cfg.Session.Logger == nil {
			cfg.Session.Logger = b.log
		}
		cfg.Skill = 0.35 + 0.5*float32((i*37)%10)/10
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := RunBot(b.ctx, addr, cfg); err != nil {
				b.log.Warn("bot stopped", "bot", cfg.Session.Name, "error", err)
			}
		}()
	}
}

// Adopt makes a bot of a session that is already connected (and maybe in
// a match): the Bots own it from now on and close it at Stop.
func (b *Bots) Adopt(s *Session, cfg BotConfig) {
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer s.Close()
		if err := play(b.ctx, s, cfg); err != nil {
			b.log.Warn("bot stopped", "bot", s.Name(), "error", err)
		}
	}()
}

// Count returns how many bots were started.
func (b *Bots) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// Stop disconnects every bot and waits for them.
func (b *Bots) Stop() {
	b.cancel()
	b.wg.Wait()
}
