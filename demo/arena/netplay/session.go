// Package netplay plays the arena over Skein: a Session is one player's
// connection to a match server, its lobby requests, and its part in a match
// (a P2P group whose host is the authority).
//
// The member the server names host of the match group simulates the match
// (package sim) at a fixed tick, applies the inputs the others send it
// (Player_Input, unreliable), and multicasts snapshots (Host_Snapshot and
// Host_Bullets, unreliable) and what happened (Host_Events, reliable) to the
// group. The other members predict their own player from their inputs and
// reconcile with each snapshot's acknowledged input, draw the others
// interpolated against the estimated server clock, and keep the latest
// snapshot: when the host leaves and the server names another, the new host
// builds its world from that snapshot and the match carries on, scores and
// positions included.
//
// A Session is driven by its owner's loop: call Tick once per simulation
// tick (sim.TickRate per second) from one goroutine; every other method
// must be called from that goroutine too. The GUI drives one from
// Ebitengine's Update; Bot drives one from a timer with sim.Bot as the
// player.
package netplay

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/impair"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/lobby"
)

// Config configures a Session. Zero values take the documented defaults.
type Config struct {
	// Name is the player's name as others see it (trimmed to MaxName
	// characters). Empty means "Player".
	Name string
	// Local is the UDP address to bind. Empty means 127.0.0.1:0 when the
	// server is on loopback, else 0.0.0.0:0.
	Local string
	// Logger receives the session's logs under "netplay" (and the engine's
	// under "sync" and "net"). Nil: no logs.
	Logger hclog.Logger
	// InterpDelay is how far behind the estimated server clock the other
	// players are drawn. Zero means 100 ms (two snapshots at 20 Hz).
	InterpDelay time.Duration
	// SnapshotTicks is how many ticks apart a host sends snapshots. Zero
	// means 3 (20 snapshots per second).
	SnapshotTicks int
	// InputTicks is how many ticks apart a member sends its inputs to the
	// host (each message carries proto.InputRedundancy inputs). Zero means
	// 2 (30 messages per second).
	InputTicks int
	// Uplink is what this player's group messages may send directly to the
	// other players, in bytes per second (the engine's
	// net.Config.UplinkBudget): above it, a group message goes up to the
	// match server once and the server sends each player a copy. That keeps
	// a host's upload flat however many players there are. Zero means
	// DefaultUplink; negative means no cap. Net.UplinkBudget, when set,
	// wins.
	Uplink int
	// Net tunes the engine's transport. Net.ResumeGrace zero means
	// net.DefaultResumeGrace: a player whose network drops for a few
	// seconds keeps its place in the match (negative: off); Net.Timeout
	// zero then means AwayAfter, so that the player is told within a few
	// seconds (a timeout only suspends the session).
	Net net.Config
	// Credentials are sent sealed in the handshake: the player's Profile
	// (Profile.Credentials) for an open-mode match server, or a connect
	// token. Empty: the player is anonymous.
	Credentials []byte
}

// DefaultUplink is the default Config.Uplink: 96 kB/s (768 kbit/s, with
// IP and UDP headers). A host of up to about 6 players stays under it and
// sends every snapshot directly; a fuller match's snapshots go mostly
// through the server's fan-out.
const DefaultUplink = 96_000

// AwayAfter is the arena's link timeout: with resume on, a link silent
// this long is suspended (the "connection lost… reconnecting" toast), not
// closed, so it can be much shorter than the engine's default 10 s.
const AwayAfter = 4 * time.Second

// MaxName bounds a player's name, in characters.
const MaxName = 16

// Notice is a line for the player: a toast, or a line in the match feed.
type Notice struct {
	Text string
	Kind NoticeKind
}

// NoticeKind says how a notice should look.
type NoticeKind uint8

// Notice kinds.
const (
	Info NoticeKind = iota
	Good
	Warn
	Network // about the network: host and relay changes
)

// Session is one player's connection to a match server and its part in a
// match. Create it with Dial; drive it with Tick.
type Session struct {
	cfg    Config
	log    hclog.Logger
	client *sync.Client
	imp    *impair.Conn
	me     net.HostID
	arena  *proto.ArenaP2PProxy
	lob    *lobby.LobbyProxy
	reqs   *rmi.Requests // carries the lobby's requests
	disp   *rmi.Dispatcher
	start  time.Time

	// Lobby.
	joining   bool        // a create, join or quick join waits for its answer
	leaving   bool        // a leave waits for its answer
	listing   rmi.Pending // the last ListMatches: older answers are stale
	matches   []lobby.MatchInfo
	pages     matchPages
	listedAt  time.Time
	lobbyErr  string
	connErr   error
	connected bool
	away      bool // the server link is suspended: reconnecting

	// Match.
	match   net.HostID
	opts    proto.MatchOptions
	m       *sim.Map
	rules   sim.Rules
	host    net.HostID
	members []net.HostID
	names   map[net.HostID]string
	users   map[net.HostID]string // user IDs from member joins (ShareUsers)
	joined  bool                  // my own join event was seen: later joins are newcomers

	// Host role (world != nil).
	world  *sim.World
	queues map[sim.PlayerID]*inputQueue
	stepIn map[sim.PlayerID][]sim.Input
	evbuf  []sim.Event
	wire   proto.Snapshot
	wireEv []proto.GameEvent
	ticks  int
	// Events waiting for the next snapshot, and their ages in ticks.
	pendingEv []sim.Event
	evTicks   []int

	// Member role.
	latest     sim.State // newest snapshot (players), with the newest bullets
	latestTime uint32    // its server time, ms
	haveLatest bool
	ring       []timedState // recent snapshots for interpolation, oldest first
	bullets    []sim.Bullet
	bulletTime uint32
	pred       sim.Player
	predOK     bool
	smooth     sim.Vec2 // visual offset that hides corrections
	pending    []sim.Input
	waiting    []timedEvent // host events waiting for the interpolated time
	scratch    sim.World    // the world as a bot on this member sees it

	// Both.
	seq     uint32
	cmds    []proto.InputCmd
	effects []sim.Event
	notices []Notice
	relayed map[net.HostID]bool
	// relayWhy is the reason of each peer's last move onto the relay.
	relayWhy map[net.HostID]error
	polled   time.Time
	counts   Counters

	// Chat (chat.go).
	chat      []ChatLine
	chatLimit *chat.Limiter[net.HostID] // per sender, at this receiver
	ownPace   *chat.Limiter[net.HostID] // the player's own lines
}

// Counters count what a session saw, for the network panel and tests.
type Counters struct {
	Snapshots     uint64 // snapshots received
	Inputs        uint64 // input messages received (as host)
	HostChanges   uint64
	Corrections   uint64 // reconciliations that moved the own player
	BadMessages   uint64 // calls that did not dispatch
	SnapshotsSent uint64
	ChatSent      uint64 // own chat lines sent
	ChatReceived  uint64 // chat lines shown from others
	ChatDropped   uint64 // chat lines hidden by the per-sender rate limit
	ChatRefused   uint64 // chat lines refused as empty or too long
}

type timedState struct {
	time uint32 // server ms
	st   sim.State
}

type timedEvent struct {
	at uint32 // server ms
	ev sim.Event
}

// Dial connects a new session to the match server at addr. It blocks for
// the handshake (bounded by ctx and the transport's handshake timeout).
func Dial(ctx context.Context, addr netip.AddrPort, cfg Config) (*Session, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.InterpDelay <= 0 {
		cfg.InterpDelay = 100 * time.Millisecond
	}
	if cfg.SnapshotTicks <= 0 {
		cfg.SnapshotTicks = 3
	}
	if cfg.InputTicks <= 0 {
		cfg.InputTicks = 2
	}
	if cfg.Uplink == 0 {
		cfg.Uplink = DefaultUplink
	}
	if cfg.Net.UplinkBudget == 0 && cfg.Uplink > 0 {
		cfg.Net.UplinkBudget = cfg.Uplink
	}
	if cfg.Net.ResumeGrace == 0 {
		cfg.Net.ResumeGrace = net.DefaultResumeGrace
	}
	if cfg.Net.ResumeGrace > 0 && cfg.Net.Timeout == 0 {
		cfg.Net.Timeout = AwayAfter
	}
	cfg.Name = CleanName(cfg.Name)
	if cfg.Local == "" {
		cfg.Local = "0.0.0.0:0"
		if addr.Addr().IsLoopback() {
			cfg.Local = "127.0.0.1:0"
		}
	}
	raw, err := net.ListenUDP(cfg.Local)
	if err != nil {
		return nil, err
	}
	imp := impair.Wrap(raw)
	client, err := sync.NewClient(imp, sync.ClientConfig{Net: cfg.Net, Logger: cfg.Logger, Credentials: cfg.Credentials})
	if err != nil {
		imp.Close()
		return nil, err
	}
	if err := client.Connect(ctx, addr); err != nil {
		client.Close()
		return nil, fmt.Errorf("connect to %v: %w", addr, err)
	}
	s := &Session{
		cfg:       cfg,
		log:       cfg.Logger.Named("netplay").With("me", client.ID()),
		client:    client,
		imp:       imp,
		me:        client.ID(),
		arena:     proto.NewArenaP2PProxy(client),
		disp:      rmi.NewDispatcher(),
		start:     time.Now(),
		names:     map[net.HostID]string{},
		users:     map[net.HostID]string{},
		relayed:   map[net.HostID]bool{},
		relayWhy:  map[net.HostID]error{},
		connected: true,
		chatLimit: chat.NewLimiter[net.HostID](chat.LimiterConfig{}),
		ownPace:   chat.NewLimiter[net.HostID](chat.LimiterConfig{Burst: ownBurst}),
	}
	s.names[s.me] = cfg.Name
	s.reqs = rmi.NewRequests(client, rmi.RequestConfig{})
	s.lob = lobby.NewLobbyProxy(s.reqs)
	s.disp.SetRequests(s.reqs)
	err = s.disp.Attach(&proto.ArenaP2PStub{
		Player_Hello:  s.onHello,
		Player_Input:  s.onInput,
		Host_Snapshot: s.onSnapshot,
		Host_Bullets:  s.onBullets,
		Host_Events:   s.onEvents,
		Player_Chat:   s.onChat,
	})
	if err == nil {
		err = s.disp.Attach(&lobby.LobbyReplyStub{ChatLine: s.onLobbyChat})
	}
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("netplay: %w", err)
	}
	// The name the lobby chat shows with this player's lines.
	if err := s.lob.SetName(net.ServerID, rmi.Reliable, cfg.Name); err != nil {
		s.log.Debug("lobby name not sent", "error", err)
	}
	s.log.Debug("connected", "server", addr)
	return s, nil
}

// CleanName makes a name (typed here, or from another player: untrusted)
// fit to show: engine/chat's rules (no control or bidirectional-override
// characters, no piles of combining marks), cut to MaxName characters;
// nothing left becomes "Player".
func CleanName(name string) string {
	name = chat.CleanName(name)
	if r := []rune(name); len(r) > MaxName {
		name = strings.TrimSpace(string(r[:MaxName]))
	}
	if name == "" {
		return "Player"
	}
	return name
}

// Close leaves gracefully: the server removes the player from its match
// (naming a new host if it was the host) and the connection closes.
func (s *Session) Close() error {
	s.connected = false
	return s.client.Close()
}

// ID returns the player's HostID.
func (s *Session) ID() net.HostID { return s.me }

// Name returns the player's name.
func (s *Session) Name() string { return s.cfg.Name }

// Client returns the engine client (for statistics).
func (s *Session) Client() *sync.Client { return s.client }

// Impair returns the socket wrapper that adds simulated loss and latency to
// what this session sends.
func (s *Session) Impair() *impair.Conn { return s.imp }

// ServerKey returns the key the match server proved at connect (show its
// Fingerprint to a player who trusted it on first use).
func (s *Session) ServerKey() net.ServerKey {
	k, _ := s.client.Host().ServerKey()
	return k
}

// Connected reports whether the session still has its server; Err says
// why not.
func (s *Session) Connected() bool { return s.connected }

// Err returns why the connection ended, if it did.
func (s *Session) Err() error { return s.connErr }

// Counters returns what the session counted.
func (s *Session) Counters() Counters { return s.counts }

func (s *Session) notice(kind NoticeKind, format string, args ...any) {
	if len(s.notices) >= 64 {
		copy(s.notices, s.notices[1:])
		s.notices = s.notices[:63]
	}
	s.notices = append(s.notices, Notice{Text: fmt.Sprintf(format, args...), Kind: kind})
}

// Notices returns and forgets the notices since the last call.
func (s *Session) Notices() []Notice {
	n := s.notices
	s.notices = nil
	return n
}

// Effects returns and forgets what happened in the match since the last
// call (hits, kills, spawns, health packs, rounds), each when the player
// can see it: at once on the host, at the interpolated time elsewhere.
func (s *Session) Effects() []sim.Event {
	e := s.effects
	s.effects = s.effects[len(s.effects):]
	if cap(s.effects) > 256 {
		s.effects = nil
	}
	return e
}

func (s *Session) addEffects(evs ...sim.Event) {
	if len(s.effects) > 512 {
		return // nobody is draining them
	}
	s.effects = append(s.effects, evs...)
}

// PlayerName returns a member's name.
func (s *Session) PlayerName(id net.HostID) string {
	if n, ok := s.names[id]; ok {
		return n
	}
	return fmt.Sprintf("Player %d", id)
}

// Tick runs one simulation tick with the player's input: it takes the
// engine's events, then (host) steps the match and sends snapshots, or
// (member) predicts and sends the input to the host. Outside a match it
// only takes events. in.Seq is set by the session.
func (s *Session) Tick(in sim.Input) {
	s.client.FrameMove(s.handle)
	if !s.connected {
		return
	}
	now := time.Now()
	s.reqs.Tick(now) // the lobby requests' timeouts
	if now.Sub(s.polled) >= 500*time.Millisecond {
		s.polled = now
		s.pollLinks()
	}
	if s.match == net.NoHost {
		return
	}
	s.seq++
	in.Seq = s.seq
	if s.world != nil {
		s.hostTick(in)
	} else {
		s.memberTick(in)
	}
}

// handle processes one engine event.
func (s *Session) handle(e sync.Event) {
	switch e.Kind {
	case sync.EventMessage:
		if e.Group != net.NoHost && e.Group != s.match {
			return // another group's traffic
		}
		if _, err := s.disp.DispatchSyncEvent(e); err != nil {
			s.counts.BadMessages++
			s.log.Debug("bad call", "from", e.Peer, "error", err)
		}
	case sync.EventMemberJoin:
		if e.User != "" {
			// Kept whatever the group: the joins of a match's members
			// may come before the lobby's answer names the match.
			s.users[e.Member] = e.User
		}
		if e.Group == s.match {
			s.memberJoined(e.Member)
		}
	case sync.EventMemberLeave:
		if e.Group == s.match {
			s.memberLeft(e.Member)
		}
	case sync.EventHostChange:
		if e.Group == s.match {
			s.hostChanged(e.Host)
		}
	case sync.EventRelayStateChange:
		s.relayChanged(e.Peer, e.Relayed, e.Err)
	case sync.EventAway, sync.EventBack, sync.EventMemberAway, sync.EventMemberBack:
		s.awayOrBack(e)
	case sync.EventNATType:
		// The network panel reads it (Session.NAT) when it draws.
		s.log.Debug("NAT type", "nat", e.NAT.String(), "error", e.Err)
	case sync.EventConnected:
		// The session starts connected (Dial waits for the server).
	case sync.EventDisconnected:
		_, _ = s.disp.DispatchSyncEvent(e) // ends the lobby requests waiting for it
		if e.Peer == net.ServerID {
			s.connErr = e.Err
			s.connected = false
			s.leftMatch()
			s.notice(Warn, "Disconnected from the server: %v", e.Err)
		}
	}
}

// serverMs is the estimated server clock in ms (the session's own clock
// until the first sample is back).
func (s *Session) serverMs() uint32 {
	t, err := s.client.ServerTime()
	if err != nil {
		t = time.Since(s.start)
	}
	return uint32(t / time.Millisecond)
}

// serverNow is the estimated server clock in ms with a fraction.
func (s *Session) serverNow() float64 {
	t, err := s.client.ServerTime()
	if err != nil {
		t = time.Since(s.start)
	}
	return float64(t) / float64(time.Millisecond)
}

func (s *Session) playerMembers() []net.HostID {
	var ids []net.HostID
	for _, m := range s.members {
		if m != net.ServerID {
			ids = append(ids, m)
		}
	}
	return ids
}

// others reports whether any other player is in the match.
func (s *Session) others() bool {
	for _, m := range s.members {
		if m != net.ServerID && m != s.me {
			return true
		}
	}
	return false
}
