package net

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/internal/queue"
)

// Config configures a Host. The zero value is a client with the defaults
// documented on each field; set Accept for a server.
type Config struct {
	// Logger receives the host's logs under the name "net". Nil: no logs.
	Logger hclog.Logger
	// Accept makes the host answer handshakes: it is a server and hands out
	// HostIDs. A client leaves it false and calls Dial.
	Accept bool
	// MaxLinks bounds the links a server keeps (clients, confirmed or not).
	// Zero means DefaultMaxLinks (4096).
	MaxLinks int
	// PingInterval is how often a keepalive ping (which also measures RTT
	// and loss) goes to each peer. Zero means 1 s.
	PingInterval time.Duration
	// Timeout is how long a link may stay silent before it is declared dead
	// (ErrTimeout). Zero means 10 s.
	Timeout time.Duration
	// HandshakeTimeout bounds Dial when its context has no deadline. Zero
	// means 5 s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds how long a graceful close waits for pending
	// reliable data to be acknowledged. Zero means 2 s.
	CloseTimeout time.Duration
	// EventQueue bounds the messages waiting for the application. When it
	// is full, reliable messages wait in their stream (the sender slows
	// down) and unreliable ones are dropped (DropQueueFull). Zero means
	// DefaultEventQueue (8192).
	EventQueue int
	// EventQueueBytes bounds the bytes of the messages (their Data)
	// waiting for the application, whatever their number: a message that
	// would take them past it waits in its stream if reliable (the sender
	// slows down; what waits there counts against HostReceiveBudget), and
	// is dropped if unreliable (DropQueueBytes). Zero means
	// DefaultEventQueueBytes (16 MiB); less than MinEventQueueBytes (two
	// MaxReliable messages) is raised to it.
	EventQueueBytes int
	// SendQueue bounds the reliable segments waiting or in flight on one
	// link; Send returns ErrSendQueueFull beyond it. Zero means
	// DefaultSendQueue (8192).
	SendQueue int
	// HandshakeRate bounds the hellos a server takes per second on each
	// conn it serves (its socket, and each conn given to AddConn: a flood
	// on one does not starve the others); over it a hello gets a "busy"
	// reject and is counted (DropRateLimited). Zero means 2000.
	HandshakeRate int
	// CookieLifetime is how long a handshake cookie stays valid. Zero means
	// 30 s.
	CookieLifetime time.Duration
	// RelayPolicy decides, on a server, whether client from may have
	// datagrams relayed to host to (engine/sync allows it between members of
	// a common group). It is called on the reading goroutine for every
	// relayed datagram: keep it fast and non-blocking. Nil relays nothing.
	RelayPolicy func(from, to HostID) bool
	// RelayRate bounds the datagrams per second a server relays for one
	// client (a burst of one second's worth); the rest are dropped and
	// counted (DropRateLimited). Peer traffic is sealed end to end, so the
	// server can only limit its volume. Zero means 4000.
	RelayRate int
	// GroupMembers lists, on a server, the members of group (appended to
	// dst; the server itself is ServerID), or reports false when there is
	// no such group. It authorizes the fan-out of unreliable group
	// messages: only a member may send one, and only to the other members
	// (engine/sync provides it). It is called on the reading goroutine for
	// every fan-out message: keep it fast and non-blocking. Nil refuses
	// every fan-out (DropRelayDenied).
	GroupMembers func(group HostID, dst []HostID) ([]HostID, bool)
	// FanoutAbove makes unreliable SendGroup calls to more than this many
	// peers go through the server's fan-out (one datagram up, a copy sent
	// to each member by the server), even to peers reached directly. Zero
	// means no such threshold: only relayed peers and sends over
	// UplinkBudget use the fan-out.
	FanoutAbove int
	// DisableP2P keeps every peer on the relay: Punch only reports
	// ErrForcedRelay.
	DisableP2P bool
	// Punch tunes hole punching.
	Punch PunchConfig
	// Identity is a server's long-term key (and the next one, for
	// rotation): every handshake proves the server holds it
	// (docs/PROTOCOL.md, "Handshake"). Nil: the server draws a fresh key at
	// start, which lives as long as the host, so its clients can only trust
	// it on first use (an embedded or LAN server; Host.Identity gives its
	// key to show or to put in a beacon). The match server keeps its key in
	// a file (LoadIdentity). Ignored by a client.
	Identity *Identity
	// ServerKeys pins the server keys a client trusts: Dial succeeds only if
	// the server proves it holds one of them (or one signed by ServerCAs,
	// if set), and otherwise returns a
	// *ServerKeyError (ErrServerKeyMismatch) naming the key it saw, having
	// sent that server nothing but its hello. The hello names the first
	// key, so a server rotating its key answers with the one pinned. Empty:
	// any key is accepted (trust on first use) unless VerifyServerKey
	// refuses it; Host.ServerKey reports the key the server proved.
	ServerKeys []ServerKey
	// ServerCAs are operator keys a client trusts (Ed25519; see
	// SignServerKey): Dial also accepts a server key one of them signed
	// (a certificate the server sends in its sealed welcome, not expired),
	// so one trusted key covers a fleet. Setting it makes the hello ask
	// for the certificate (a 256-byte hello instead of 128). A server key
	// pinned in ServerKeys needs no certificate.
	ServerCAs []ed25519.PublicKey
	// VerifyServerKey, if set, is called by Dial with the key the server
	// proved (after the ServerKeys check passed) before the client sends
	// anything: an error refuses the server (Dial returns a
	// *ServerKeyError wrapping it). This is the hook for a remembered
	// trust-on-first-use key, an operator-signed key or the key a connect
	// token names. It runs on the host's reading goroutine: keep it fast.
	VerifyServerKey func(ServerKey) error
	// CheckServerKey, if set, is called by a Dial that carries credentials
	// with the key a cookie reply names, before the credentials are sealed
	// to it: an error refuses the server (Dial returns a *ServerKeyError
	// with BeforeCredentials set) and the credentials never leave. That key
	// is not proven yet (the cookie reply is cleartext), so CheckServerKey
	// must only compare, never record: VerifyServerKey is called once the
	// welcome proved the key, and that is where a trust-on-first-use store
	// remembers it (engine/trust's Check has Precheck and Verify for the
	// two). Nil: only ServerKeys and ServerCAs are checked at that point.
	CheckServerKey func(ServerKey) error
	// Cipher is the AEAD this host asks for. CipherAuto (zero) asks for
	// AES-256-GCM when the CPU has AES instructions, ChaCha20-Poly1305
	// otherwise; a link uses AES-256-GCM only when both ends ask for it.
	Cipher Cipher
	// Admission limits of a server (docs/PROTOCOL.md, "Admission"). A
	// source is an IPv4 address or an IPv6 /64; a TCP fallback client's is
	// the address of its TCP peer. Tests and load tests that open many
	// clients from one loopback address raise or disable the per-source
	// limits (a negative value means no limit).
	//
	// SourceHandshakeRate bounds the hellos per second from one source,
	// after a burst of four seconds' worth (a roomful of players behind one
	// NAT connecting at once; a handshake is two hellos); over it a hello
	// gets a "busy" reject. Zero means 100.
	SourceHandshakeRate int
	// SourceLinks bounds the links from one source, confirmed or not; a
	// client over it is refused as "server full". Zero means a quarter of
	// MaxLinks, at least 1 and at most 256 (so no one source fills a small
	// server).
	SourceLinks int
	// SourcePending bounds the unconfirmed links from one source; a client
	// over it gets "busy". Zero means 32.
	SourcePending int
	// MaxPending bounds the unconfirmed links a server keeps (links whose
	// client has not yet sent an authenticated datagram), so that they
	// cannot crowd out confirmed ones; a client over it gets "busy". Zero
	// means MaxLinks/8, at least 64 and at most MaxLinks.
	MaxPending int
	// PendingTimeout is how long a server keeps a link its client has not
	// confirmed: a legitimate client confirms one round trip after the
	// welcome. Expired links are removed without an event and counted
	// (AdmissionStats.Expired). Zero means 3 s.
	PendingTimeout time.Duration

	// UplinkBudget, in bytes per second (IP and UDP headers included:
	// 28 bytes a datagram to an IPv4 peer, 48 to an IPv6 one),
	// caps what unreliable SendGroup and SendMulti calls send directly to
	// peers: a group send that would exceed it goes through the server's
	// fan-out instead, even to peers reachable directly (SendGroup: one
	// copy up, sent on by the server to each member; SendMulti: the
	// datagrams for every member packed into one datagram up). Reliable
	// group sends always follow each peer's own stream and path (their
	// flushes and retransmissions happen later, per peer). Zero means no
	// cap.
	UplinkBudget int
	// LinkReceiveBudget bounds, in bytes, the out-of-order reliable data
	// one link may hold while it waits for a gap to fill. Each held KCP
	// segment is charged what it pins (1600 bytes, whatever its length).
	// A segment past the budget is refused (DropOverBudget); the sender
	// retransmits it after a timeout. Zero means 400 KiB: the receive
	// window of 256 segments, so a sender that keeps to the window (every
	// KCP sender) is never refused. A smaller budget holds less per link,
	// but a sender with many segments in flight on a lossy path then has
	// segments refused and retransmitted whole windows at a time:
	// BENCHMARKS.md ("Hardening: memory budgets") measures the cost.
	LinkReceiveBudget int
	// ResumeGrace, when positive, suspends a link that times out instead
	// of removing it: it keeps its HostID and both reliable streams for
	// this long, and resumes as soon as its peer is heard again (the
	// same keys; a new address is validated first). EventAway and
	// EventBack report it; past the window the link ends with the usual
	// EventDisconnected (ErrTimeout). A client probes its suspended links
	// every 50 ms, so a restored path resumes within one trip and that.
	// Both ends should use the same window (DefaultResumeGrace, 25 s, in
	// the match server). Zero: off, a link that times out is removed.
	// docs/SEMANTICS.md, "Reconnect and resume".
	ResumeGrace time.Duration
	// HostReceiveBudget bounds, in bytes, the received reliable data all
	// links hold together: out of order, and complete messages waiting
	// for room in the event queue (at most a receive window of 256
	// segments per link). Past it, the link holding the most is
	// disconnected with ErrOverBudget (and told so), then the next, until
	// the host is within it. Zero means 32 MiB.
	HostReceiveBudget int

	// Authenticate, on a server, decides who a client is before it gets
	// anything (docs/PROTOCOL.md, "Credentials"): it runs after the
	// cookie proved the client's address and before a slot, a HostID, a
	// link or an event exist, with the credentials the client gave
	// DialWith (opened from the sealed auth block; empty if none). It
	// returns the user, or an error wrapping ErrUnauthorized, ErrBanned,
	// ErrExpired, ErrAlreadyLoggedIn or ErrAuthUnavailable, which Dial
	// returns inside a *RejectError (any other error refuses as
	// ErrUnauthorized; running past AuthTimeout as ErrAuthUnavailable).
	// It runs on AuthWorkers goroutines, never on the socket's reader,
	// and should honour ctx (Shutdown cancels it). Nil: every client is
	// admitted, anonymous, as before (credentials are ignored).
	Authenticate func(ctx context.Context, req *AuthRequest) (AuthResult, error)
	// AuthInline runs Authenticate on the reading goroutine instead of the
	// workers: for a hook that is fast and never blocks, such as a
	// connect token check (engine/token: one Ed25519 verification, no
	// I/O), which then costs no goroutine hand-off. Admission's handshake
	// rates bound how often it runs.
	AuthInline bool
	// AuthWorkers is the number of goroutines running Authenticate. Zero
	// means 4.
	AuthWorkers int
	// AuthQueue bounds the handshakes waiting for a worker; past it (and
	// the ones running), a client gets "busy" (ErrServerBusy) and
	// AuthStats.QueueFull counts it. Zero means 256.
	AuthQueue int
	// AuthPerSource bounds the handshakes of one source (an IPv4 address
	// or an IPv6 /64) that the hook is deciding or that wait for it, so a
	// flood from a few addresses against a slow hook cannot take every
	// place in the queue; past it that source gets "busy" and
	// AuthStats.SourceBusy counts it. Zero means a sixteenth of
	// AuthWorkers+AuthQueue, at least 4.
	AuthPerSource int
	// AuthTimeout bounds one Authenticate call (its context's deadline).
	// Zero means 3 s.
	AuthTimeout time.Duration
	// DuplicateLogin says what a login of a user ID that already has a
	// session does: SessionReplace (the default) kicks the old session
	// with ErrSessionReplaced, SessionRefuse refuses the new one with
	// ErrAlreadyLoggedIn, SessionMany allows both. A login of a user
	// whose session is suspended (ResumeGrace) takes that session over
	// under SessionReplace and SessionRefuse; under SessionMany only when
	// it comes from the suspended session's own address (resume.go).
	DuplicateLogin SessionPolicy
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&c.MaxLinks, DefaultMaxLinks)
	def(&c.PingInterval, time.Second)
	def(&c.Timeout, 10*time.Second)
	def(&c.HandshakeTimeout, 5*time.Second)
	def(&c.CloseTimeout, 2*time.Second)
	defInt(&c.EventQueue, DefaultEventQueue)
	defInt(&c.EventQueueBytes, DefaultEventQueueBytes)
	c.EventQueueBytes = max(c.EventQueueBytes, MinEventQueueBytes)
	defInt(&c.SendQueue, DefaultSendQueue)
	defInt(&c.HandshakeRate, 2000)
	defInt(&c.RelayRate, 4000)
	def(&c.CookieLifetime, 30*time.Second)
	defInt(&c.LinkReceiveBudget, defaultLinkReceiveBudget)
	defInt(&c.HostReceiveBudget, defaultHostReceiveBudget)
	limit := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	limit(&c.SourceHandshakeRate, 100)
	limit(&c.SourceLinks, min(max(c.MaxLinks/4, 1), 256))
	limit(&c.SourcePending, 32)
	limit(&c.MaxPending, min(max(c.MaxLinks/8, 64), c.MaxLinks))
	def(&c.PendingTimeout, 3*time.Second)
	defInt(&c.AuthWorkers, 4)
	defInt(&c.AuthQueue, 256)
	defInt(&c.AuthPerSource, max(4, (c.AuthWorkers+c.AuthQueue)/16))
	def(&c.AuthTimeout, 3*time.Second)
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Host owns one datagram socket and every link over it: a server's links to
// its clients, or a client's link to the server and (later) to its peers.
// One goroutine reads the socket (or a waiting Next: see Next) and one
// drives timers (KCP updates, keepalives, timeouts) for all links; there is
// no goroutine per link.
// Events reach the application through FrameMove, Poll or Next.
type Host struct {
	cfg      Config
	punchCfg PunchConfig
	log      hclog.Logger
	conn     PacketConn
	batchOut BatchWriter // conn, when it writes batches (and can be compared)
	id       atomic.Uint32
	epoch    time.Time
	cookies  *cookieJar
	events   *queue.Queue[Event]
	// byteStalls counts reliable messages that waited for room in
	// Config.EventQueueBytes (EventQueueStats.ByteStalls).
	byteStalls atomic.Uint64
	bt         baton // the right to read conn (baton.go)
	sched      scheduler
	traffic    trafficCounters
	relayed    trafficCounters
	drops      dropCounters
	srvAddr    serverAddress
	hsOK       atomic.Uint64
	fanouts    atomic.Uint64
	fanned     trafficCounters
	held       atomic.Int64 // bytes the links' KCP cores hold (HostReceiveBudget)
	resume     resumeState  // suspended links (resume.go)
	shedding   sync.Mutex   // one reader at a time sheds over HostReceiveBudget
	// unrelSeq numbers each unreliable channel's messages across every
	// link, so that a message fanned out by the server and one sent
	// directly can be ordered by the same receiver.
	unrelSeq [256]atomic.Uint32

	uplinkMu sync.Mutex
	uplink   tokenBucket // guarded by uplinkMu
	hsFail   atomic.Uint64
	ident    atomic.Pointer[Identity]  // a server's long-term key (identity.go)
	srvKey   atomic.Pointer[ServerKey] // a client's server, as proven at Dial

	mu     sync.RWMutex
	byID   map[HostID]*link
	byAddr map[netip.AddrPort]*link // server: clients by address, for hellos
	extra  []PacketConn             // more conns served (AddConn)
	// probeConns are a server's alternate endpoints for NAT probes
	// (AddProbeConn), read without mu on every datagram.
	probeConns atomic.Pointer[[]PacketConn]
	// natMu guards a client's running DetectNAT (natprobe.go).
	natMu   sync.Mutex
	natBusy bool
	natWait *natWaiter
	// Birthday punching (birthday.go): the extra sockets open (guarded by
	// bdayMu, a leaf lock), whether a hard-side attempt runs, and the
	// counters.
	bdayMu       sync.Mutex
	bdayConns    map[PacketConn]struct{}
	bdayHard     atomic.Bool
	bdayAttempts atomic.Uint64
	bdayWon      atomic.Uint64
	bdayProbes   atomic.Uint64
	nextID       HostID
	reserved     map[HostID]struct{}
	dials        map[netip.AddrPort]*pendingDial
	closed       bool
	// adm is a server's admission state (admit.go), admitChecks its
	// checks on proven addresses (stage 4). Guarded by mu.
	adm         admission
	admitChecks []admitCheck
	// users maps a user ID to its session's link (or reserved slot), for
	// Config.DuplicateLogin. Guarded by mu.
	users map[string]HostID
	auth  authState // the Authenticate pipeline (auth.go)

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewHost starts a host on conn, which it owns from now on (Close closes it).
func NewHost(conn PacketConn, cfg Config) (*Host, error) {
	if conn == nil {
		return nil, errors.New("skein/net: nil PacketConn")
	}
	cfg = cfg.withDefaults()
	now := time.Now()
	h := &Host{
		cfg:      cfg,
		punchCfg: cfg.Punch.withDefaults(),
		conn:     conn,
		epoch:    now,
		cookies:  newCookieJar(cfg.CookieLifetime),
		byID:     make(map[HostID]*link),
		byAddr:   make(map[netip.AddrPort]*link),
		nextID:   FirstClientID,
		reserved: make(map[HostID]struct{}),
		dials:    make(map[netip.AddrPort]*pendingDial),
		users:    make(map[string]HostID),
		done:     make(chan struct{}),
	}
	if bw, ok := conn.(BatchWriter); ok && reflect.TypeOf(conn).Comparable() {
		// Comparable: forwardRelayed groups datagrams by comparing a
		// path's conn with this one.
		h.batchOut = bw
	}
	if cfg.UplinkBudget > 0 {
		// A tenth of a second of burst.
		b := float64(cfg.UplinkBudget)
		h.uplink = tokenBucket{rate: b, tokens: b / 10, burst: b / 10, last: now}
	}
	if cfg.Accept {
		h.id.Store(uint32(ServerID))
		ident := cfg.Identity
		if ident == nil {
			var err error
			if ident, err = NewIdentity(); err != nil {
				return nil, err
			}
		}
		h.ident.Store(ident)
	}
	h.initAdmission(now)
	h.log = cfg.Logger.Named("net").With("local", conn.LocalAddr().String())
	h.events = queue.New(cfg.EventQueue, isMessage, h.sched.wakeResume)
	h.events.SetByteLimit(cfg.EventQueueBytes, eventBytes)
	if h.bt.init(conn); h.bt.conn != nil {
		h.events.SetPushHook(h.bt.kick)
	}
	h.sched.init()
	h.initAuth()
	h.wg.Add(2)
	go h.readLoop(conn)
	go h.timerLoop()
	return h, nil
}

// Listen opens a UDP socket on addr and starts a host on it. For a server,
// set cfg.Accept; a client may listen on ":0" (or a fixed port) and Dial.
func Listen(addr string, cfg Config) (*Host, error) {
	c, err := ListenUDP(addr)
	if err != nil {
		return nil, err
	}
	h, err := NewHost(c, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	return h, nil
}

// AddConn has the host also serve the datagrams of pc (a server's TCP
// fallback, see NewTCPMux), with a reader goroutine of its own. Links made
// from pc's datagrams answer through pc. The host closes pc when it closes.
func (h *Host) AddConn(pc PacketConn) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrHostClosed
	}
	h.extra = append(h.extra, pc)
	h.wg.Add(1)
	h.mu.Unlock()
	go h.readLoop(pc)
	return nil
}

// ID returns this host's HostID: ServerID for a server, the ID the server
// assigned after Dial for a client, NoHost before.
func (h *Host) ID() HostID { return HostID(h.id.Load()) }

// LocalAddr returns the socket's address.
func (h *Host) LocalAddr() netip.AddrPort { return h.conn.LocalAddr() }

// Conn returns the host's packet conn (for higher layers that share the
// socket, such as hole punching).
func (h *Host) Conn() PacketConn { return h.conn }

// Peers returns the HostIDs of the current links.
func (h *Host) Peers() []HostID {
	h.mu.RLock()
	defer h.mu.RUnlock()
	ids := make([]HostID, 0, len(h.byID))
	for id := range h.byID {
		ids = append(ids, id)
	}
	return ids
}

func (h *Host) link(id HostID) *link {
	h.mu.RLock()
	l := h.byID[id]
	h.mu.RUnlock()
	return l
}

// LinkStats returns a snapshot of the link to id.
func (h *Host) LinkStats(id HostID) (LinkStats, bool) {
	l := h.link(id)
	if l == nil {
		return LinkStats{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statsLocked(), true
}

// Stats returns a snapshot of the host's counters.
func (h *Host) Stats() HostStats {
	h.mu.RLock()
	n := len(h.byID)
	h.mu.RUnlock()
	return HostStats{
		Links:             n,
		Traffic:           h.traffic.snapshot(),
		Relayed:           h.relayed.snapshot(),
		Drops:             h.drops.snapshot(),
		Fanouts:           h.fanouts.Load(),
		Fanned:            h.fanned.snapshot(),
		Handshakes:        h.hsOK.Load(),
		HandshakeFailures: h.hsFail.Load(),
		Admission:         h.admissionStats(),
		Resume:            h.resume.stats(),
		Events:            h.eventQueueStats(),
		Baton:             h.bt.stats(),
		Auth:              h.authStats(),
	}
}

// SetPath replaces the path of the link to id. The reliable stream is not
// disturbed: segments in flight are retransmitted on the new path if the old
// one lost them. A check of a new peer address in progress (path
// validation) ends: the path set here is not replaced when it is answered.
func (h *Host) SetPath(id HostID, p Path) error {
	l := h.link(id)
	if l == nil {
		return h.noLink("set path to", id)
	}
	l.mu.Lock()
	old := l.path
	l.path = p
	l.pathCheck = nil
	l.mu.Unlock()
	h.updateAddrIndex(l, old, p)
	return nil
}

func (h *Host) updateAddrIndex(l *link, old, p Path) {
	oa, oldDirect := directAddr(old)
	na, newDirect := directAddr(p)
	h.mu.Lock()
	if oldDirect && h.byAddr[oa] == l {
		delete(h.byAddr, oa)
	}
	if newDirect {
		h.byAddr[na] = l
	}
	h.mu.Unlock()
}

// Send sends data to the peer id as d says. Reliable messages may be up to
// MaxReliable bytes; unreliable ones up to MaxUnreliable. Send copies data
// before returning and never blocks on the network.
func (h *Host) Send(id HostID, d Delivery, data []byte) error {
	return h.SendParts(id, d, nil, data)
}

// SendParts sends head followed by body as one message, without the caller
// joining them (a layer above adds its own header this way).
func (h *Host) SendParts(id HostID, d Delivery, head, body []byte) error {
	l := h.link(id)
	if l == nil {
		return h.noLink("send to", id)
	}
	out, p, err := h.prepare(l, d, head, body)
	l.writeOut(out, p)
	return err
}

// prepare runs a send up to the point of writing: the sealed datagrams to
// write on the returned path (either may be nil).
func (h *Host) prepare(l *link, d Delivery, head, body []byte) (*outBatch, Path, error) {
	n := len(head) + len(body)
	if n == 0 {
		return nil, nil, ErrEmpty
	}
	if d.Reliable {
		return h.prepareReliable(l, n, head, body)
	}
	return h.prepareUnreliable(l, d.Channel, n, head, body)
}

func (h *Host) prepareReliable(l *link, n int, head, body []byte) (*outBatch, Path, error) {
	if n > MaxReliable {
		return nil, nil, fmt.Errorf("reliable message of %d bytes (max %d): %w", n, MaxReliable, ErrTooLarge)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.sendableLocked(); err != nil {
		return nil, nil, err
	}
	waiting := l.waitingLocked()
	if waiting+kcpFragments(streamFrameSize(n)) > h.cfg.SendQueue {
		l.flow.SendQueueFull++
		return nil, nil, fmt.Errorf("send to %v: %w", l.id, ErrSendQueueFull)
	}
	l.flow.MessagesSent++
	windowFull := waiting >= kcpRecvWindow
	if windowFull {
		l.flow.WindowFull++
	}
	idle := waiting == 0 && !l.flushPending
	l.appendPendLocked(n, head, body)
	if l.suspended {
		// Queued in the stream; sent when the link resumes (resume.go).
		return nil, nil, nil
	}
	l.markActiveLocked()
	switch {
	case idle:
		// Nothing in flight: send now, no added latency.
		l.flushLocked(FlushSend)
	case !l.flushPending && !windowFull:
		// Data in flight: let the timer goroutine flush soon, so that
		// messages sent meanwhile share segments and datagrams. With the
		// window full nothing would leave before an acknowledgement opens
		// it, and that arrival flushes (handleKCPFrameLocked).
		l.flushPending = true
		h.sched.addFlush(l)
	}
	out, p := l.takeLocked()
	return out, p, nil
}

func (h *Host) prepareUnreliable(l *link, ch uint8, n int, head, body []byte) (*outBatch, Path, error) {
	if n > MaxUnreliable {
		return nil, nil, fmt.Errorf("unreliable message of %d bytes (max %d): %w", n, MaxUnreliable, ErrTooLarge)
	}
	l.mu.Lock()
	if err := l.sendableLocked(); err != nil {
		l.mu.Unlock()
		return nil, nil, err
	}
	if l.suspended {
		// Unreliable: not kept for a link that may not come back.
		l.mu.Unlock()
		return nil, nil, nil
	}
	seq := h.unrelSeq[ch].Add(1)
	p := l.path
	l.sentDirectLocked()
	mirror := l.mirrorLocked()
	l.mu.Unlock()

	out := batchPool.Get().(*outBatch)
	out.bufs = append(out.bufs, l.sealUnreliable(ch, seq, n, head, body))
	if mirror != nil {
		// The direct path is silent (failover.go): a copy goes on the
		// relay in a datagram of its own; the peer keeps the first.
		m := l.sealUnreliable(ch, seq, n, head, body)
		if mirror.WriteDatagram(m) == nil {
			l.countOut(len(m), false)
		}
		putBuf(m)
	}
	return out, p, nil
}

// sealUnreliable seals an unreliable message of n bytes (head and body) in
// a datagram of its own.
func (l *link) sealUnreliable(ch uint8, seq uint32, n int, head, body []byte) []byte {
	b, pn := l.startDatagram()
	b = append(b, byte(frameUnreliable), byte(n+unrelHeader), byte((n+unrelHeader)>>8), ch,
		byte(seq), byte(seq>>8), byte(seq>>16), byte(seq>>24))
	b = append(append(b, head...), body...)
	return l.sealDatagram(b, pn)
}

func (l *link) sendableLocked() error {
	switch {
	case (l.removed || l.closing != nil) && l.h.doneClosed():
		return fmt.Errorf("send to %v: %w", l.id, ErrHostClosed)
	case l.removed:
		return fmt.Errorf("send to %v: %w", l.id, ErrUnknownPeer)
	case l.closing != nil, l.remoteClosed != nil:
		return fmt.Errorf("send to %v: %w", l.id, ErrLinkClosing)
	}
	return nil
}

// Disconnect closes the link to id gracefully: pending reliable data is
// flushed (up to CloseTimeout), then the peer is told. An EventDisconnected
// with ErrClosedLocally follows.
func (h *Host) Disconnect(id HostID) error {
	return h.closeLink(id, ErrClosedLocally, "")
}

// Kick closes the link to id like Disconnect, and the peer's
// EventDisconnected carries ErrKicked with message.
func (h *Host) Kick(id HostID, message string) error {
	return h.closeLink(id, ErrKicked, message)
}

func (h *Host) closeLink(id HostID, reason error, message string) error {
	l := h.link(id)
	if l == nil {
		return h.noLink("disconnect", id)
	}
	if len(message) > maxCloseMessage {
		message = message[:maxCloseMessage]
	}
	now := time.Now()
	l.mu.Lock()
	if l.closing == nil && !l.removed {
		l.closing = &CloseError{Reason: reason, Message: message}
		l.closeDeadline = now.Add(h.cfg.CloseTimeout)
		l.markActiveLocked()
	}
	h.closeNowIfDoneLocked(l, now) // unlocks l.mu
	return nil
}

// closeNowIfDoneLocked finishes l's local close at once when nothing
// reliable is unacknowledged (otherwise the timer goroutine finishes it as
// soon as the peer acknowledges, or at the deadline). Call it with l.mu
// held; it unlocks it.
func (h *Host) closeNowIfDoneLocked(l *link, now time.Time) {
	var reason error
	if !l.removed {
		reason = l.finishCloseLocked(now)
	}
	out, p := l.takeLocked()
	l.mu.Unlock()
	l.writeOut(out, p)
	if reason != nil {
		h.removeLink(l, reason)
	}
}

// Close shuts the host down gracefully within CloseTimeout; see Shutdown.
func (h *Host) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.CloseTimeout+500*time.Millisecond)
	defer cancel()
	return h.Shutdown(ctx)
}

// shutdownLink starts closing l for Shutdown, to be done by deadline.
func (h *Host) shutdownLink(l *link, deadline time.Time) {
	l.mu.Lock()
	if !l.removed && !l.closeQueued {
		l.closing = &CloseError{Reason: ErrShutdown}
		l.closeDeadline = deadline
		l.markActiveLocked()
	}
	h.closeNowIfDoneLocked(l, time.Now()) // unlocks l.mu
}

// Shutdown closes every link gracefully, waits until they are flushed or
// ctx ends (a client's peers first, then its server link, which carries
// the relay to them), then stops the host's goroutines and closes the
// socket. It is safe to call more than once. A server's clients see
// ErrShutdown; a client's server and peers see ErrClosedByPeer (the client
// left). This host's own EventDisconnected for each link carries ErrShutdown.
func (h *Host) Shutdown(ctx context.Context) error {
	h.bt.giveBack() // the acknowledgements must be read while it waits
	h.mu.Lock()
	already := h.closed
	h.closed = true
	links := make([]*link, 0, len(h.byID))
	for _, l := range h.byID {
		links = append(links, l)
	}
	h.mu.Unlock()
	if !already {
		deadline := time.Now().Add(h.cfg.CloseTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		// A client's server link carries the relay to its relayed peers:
		// it closes once they are done, or at the deadline.
		var server *link
		for _, l := range links {
			if l.id == ServerID && len(links) > 1 {
				server = l
				continue
			}
			h.shutdownLink(l, deadline)
		}
		t := time.NewTicker(10 * time.Millisecond)
	wait:
		for n := h.Stats().Links; n > 0; n = h.Stats().Links {
			if server != nil && (n == 1 || !time.Now().Before(deadline)) {
				h.shutdownLink(server, deadline)
				server = nil
			}
			select {
			case <-ctx.Done():
				break wait
			case <-t.C:
			}
		}
		t.Stop()
	}
	h.closeOnce.Do(func() {
		h.stopAuth()
		close(h.done)
		h.conn.Close()
		h.mu.Lock()
		for _, c := range h.extra {
			c.Close()
		}
		for _, c := range h.probeConnList() {
			c.Close()
		}
		h.bdayMu.Lock()
		for c := range h.bdayConns {
			c.Close()
		}
		clear(h.bdayConns)
		h.bdayMu.Unlock()
		h.mu.Unlock()
	})
	h.wg.Wait()
	return nil
}

// removeLink takes the link out of the host and reports its end. Call it
// without l.mu.
func (h *Host) removeLink(l *link, reason error) {
	l.mu.Lock()
	if l.removed {
		l.mu.Unlock()
		return
	}
	h.removeLinkLocked(l, reason, netip.AddrPort{}) // unlocks l.mu
	h.log.Debug("link down", "peer", l.id, "reason", reason)
}

// removeLinkLocked takes l, not yet removed, out of the host: the one
// place a link ends, whether it went (removeLink) or a new login from
// takenBy took its session over (resume.go takeOver; takenBy is the zero
// AddrPort otherwise). It ends what the link holds (held datagrams, a
// birthday attempt and its sockets, its suspension), reports its end with
// reason unless taken over (the new link reports EventBack instead),
// unregisters it and, if it was the last link on its address of a
// Forgetter (a TCPMux), tells the conn, which closes the link's
// connection: unless the new login came over that same connection. A link
// taken over keeps its user's session entry: its HostID has passed to the
// new link. Call it with l.mu held; it unlocks it.
func (h *Host) removeLinkLocked(l *link, reason error, takenBy netip.AddrPort) {
	takenOver := takenBy.IsValid()
	now := time.Now()
	l.removed = true
	l.releaseHeldLocked()
	h.birthdayEndLocked(l, now)
	if l.suspended {
		h.unsuspendLocked(l)
	}
	// A server link its client never confirmed was never reported
	// connected: its end is not reported either. (A link that took over
	// a session ends that session even unconfirmed: the session was
	// reported.)
	report := !takenOver && (!h.cfg.Accept || l.confirmed || l.restarted)
	p := l.path
	l.mu.Unlock()
	h.mu.Lock()
	h.unregisterLocked(l, p)
	if u := l.user; !takenOver && u != nil && u.ID != "" && h.users[u.ID] == l.id {
		delete(h.users, u.ID)
	}
	d, direct := p.(directPath)
	f, forget := d.conn.(Forgetter) // a TCPMux closes the link's connection
	forget = forget && direct && h.byAddr[d.addr] == nil && d.addr != takenBy
	h.mu.Unlock()
	// Reported once the link is out of the host's maps: a client that
	// dials again on its server link's end is not told it is still
	// connected. (Nothing else of l is reported after it: l.removed is
	// set, under l.mu, before.)
	if report {
		h.events.Push(Event{Kind: EventDisconnected, Peer: l.id, Err: reason, Received: now, User: l.user})
	}
	if forget {
		f.Forget(d.addr)
	}
}

// unregisterLocked takes l, last on path p, out of the host's maps
// (HostIDs, addresses, admission). Call with h.mu held.
func (h *Host) unregisterLocked(l *link, p Path) {
	if h.byID[l.id] == l {
		delete(h.byID, l.id)
	}
	if a, ok := directAddr(p); ok && h.byAddr[a] == l {
		delete(h.byAddr, a)
	}
	h.forgetAdmittedLocked(l)
}

// addLink registers a new link, replacing (and reporting) any old link with
// the same HostID or address.
func (h *Host) addLink(l *link) {
	h.mu.Lock()
	old := h.byID[l.id]
	h.byID[l.id] = l
	var oldAddr *link
	if a, ok := directAddr(l.path); ok {
		oldAddr = h.byAddr[a]
		h.byAddr[a] = l
	}
	h.mu.Unlock()
	for _, o := range []*link{old, oldAddr} {
		if o != nil && o != l {
			h.removeLink(o, ErrClosedByPeer)
		}
	}
}

// tokenBucket limits a rate: hellos and busy rejects (under Host.mu), uplink bytes
// (under uplinkMu). burst 0 means one second of rate.
type tokenBucket struct {
	rate, tokens, burst float64
	last                time.Time
}

func (b *tokenBucket) take(now time.Time) bool { return b.takeN(now, 1) }

func (b *tokenBucket) takeN(now time.Time, n float64) bool {
	burst := b.burst
	if burst == 0 {
		burst = b.rate
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}
