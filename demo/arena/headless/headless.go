// Package headless runs arena bot clients without a window: the load tool
// behind `arena -headless -bots N`. Bots fill matches of up to 16: the
// first bot of each match creates it and the others join it (or all join
// Config.Match), and a report of the traffic per client is printed every
// ten seconds and at the end.
package headless

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

// Config configures a headless run.
type Config struct {
	// Server is the match server; the zero value starts one in-process
	// listening on Listen.
	Server netip.AddrPort
	Listen string
	// ServerKeys pins Server's key (from a join link); none: trusted on
	// first use. The embedded server's key is always pinned.
	ServerKeys []net.ServerKey
	// Bots is how many bot clients to run (zero: 15).
	Bots int
	// Match, if not zero, is the match every bot joins.
	Match uint32
	// Map is the map of the matches the bots create.
	Map string
	// Logger receives the logs; Out the reports (nil: discarded).
	Logger hclog.Logger
	Out    io.Writer
	// Every is how often a report is written; zero means 10 s.
	Every time.Duration
}

// Report is the traffic of the bots over a period. Bytes are UDP payload
// (Skein's headers and encryption included); add 28 bytes per datagram for
// the IPv4 and UDP headers.
type Report struct {
	Seconds                  float64
	Clients                  int // bots connected and in a match
	Matches                  int
	Hosts                    int
	UpKBs                    Summary // per member (hosts apart), kB/s (1000 bytes)
	DownKBs                  Summary
	UpPkts                   float64 // datagrams per second per member, on average
	DownPkts                 float64
	HostUp                   float64 // kB/s sent by the hosts, on average
	HostDown                 float64
	HostUpPkts, HostDownPkts float64
	Kills                    int
}

// Summary is the mean, minimum and maximum of a per-client figure.
type Summary struct{ Mean, Min, Max float64 }

func summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := Summary{Min: xs[0], Max: xs[0]}
	for _, x := range xs {
		s.Mean += x
		s.Min, s.Max = min(s.Min, x), max(s.Max, x)
	}
	s.Mean /= float64(len(xs))
	return s
}

// String formats r on one line.
func (r Report) String() string {
	return fmt.Sprintf("%5.0fs  %d clients in %d matches · per member ↑ %.1f kB/s (%.1f–%.1f, %.0f datagrams/s) ↓ %.1f kB/s (%.1f–%.1f, %.0f/s) · per host ↑ %.1f kB/s (%.0f/s) ↓ %.1f kB/s (%.0f/s) · %d kills",
		r.Seconds, r.Clients, r.Matches, r.UpKBs.Mean, r.UpKBs.Min, r.UpKBs.Max, r.UpPkts, r.DownKBs.Mean, r.DownKBs.Min, r.DownKBs.Max, r.DownPkts,
		r.HostUp, r.HostUpPkts, r.HostDown, r.HostDownPkts, r.Kills)
}

type botStat struct {
	in, out   uint64
	din, dout uint64
	match     net.HostID
	host      bool
	kills     int
}

// Run runs the bots until ctx ends and returns the last report's error,
// if any.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Bots <= 0 {
		cfg.Bots = 15
	}
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Second
	}
	addr := cfg.Server
	if !addr.IsValid() {
		listen := cfg.Listen
		if listen == "" {
			listen = "127.0.0.1:0"
		}
		local, err := netplay.StartLocal(listen, cfg.Logger)
		if err != nil {
			return err
		}
		defer local.Close()
		addr = local.Addr()
		cfg.ServerKeys = []net.ServerKey{local.Key()}
		fmt.Fprintf(cfg.Out, "embedded match server on %v, key %s\n", local.Server().UDPAddr(), local.Key().Fingerprint())
	}
	var mu sync.Mutex
	stats := map[net.HostID]botStat{}
	onTick := func(s *netplay.Session) {
		if s.InMatch() == net.NoHost {
			return
		}
		var v netplay.View
		st := s.Client().Host().Stats()
		b := botStat{in: st.BytesIn, out: st.BytesOut, din: st.DatagramsIn, dout: st.DatagramsOut, match: s.InMatch()}
		s.View(&v)
		b.host = v.IsHost
		if me := v.MeP(); me != nil {
			b.kills = int(me.Kills)
		}
		mu.Lock()
		stats[s.ID()] = b
		mu.Unlock()
	}

	bots := netplay.NewBots(cfg.Logger)
	defer bots.Stop()
	base := netplay.BotConfig{Seed: uint64(time.Now().UnixNano()), OnTick: onTick}
	base.Session.Net.ServerKeys = cfg.ServerKeys
	if cfg.Match != 0 {
		bots.Add(cfg.Bots, addr, net.HostID(cfg.Match), base)
	} else {
		// Fill matches of sim.MaxPlayers: the first bot creates each.
		for left := cfg.Bots; left > 0; left -= sim.MaxPlayers {
			n := min(left, sim.MaxPlayers)
			id, err := createMatch(ctx, addr, cfg, base, bots)
			if err != nil {
				return err
			}
			fmt.Fprintf(cfg.Out, "match %d created, %d bots\n", id, n)
			bots.Add(n-1, addr, id, base)
		}
	}

	start := time.Now()
	last := map[net.HostID]botStat{}
	lastAt := start
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	report := func() {
		now := time.Now()
		mu.Lock()
		cur := make(map[net.HostID]botStat, len(stats))
		for k, v := range stats {
			cur[k] = v
		}
		mu.Unlock()
		d := now.Sub(lastAt).Seconds()
		var up, down []float64
		var hostUp, hostDown, pktUp, pktDown, hostPktUp, hostPktDown float64
		matches := map[net.HostID]bool{}
		r := Report{Seconds: now.Sub(start).Seconds()}
		for id, b := range cur {
			matches[b.match] = true
			r.Kills += b.kills
			// A bot's counters start at zero when it connects, after the
			// run started: its first window is measured from zero (a little
			// low, rather than nothing).
			p := last[id]
			u, dn := float64(b.out-p.out)/d/1000, float64(b.in-p.in)/d/1000
			pu, pd := float64(b.dout-p.dout)/d, float64(b.din-p.din)/d
			if b.host {
				r.Hosts++
				hostUp += u
				hostDown += dn
				hostPktUp += pu
				hostPktDown += pd
				continue
			}
			up = append(up, u)
			down = append(down, dn)
			pktUp += pu
			pktDown += pd
		}
		r.Clients, r.Matches = len(cur), len(matches)
		r.UpKBs, r.DownKBs = summarize(up), summarize(down)
		if len(up) > 0 {
			r.UpPkts, r.DownPkts = pktUp/float64(len(up)), pktDown/float64(len(up))
		}
		if r.Hosts > 0 {
			h := float64(r.Hosts)
			r.HostUp, r.HostDown, r.HostUpPkts, r.HostDownPkts = hostUp/h, hostDown/h, hostPktUp/h, hostPktDown/h
		}
		fmt.Fprintln(cfg.Out, r)
		last, lastAt = cur, now
	}
	for {
		select {
		case <-ctx.Done():
			report()
			return ctx.Err()
		case <-tick.C:
			report()
		}
	}
}

// createMatch starts a bot that creates a match and returns its ID.
func createMatch(ctx context.Context, addr netip.AddrPort, cfg Config, base netplay.BotConfig, bots *netplay.Bots) (net.HostID, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hc := netplay.Config{Name: "Host bot", Logger: cfg.Logger}
	hc.Net.ServerKeys = cfg.ServerKeys
	s, err := netplay.Dial(dctx, addr, hc)
	if err != nil {
		return 0, err
	}
	opts := netplay.DefaultOptions()
	if cfg.Map != "" {
		opts.Map = cfg.Map
	}
	s.CreateMatch("Bots", sim.MaxPlayers, opts)
	for s.InMatch() == net.NoHost {
		s.Tick(sim.Input{})
		if e := s.LobbyError(); e != "" {
			s.Close()
			return 0, fmt.Errorf("create match: %s", e)
		}
		if dctx.Err() != nil {
			s.Close()
			return 0, fmt.Errorf("create match: %w", dctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	id := s.InMatch()
	bots.Adopt(s, base)
	return id, nil
}
