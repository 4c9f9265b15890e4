package netplay

import (
	"context"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

// status is what a bot's session looked like at its last tick.
type status struct {
	host        bool
	tick        uint32
	round       uint16
	players     int
	kills       int
	snapshots   uint64
	names       int
	hostID      net.HostID
	positions   map[sim.PlayerID]sim.Vec2
	corrections uint64
}

type board struct {
	mu stdsync.Mutex
	m  map[net.HostID]status
}

func (b *board) record(s *Session) {
	var v View
	s.View(&v)
	st := status{host: v.IsHost, tick: v.Tick, round: v.Round, players: len(v.Players), snapshots: s.Counters().Snapshots,
		names: len(s.names), hostID: s.host, positions: map[sim.PlayerID]sim.Vec2{}, corrections: s.Counters().Corrections}
	for _, p := range v.Players {
		st.kills += int(p.Kills)
		if p.Alive {
			st.positions[p.ID] = p.Pos
		}
	}
	b.mu.Lock()
	b.m[s.ID()] = st
	b.mu.Unlock()
}

func (b *board) get() map[net.HostID]status {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[net.HostID]status, len(b.m))
	for k, v := range b.m {
		out[k] = v
	}
	return out
}

func testLogger(t *testing.T) hclog.Logger {
	if testing.Verbose() {
		return hclog.New(&hclog.LoggerOptions{Name: "arena", Level: hclog.Info})
	}
	return nil
}

// startLocal starts the embedded server on a loopback port, closed when
// the test ends, and gives a context for the test's dials and waits that
// ends after 10 s.
func startLocal(t *testing.T, log hclog.Logger) (*Local, context.Context) {
	t.Helper()
	local, err := StartLocal("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return local, ctx
}

// playFor ticks s with a bot brain in real time for d.
func playFor(s *Session, brain *sim.Bot, d time.Duration, each func()) {
	tick := time.Second / sim.TickRate
	end := time.Now().Add(d)
	next := time.Now()
	for time.Now().Before(end) {
		var in sim.Input
		if w := s.World(); w != nil {
			in = brain.Think(w)
		}
		s.Tick(in)
		if each != nil {
			each()
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
}

// TestMatch plays a match over loopback with the embedded server: a host
// and four bot clients. Scores and positions must progress; when the host
// leaves, the server names another member host and the match goes on from
// its latest snapshot, scores kept.
func TestMatch(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for several seconds")
	}
	log := testLogger(t)
	local, ctx := startLocal(t, log)
	host, err := Dial(ctx, local.Addr(), Config{Name: "Host", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Map = "Pit" // small: the bots meet at once
	host.CreateMatch("test", 8, opts)
	for host.InMatch() == net.NoHost {
		host.Tick(sim.Input{})
		if e := host.LobbyError(); e != "" {
			t.Fatal(e)
		}
		if ctx.Err() != nil {
			t.Fatal("no answer to CreateMatch")
		}
		time.Sleep(5 * time.Millisecond)
	}
	match := host.InMatch()

	b := &board{m: map[net.HostID]status{}}
	bots := NewBots(log)
	defer bots.Stop()
	bots.Add(4, local.Addr(), match, BotConfig{Seed: 3, OnTick: b.record})

	// Five players for five seconds (the host plays too).
	brain := sim.NewBot(sim.PlayerID(host.ID()), 99)
	var hits, kills int
	start := map[sim.PlayerID]sim.Vec2{}
	playFor(host, brain, 5*time.Second, func() {
		for _, e := range host.Effects() {
			switch e.Kind {
			case sim.EventHit:
				hits++
			case sim.EventKill:
				kills++
			case sim.EventSpawn, sim.EventPickup, sim.EventRoundEnd, sim.EventRoundStart:
				// Not counted.
			}
		}
		if len(start) == 0 && host.world != nil && len(host.world.Players) == 5 {
			for _, p := range host.world.Players {
				start[p.ID] = p.Pos
			}
		}
	})
	w := host.world
	if w == nil {
		t.Fatal("the match's creator is not its host")
	}
	if len(w.Players) != 5 {
		t.Fatalf("host world has %d players, want 5", len(w.Players))
	}
	if len(host.names) != 5 {
		t.Errorf("host knows %d names, want 5: %v", len(host.names), host.names)
	}
	moved := 0
	for _, p := range w.Players {
		if p0, ok := start[p.ID]; ok && p0.Dist(p.Pos) > 10 {
			moved++
		}
	}
	if moved < 4 {
		t.Errorf("only %d of 5 players moved", moved)
	}
	if hits == 0 {
		t.Error("no hits in five seconds of five bots")
	}
	t.Logf("host: tick %d, %d hits, %d kills, %d inputs received, %d snapshots sent", w.Tick, hits, kills, host.Counters().Inputs, host.Counters().SnapshotsSent)
	before := b.get()
	if len(before) != 4 {
		t.Fatalf("%d bots reported, want 4", len(before))
	}
	for id, st := range before {
		t.Logf("bot %d: %d snapshots, %d prediction corrections", id, st.snapshots, st.corrections)
		if st.snapshots < 40 || st.players != 5 || st.host || st.names != 5 {
			t.Errorf("bot %d before the handover: %+v", id, st)
		}
		// A bot's view of the others agrees with the host's, give or take
		// the interpolation delay.
		for pid, pos := range st.positions {
			if hp := w.Player(pid); hp != nil && hp.Alive && hp.Pos.Dist(pos) > 150 {
				t.Errorf("bot %d sees %d at %v, the host at %v", id, pid, pos, hp.Pos)
			}
		}
	}
	hostKills := make(map[sim.PlayerID]uint16)
	for _, p := range w.Players {
		hostKills[p.ID] = p.Kills
	}
	tickBefore := w.Tick

	// The host leaves: a bot must take over from its latest snapshot.
	if err := host.Close(); err != nil {
		t.Logf("host close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var heir net.HostID
	for heir == net.NoHost && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		for id, st := range b.get() {
			if st.host {
				heir = id
			}
		}
	}
	if heir == net.NoHost {
		t.Fatal("no bot became host after the host left")
	}
	time.Sleep(3 * time.Second)
	after := b.get()
	hs := after[heir]
	if hs.players != 4 {
		t.Errorf("new host has %d players, want 4", hs.players)
	}
	if hs.tick < tickBefore+120 || hs.round != 1 {
		t.Errorf("new host at tick %d round %d; the old host was at %d: the match did not go on", hs.tick, hs.round, tickBefore)
	}
	for id, st := range after {
		if st.hostID != heir {
			t.Errorf("bot %d thinks %d is host, not %d", id, st.hostID, heir)
		}
		if id != heir && st.snapshots <= before[id].snapshots+30 {
			t.Errorf("bot %d got %d snapshots after the handover", id, st.snapshots-before[id].snapshots)
		}
	}
	// Scores survive the handover (nobody's kills went down).
	t.Logf("after the handover: host %d at tick %d, total kills %d (was %d)", heir, hs.tick, hs.kills, sum(hostKills)-int(hostKills[sim.PlayerID(host.ID())]))
	if hs.kills < sum(hostKills)-int(hostKills[sim.PlayerID(host.ID())]) {
		t.Errorf("kills went down in the handover")
	}
}

func sum(m map[sim.PlayerID]uint16) int {
	n := 0
	for _, v := range m {
		n += int(v)
	}
	return n
}

// TestImpairedNetwork plays with every member's socket losing 10% of what
// it sends and delaying it 40±15 ms: the match must go on smoothly, with
// the redundant inputs covering the losses (no mispredictions to speak of).
func TestImpairedNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for several seconds")
	}
	log := testLogger(t)
	local, ctx := startLocal(t, log)
	host, err := Dial(ctx, local.Addr(), Config{Name: "Host", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	opts := DefaultOptions()
	opts.Map = "Pit"
	host.CreateMatch("lossy", 4, opts)
	for host.InMatch() == net.NoHost && ctx.Err() == nil {
		host.Tick(sim.Input{})
		time.Sleep(5 * time.Millisecond)
	}
	host.Impair().SetConditions(0.10, 40*time.Millisecond, 15*time.Millisecond)

	b := &board{m: map[net.HostID]status{}}
	bots := NewBots(log)
	defer bots.Stop()
	bots.Add(3, local.Addr(), host.InMatch(), BotConfig{Seed: 11, OnTick: func(s *Session) {
		s.Impair().SetConditions(0.10, 40*time.Millisecond, 15*time.Millisecond)
		b.record(s)
	}})
	brain := sim.NewBot(sim.PlayerID(host.ID()), 5)
	start := map[sim.PlayerID]sim.Vec2{}
	playFor(host, brain, 5*time.Second, func() {
		if host.world != nil && len(start) < len(host.world.Players) {
			for _, p := range host.world.Players {
				if _, ok := start[p.ID]; !ok {
					start[p.ID] = p.Pos
				}
			}
		}
	})
	moved := 0
	for _, p := range host.world.Players {
		if p0, ok := start[p.ID]; ok && p0.Dist(p.Pos) > 10 {
			moved++
		}
	}
	if len(host.world.Players) != 4 || moved < 3 {
		t.Errorf("%d players, %d moved", len(host.world.Players), moved)
	}
	sent := host.Counters().SnapshotsSent
	for id, st := range b.get() {
		t.Logf("bot %d: %d of %d snapshots, %d corrections", id, st.snapshots, sent, st.corrections)
		if float64(st.snapshots) < 0.75*float64(sent) {
			t.Errorf("bot %d got %d of %d snapshots at 10%% loss", id, st.snapshots, sent)
		}
		if st.corrections > st.snapshots/10 {
			t.Errorf("bot %d: %d corrections in %d snapshots: redundancy should cover 10%% loss", id, st.corrections, st.snapshots)
		}
	}
}

// TestForceRelay moves a peer's link onto the server's relay and back: the
// panel's R key. The player is told each time.
func TestForceRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for hole punching")
	}
	log := testLogger(t)
	local, ctx := startLocal(t, log)
	host, err := Dial(ctx, local.Addr(), Config{Name: "Host", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	host.CreateMatch("relay", 2, DefaultOptions())
	for host.InMatch() == net.NoHost && ctx.Err() == nil {
		host.Tick(sim.Input{})
		time.Sleep(5 * time.Millisecond)
	}
	guest, err := Dial(ctx, local.Addr(), Config{Name: "Guest", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	guest.JoinMatch(host.InMatch())
	if !host.CanForceRelay() {
		t.Skip("this engine cannot force the relay")
	}
	var notices []string
	// waitPath ticks both until the host's link to the guest is relayed
	// (or not).
	waitPath := func(relayed bool) {
		t.Helper()
		for ctx.Err() == nil {
			host.Tick(sim.Input{})
			guest.Tick(sim.Input{})
			for _, n := range host.Notices() {
				notices = append(notices, n.Text)
			}
			for _, p := range host.Peers() {
				if p.ID == guest.ID() && p.Relayed == relayed && p.Path != "" {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("the link never became relayed=%v; notices %q", relayed, notices)
	}
	waitPath(false) // hole punching finds the loopback path
	for host.PlayerName(guest.ID()) != "Guest" && ctx.Err() == nil {
		host.Tick(sim.Input{})
		guest.Tick(sim.Input{})
		time.Sleep(10 * time.Millisecond)
	}
	if err := host.ForceRelay(guest.ID(), true); err != nil {
		t.Fatal(err)
	}
	waitPath(true)
	// Give the poll a moment to notice, then let go.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && !containsText(notices, "direct → relayed") {
		host.Tick(sim.Input{})
		guest.Tick(sim.Input{})
		for _, n := range host.Notices() {
			notices = append(notices, n.Text)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !containsText(notices, "Guest: direct → relayed") {
		t.Errorf("no toast for the move to the relay: %q", notices)
	}
	if err := host.ForceRelay(guest.ID(), false); err != nil {
		t.Fatal(err)
	}
	waitPath(false)
}

func containsText(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "Player",
		"  Mika  ":                  "Mika",
		"a\u202Eevil":               "aevil",
		"line\nbreak":               "line break",
		"abcdefghijklmnopqrstuvwxy": "abcdefghijklmnop",
	} {
		if got := CleanName(in); got != want {
			t.Errorf("CleanName(%q) = %q, want %q", in, got, want)
		}
	}
}
