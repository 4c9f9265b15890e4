// Package matchserver is the match server an operator runs (server/ is its
// thin main): a stdsync.Server whose clients use the lobby (server/lobby) to
// list, create and join matches, each match a P2P group with the server as
// member; an admin HTTP endpoint with /healthz and Prometheus /metrics; and
// a graceful shutdown.
//
// # Lobby limits
//
// Every lobby call comes from an untrusted client, so the lobby bounds what
// one client can make it do (LobbyConfig; the server's -lobby-* flags):
//
//   - Calls: a token bucket per client, CallRate a second after a burst of
//     CallBurst (5 and 20 by default). A request over it fails with
//     rmi.StatusRateLimited (Chat and SetName, which have no answer, are
//     dropped) and is counted in skein_lobby_rate_limited_total{call}; that
//     answer is a few bytes, the size of the call, so a flood gains nothing,
//     and it is not kept in the reply cache: the request asked again after
//     the limit is served.
//   - Repeats: the rmi runtime answers a retried request (same sequence
//     number) from its reply cache (ReplyCacheBytes per client, each
//     response sent again at most MaxReplays times) without running it
//     twice; skein_lobby_duplicate_requests_total counts them. A request
//     older than the reply window (rmi.ReplyWindow requests ago), or
//     repeated after its answer left the cache, is answered rmi.StatusStale
//     and not run: skein_lobby_stale_requests_total counts those apart.
//   - The match list: ListMatches answers one page, in match ID order, of at
//     most lobby.MaxPageMatches matches and lobby.MaxPageBytes (16 KiB)
//     encoded, with the cursor of the next page; the cost of a page is its
//     length, whatever the number of matches. Options are at most
//     lobby.MaxOptions bytes (4 KiB; more is lobby.ResultTooLarge).
//   - Names: cleaned with engine/chat's name rules (control, bidirectional
//     and invisible characters removed, cut to chat.MaxNameRunes
//     characters); at most MaxNameLen bytes before; empty after is
//     lobby.ResultBadRequest.
//   - Joins: the seats of each match are counted when a join is decided,
//     under the registry's lock, so simultaneous joins and quick joins into
//     free seats all succeed and exactly those over capacity are told
//     lobby.ResultFull, at once, without queueing on the match.
//   - Lobby chat: each client is put in a room of at most ChatRoom clients
//     (64 by default) when it connects; a line reaches its room only, after
//     engine/chat's Clean and per-sender Limiter (5 lines, then 1 a
//     second), so the work of a burst grows linearly with the clients.
//     Dropped lines are counted in skein_lobby_chat_dropped_total{reason},
//     copies sent in skein_lobby_chat_copies_total.
package matchserver

import (
	"context"
	"errors"
	"fmt"
	stdnet "net"
	"net/http"
	"net/netip"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/lobby"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Listen is the UDP address clients connect to. Empty means ":7777".
	Listen string
	// Conn, if set, is the packet conn the server serves instead of a UDP
	// socket on Listen (an embedder's socket, or a test's engine/net/vnet
	// conn); the server owns it (New closes it if it fails). There is then
	// no TCP fallback, and NATProbe must be empty.
	Conn net.PacketConn
	// NATProbe lists up to three alternate UDP addresses for the clients'
	// NAT-type checks: a second port, and with a second IP address, that
	// address on both ports (sync.ServerConfig.NATProbe). Empty: clients'
	// NAT types stay unknown.
	NATProbe []string
	// Admin is the HTTP address of /healthz and /metrics. Empty: no admin
	// endpoint.
	Admin string
	// MaxClients bounds connected clients. Zero means net.DefaultMaxLinks
	// (4096).
	MaxClients int
	// ShutdownTimeout bounds the graceful shutdown. Zero means 10 s.
	ShutdownTimeout time.Duration
	// Logger is the root logger; the server logs under "server", "lobby",
	// "admin", "sync", "net" and "tcp". Nil: no logs.
	Logger hclog.Logger
	// Net tunes the transport (timeouts, queues). Net.Identity is the
	// server's key (nil: a fresh one for this run; the command keeps it in
	// a file). Accept, MaxLinks and
	// RelayPolicy are set by the server. With Net.ResumeGrace on, a zero
	// Net.Timeout means DefaultAwayAfter rather than the engine's 10 s.
	Net net.Config
	// TCP tunes the TCP fallback on the same port (connections per source,
	// deadlines; see net.TCPConfig); MaxConns is set to MaxClients.
	TCP net.TCPConfig
	// Lobby bounds each client's lobby calls and the lobby chat's rooms.
	Lobby LobbyConfig
	// ShareUsers makes match members learn each other's user IDs (the
	// member join events; sync.ServerConfig.ShareUsers). Who a user is
	// comes from Net.Authenticate: OpenAuth, a token Verifier's
	// Authenticate, or an embedder's hook (see the auth modes in auth.go).
	ShareUsers bool
}

// DefaultAwayAfter is the server's link timeout (net.Config.Timeout) when
// resume is on (net.Config.ResumeGrace) and Config.Net.Timeout is zero: a
// client silent this long is suspended, and the other members of its
// match get sync.EventMemberAway (the arena's "away" toast) at once. With
// resume on, a timeout ends nothing: the client keeps its ID, its match
// and its reliable streams, and the link resumes within a round trip of
// its next datagram; so the timeout only decides how soon the others
// hear, and the engine's 10 s made them wait that long. It fires only
// after four of the client's pings in a row (one a second by default,
// besides its game traffic) are lost, and a false alarm costs a resume,
// not the session. Without resume a timeout removes the client, and the
// engine's 10 s stays the default. The arena uses the same value for its
// sessions and its embedded server (demo/arena/netplay.AwayAfter).
const DefaultAwayAfter = 4 * time.Second

// Limits of lobby requests.
const (
	MinPlayers = 2
	MaxPlayers = 16
	// MaxNameLen bounds a match name's bytes before cleaning (room for
	// chat.MaxNameRunes characters of any script); the name is then cut to
	// chat.MaxNameRunes characters.
	MaxNameLen   = 4 * chat.MaxNameRunes
	quickMatchSz = 8
)

// Server is a running match server.
type Server struct {
	cfg     Config
	log     hclog.Logger
	lobLog  hclog.Logger
	sync    *sync.Server
	disp    *rmi.Dispatcher
	reply   *lobby.LobbyReplyProxy
	reg     *registry
	metrics *metrics
	admin   *http.Server
	adminLn stdnet.Listener
	started time.Time
	closing atomic.Bool
	matchWG stdsync.WaitGroup

	// reqs answers the lobby's requests and keeps each client's recent
	// answers for retries (the rmi reply cache).
	reqs *rmi.Requests

	chatLimit *chat.Limiter[net.HostID]
	lobby     *handler // the lobby calls' handler (event goroutine only)
}

// New binds the UDP socket and the admin listener; Run serves.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = ":7777"
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = net.DefaultMaxLinks
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.Named("server"),
		lobLog:  cfg.Logger.Named("lobby"),
		disp:    rmi.NewDispatcher(),
		reg:     newRegistry(),
		started: time.Now(),
		// A burst of 5 lines, then 1 a second, per sender; every client
		// may be one.
		chatLimit: chat.NewLimiter[net.HostID](chat.LimiterConfig{MaxSenders: cfg.MaxClients}),
	}
	ncfg := cfg.Net
	ncfg.MaxLinks = cfg.MaxClients
	if ncfg.ResumeGrace > 0 && ncfg.Timeout <= 0 {
		ncfg.Timeout = DefaultAwayAfter
	}
	tcfg := cfg.TCP
	tcfg.MaxConns = cfg.MaxClients
	scfg := sync.ServerConfig{Net: ncfg, TCP: tcfg, Logger: cfg.Logger, ShareUsers: cfg.ShareUsers, NATProbe: cfg.NATProbe}
	var ss *sync.Server
	var err error
	if cfg.Conn != nil {
		if len(cfg.NATProbe) > 0 {
			cfg.Conn.Close()
			return nil, errors.New("matchserver: NATProbe needs Listen, not Conn")
		}
		if ss, err = sync.NewServer(cfg.Conn, scfg); err != nil {
			cfg.Conn.Close() // the server owns it, as on the errors below
		}
	} else {
		ss, err = sync.ListenServer(cfg.Listen, scfg)
	}
	if err != nil {
		return nil, err
	}
	s.sync = ss
	s.reply = lobby.NewLobbyReplyProxy(ss)
	s.reqs = rmi.NewRequests(ss, rmi.RequestConfig{ReplyCacheBytes: lobbyReplyCache})
	s.disp.SetRequests(s.reqs)
	s.lobby = newHandler(s, cfg.Lobby, cfg.MaxClients)
	if err := s.disp.Attach(lobby.NewLobbyStub(s.lobby)); err != nil {
		ss.Close()
		return nil, err
	}
	s.metrics = newMetrics(s)
	if cfg.Admin != "" {
		ln, err := stdnet.Listen("tcp", cfg.Admin)
		if err != nil {
			ss.Close()
			return nil, fmt.Errorf("admin listen %q: %w", cfg.Admin, err)
		}
		s.adminLn = ln
		s.admin = &http.Server{Handler: s.adminMux(), ReadHeaderTimeout: 5 * time.Second}
	}
	return s, nil
}

// UDPAddr returns the address clients connect to.
func (s *Server) UDPAddr() netip.AddrPort { return s.sync.Host().LocalAddr() }

// AdminAddr returns the admin endpoint's address ("" when off).
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Sync returns the underlying group server.
func (s *Server) Sync() *sync.Server { return s.sync }

// Run serves until ctx ends, then shuts down gracefully: clients are told
// the server is shutting down and disconnected within ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("listening", "udp", s.UDPAddr().String(), "admin", s.AdminAddr(), "nat_probe", s.cfg.NATProbe)
	if id := s.sync.Host().Identity(); id != nil {
		// The public key only: clients pin it (the secret is never logged).
		cur := id.Current()
		args := []any{"key", cur.String(), "fingerprint", cur.Fingerprint()}
		if c, ok := id.Cert(); ok {
			args = append(args, "certificate_expires", c.Expires.UTC().Format(time.RFC3339))
		}
		if next, ok := id.Next(); ok {
			args = append(args, "next_key", next.String(), "next_fingerprint", next.Fingerprint())
		}
		s.log.Info("server key", args...)
	}
	adminDone := make(chan struct{})
	if s.admin != nil {
		go func() {
			defer close(adminDone)
			if err := s.admin.Serve(s.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("admin endpoint", "error", err)
			}
		}()
	} else {
		close(adminDone)
	}
	stopSampler := s.metrics.startSampler()
	for {
		e, err := s.sync.Next(ctx)
		if err != nil {
			break
		}
		s.handle(e)
	}
	stopSampler()

	s.closing.Store(true)
	s.log.Info("shutting down", "clients", s.sync.Host().Stats().Links, "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.sync.Shutdown(sctx)
	s.stopMatches()
	if s.admin != nil {
		if aerr := s.admin.Shutdown(sctx); aerr != nil {
			s.log.Warn("admin server shutdown", "error", aerr)
		}
	}
	<-adminDone
	s.log.Info("stopped")
	return err
}

// handle processes one event on the event goroutine.
func (s *Server) handle(e sync.Event) {
	switch e.Kind {
	case sync.EventConnected:
		s.lobby.connected(e.Peer)
	case sync.EventDisconnected:
		_, _ = s.disp.DispatchSyncEvent(e) // ends its requests and reply cache
		s.chatLimit.Forget(e.Peer)
		s.lobby.disconnected(e.Peer)
		if id, ok := s.reg.release(e.Peer); ok {
			if m := s.reg.get(id); m != nil {
				s.post(m, func() { s.dropPlayer(m, e.Peer) })
			}
		}
	case sync.EventBack:
		// A new process that took the session over (net.ErrSessionRestarted)
		// numbers its requests from 1 again: the dispatcher forgets the old
		// one's reply cache.
		_, _ = s.disp.DispatchSyncEvent(e)
	case sync.EventMessage:
		if e.Group != net.NoHost {
			return // game traffic to a match the server is in: not the lobby's
		}
		if _, err := s.disp.DispatchSyncEvent(e); err != nil {
			s.metrics.lobbyErrors.Inc()
			s.lobLog.Debug("bad lobby call", "client", e.Peer, "error", err)
		}
	case sync.EventMemberJoin, sync.EventMemberLeave, sync.EventHostChange, sync.EventRelayStateChange, sync.EventNATType,
		sync.EventMemberAway, sync.EventMemberBack, sync.EventAway:
		// The server's view of its matches' groups: the lobby keeps its
		// own member lists (match.members), changed on its goroutines.
		// A suspended client (EventAway) keeps its lobby place and its
		// match until it resumes or its grace window ends
		// (EventDisconnected); the metrics count both.
	}
}
