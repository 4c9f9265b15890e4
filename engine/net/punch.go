package net

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// Why a peer is relayed, in EventPathChange.Err (nil when direct).
var (
	// ErrPunchTimeout: no candidate address answered a probe in time.
	ErrPunchTimeout = errors.New("skein/net: hole punch timed out")
	// ErrPathLost: the direct path stopped answering (NAT mapping expired,
	// route changed).
	ErrPathLost = errors.New("skein/net: direct path lost")
	// ErrForcedRelay: relaying was forced by policy (ForceRelay on either
	// side of the link, or P2P disabled).
	ErrForcedRelay = errors.New("skein/net: relay forced by policy")
	// ErrUDPBlocked: the host reaches the server over TCP, so peers can only
	// be reached through the relay.
	ErrUDPBlocked = errors.New("skein/net: UDP blocked, using TCP to the server")
)

// Punch probe kinds (framePunch body: kind(1) token(8)).
const (
	punchProbe byte = 1
	punchAck   byte = 2
)

// maxCandidates bounds the addresses probed for one peer.
const maxCandidates = 8

// PunchConfig tunes hole punching. Zero values take the defaults.
type PunchConfig struct {
	// ProbeInterval is the time between rounds of probes to every
	// candidate. Zero means 100 ms.
	ProbeInterval time.Duration
	// Timeout ends an attempt with no answer. Zero means 3 s.
	Timeout time.Duration
	// Keepalive is how often a direct path is probed. Zero means 500 ms.
	Keepalive time.Duration
	// Lost bounds how long a direct path may go without an answer to what
	// this host sends before the peer falls back to the relay. The
	// threshold itself scales with the direct path's RTT (about 4 round
	// trips, at least 150 ms; see failover.go and docs/SEMANTICS.md), so
	// a path that stops delivering while traffic flows is left within a
	// few round trips. Zero means 1.5 s.
	Lost time.Duration
	// RetryMin and RetryMax bound the back-off between attempts after a
	// failure or a lost path. Zero means 5 s and 60 s.
	RetryMin, RetryMax time.Duration

	// Birthday punching (birthday.go), between a symmetric NAT and an
	// endpoint-independent one once SetPeerNAT names them.
	//
	// BirthdayPorts is how many extra sockets the symmetric side opens
	// (each one a new public port of its NAT). Zero means 256; negative
	// turns birthday punching off on this host.
	BirthdayPorts int
	// BirthdayProbes is how many random ports of the symmetric side's
	// address the endpoint-independent side probes, at most. Zero means
	// 2048.
	BirthdayProbes int
	// BirthdayRate paces those probes, per second. Zero means 500.
	BirthdayRate int
	// BirthdayTimeout ends an attempt that found no path. Zero means 6 s.
	BirthdayTimeout time.Duration
	// BirthdayListen opens one of the symmetric side's extra sockets. Nil:
	// a UDP socket on the host socket's address with a free port (only
	// when the host's own conn is a UDP socket made by ListenUDP or UDP;
	// otherwise this host cannot be the symmetric side). The host reads
	// and closes what it returns; Close must not block.
	BirthdayListen func() (PacketConn, error)
	// Recheck is how often, while relayed after a lost direct path, one
	// probe goes to the last direct address, so that the pair returns to
	// it as soon as it works again. Zero means 1 s.
	Recheck time.Duration
}

func (p PunchConfig) withDefaults() PunchConfig {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&p.ProbeInterval, 100*time.Millisecond)
	def(&p.Timeout, 3*time.Second)
	def(&p.Keepalive, 500*time.Millisecond)
	def(&p.Lost, 1500*time.Millisecond)
	def(&p.RetryMin, 5*time.Second)
	def(&p.RetryMax, 60*time.Second)
	def(&p.BirthdayTimeout, 6*time.Second)
	if p.BirthdayPorts == 0 {
		p.BirthdayPorts = 256
	}
	if p.BirthdayProbes <= 0 {
		p.BirthdayProbes = 2048
	}
	if p.BirthdayRate <= 0 {
		p.BirthdayRate = 500
	}
	def(&p.Recheck, time.Second)
	return p
}

// punchState is a peer link's hole-punching state, under link.mu.
type punchState struct {
	relay      Path             // the relay path to fall back to
	cands      []netip.AddrPort // probed in order (LAN first)
	token      uint64           // current attempt's probe token
	probing    bool
	deadline   time.Time
	nextProbe  time.Time
	direct     netip.AddrPort // valid while the path is direct
	lastAck    time.Time
	nextKeep   time.Time
	retryAt    time.Time
	backoff    time.Duration
	forced     bool   // this host forced the relay (ForceRelay)
	peerForced bool   // the peer forced the relay (its frameForceRelay)
	forceSeq   uint32 // the last force notice this host sent
	peerSeq    uint32 // the newest force notice the peer sent
	reported   bool   // a failure to punch was reported once
	// Birthday punching (birthday.go): the NAT types of both ends, and
	// the attempt under way or the socket of the direct path it found.
	mine, theirs NATType
	bday         *birthday
	bdayPhase    BirthdayPhase // how far the link's last attempt got (LinkStats.Birthday)
	failover                   // direct-path loss detection and return (failover.go)
}

// directProbe is a sealed probe or ack to write to an address, not through
// the link's path.
type directProbe struct {
	conn PacketConn // nil: the host's socket
	to   netip.AddrPort
	b    []byte
}

func newToken() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// Punch starts hole punching to peer: probes go straight to each candidate
// address (give LAN addresses first), and the first one acknowledged becomes
// the peer's direct path. Until then, and whenever the direct path stops
// answering, traffic stays on the relay path the peer was added with. Path
// changes are reported with EventPathChange. Punch may be called again with
// new candidates.
func (h *Host) Punch(peer HostID, cands []netip.AddrPort) error {
	l := h.link(peer)
	if l == nil {
		return h.noLink("punch", peer)
	}
	now := time.Now()
	l.mu.Lock()
	ps := h.punchStateLocked(l)
	ps.cands = ps.cands[:0]
	for _, c := range cands {
		if c.IsValid() && !slices.Contains(ps.cands, c) && len(ps.cands) < maxCandidates {
			ps.cands = append(ps.cands, c)
		}
	}
	var probes []directProbe
	if h.cfg.DisableP2P || ps.forced {
		if !ps.reported {
			ps.reported = true
			h.pathEvent(l, true, ErrForcedRelay, now)
		}
	} else if ps.direct == (netip.AddrPort{}) {
		probes = h.startAttemptLocked(l, now)
	}
	l.mu.Unlock()
	h.writeProbes(l, probes)
	return nil
}

// ForceRelay makes traffic with peer go through the relay, both ways (force
// true), as a policy or to test the fallback, or lets punching resume (force
// false). This side switches at once, with an EventPathChange
// (ErrForcedRelay); the peer is told in a force-relay frame and switches
// its side too, with an EventPathChange of its own (ErrForcedRelay). While
// either side forces it, the pair stays on the relay. See forcerelay.go and
// docs/PROTOCOL.md ("Forced relay works both ways").
func (h *Host) ForceRelay(peer HostID, force bool) error {
	l := h.link(peer)
	if l == nil {
		return h.noLink("force relay", peer)
	}
	now := time.Now()
	l.mu.Lock()
	ps := h.punchStateLocked(l)
	var probes []directProbe
	if force != ps.forced {
		ps.forced = force
		if force {
			h.forcedRelayLocked(l, now)
		} else if !h.cfg.DisableP2P && !ps.peerForced {
			probes = h.startAttemptLocked(l, now)
		}
		h.sendForceNoticeLocked(l, force)
	}
	out, p := l.takeLocked()
	l.mu.Unlock()
	l.writeOut(out, p)
	h.writeProbes(l, probes)
	return nil
}

// startAttemptLocked begins a round of probing and returns the first probes.
func (h *Host) startAttemptLocked(l *link, now time.Time) []directProbe {
	ps := l.punch
	if len(ps.cands) == 0 {
		return nil
	}
	ps.token = newToken()
	ps.probing = true
	ps.deadline = now.Add(h.punchCfg.Timeout)
	ps.nextProbe = now.Add(h.punchCfg.ProbeInterval)
	ps.retryAt = time.Time{}
	return h.probesLocked(l, nil, ps.cands, punchProbe, ps.token, nil)
}

// probesLocked seals one probe (or ack) per address, numbered in the probe
// space: a probe to a candidate that does not answer is not a lost data
// datagram in the peer's loss estimate.
// conn is the socket to send them from (nil: the host's).
func (h *Host) probesLocked(l *link, conn PacketConn, to []netip.AddrPort, kind byte, token uint64, out []directProbe) []directProbe {
	var body [9]byte
	body[0] = kind
	binary.LittleEndian.PutUint64(body[1:], token)
	for _, a := range to {
		b, pn := l.startProbeDatagram()
		b = appendFrame(b, framePunch, body[:])
		out = append(out, directProbe{conn: conn, to: a, b: l.sealDatagram(b, pn)})
	}
	return out
}

// writeProbes writes probes (and path challenges and responses) straight to
// their addresses. Call without l.mu.
func (h *Host) writeProbes(l *link, probes []directProbe) {
	for _, p := range probes {
		conn := p.conn
		if conn == nil {
			conn = h.conn
		}
		if _, err := conn.WriteTo(p.b, p.to); err == nil {
			l.traffic.out(len(p.b))
			h.traffic.out(len(p.b))
		}
		putBuf(p.b)
	}
}

// pathEvent queues an EventPathChange. Call with l.mu held.
func (h *Host) pathEvent(l *link, relayed bool, reason error, now time.Time) {
	l.pathSince = now
	h.events.Push(Event{Kind: EventPathChange, Peer: l.id, Relayed: relayed, Err: reason, Received: now})
	h.log.Debug("peer path", "peer", l.id, "relayed", relayed, "reason", reason, "path", pathString(l.path))
}

// toRelayLocked falls back to the relay path.
func (h *Host) toRelayLocked(l *link, reason error, now time.Time) {
	ps := l.punch
	ps.direct = netip.AddrPort{}
	h.birthdayEndLocked(l, now)
	l.path = ps.relay
	l.leftDirectLocked()
	h.pathEvent(l, true, reason, now)
}

// punchStateLocked returns l's hole-punching state, made on first use with
// the link's current path as its relay path. Call with l.mu held.
func (h *Host) punchStateLocked(l *link) *punchState {
	if l.punch == nil {
		l.punch = &punchState{relay: l.path, backoff: h.punchCfg.RetryMin}
	}
	return l.punch
}

// punchFrameLocked handles a probe or ack that arrived from addr, not
// through the relay.
//
// conn is the socket it came on: the host's, or one a birthday attempt
// opened (birthday.go), through which the answers go back and the direct
// path then runs.
func (h *Host) punchFrameLocked(l *link, body []byte, conn PacketConn, from netip.AddrPort, now time.Time, out []directProbe) []directProbe {
	if h.cfg.Accept || l.id == ServerID {
		l.drops.add(DropUnexpected)
		return out
	}
	ps := h.punchStateLocked(l)
	token := binary.LittleEndian.Uint64(body[1:])
	switch body[0] {
	case punchProbe:
		if ps.forced {
			// Forced onto the relay: no answer, so the peer cannot keep
			// or find a direct path to this host even if it missed the
			// force notice.
			return out
		}
		// A peer probes only when it does not force the relay: a
		// release notice that was lost changes nothing.
		ps.peerForced = false
		// Answer where it came from, and probe that address too: behind a
		// NAT that maps per destination, it is the peer's only reachable
		// address (a peer-reflexive candidate).
		out = h.probesLocked(l, conn, []netip.AddrPort{from}, punchAck, token, out)
		if !slices.Contains(ps.cands, from) && len(ps.cands) < maxCandidates {
			ps.cands = append(ps.cands, from)
		}
		if ps.probing {
			// A triggered check: the peer just showed this address works
			// towards us; probe it now rather than at the next round.
			out = h.probesLocked(l, conn, []netip.AddrPort{from}, punchProbe, ps.token, out)
		}
		if !ps.probing && !ps.direct.IsValid() && !ps.held() && !h.cfg.DisableP2P {
			out = append(out, h.startAttemptLocked(l, now)...)
		}
	case punchAck:
		if token != ps.token || ps.held() || h.cfg.DisableP2P {
			return out
		}
		if ps.direct.IsValid() {
			switch better, cur := slices.Index(ps.cands, from), slices.Index(ps.cands, ps.direct); {
			case from == ps.direct && (conn == ps.directConn() || ps.directConn() == nil && conn == h.conn):
				ps.lastAck = now
				ps.ackedDirectLocked(now)
			case better >= 0 && (cur < 0 || better < cur) && ps.bday == nil:
				// A candidate we prefer (the LAN before a hairpinning
				// NAT's public address) answered too: move to it.
				ps.direct, ps.lastAck = from, now
				l.path = directPath{conn, from}
				l.pathSince = now
				h.wentDirectLocked(l, now)
			}
			return out
		}
		ps.direct = from
		ps.lastAck = now
		ps.nextKeep = now.Add(h.punchCfg.Keepalive)
		ps.probing = false
		ps.backoff = h.punchCfg.RetryMin
		ps.reported = false
		l.path = directPath{conn, from}
		h.birthdayWonLocked(l, conn, now)
		h.wentDirectLocked(l, now)
		h.pathEvent(l, false, nil, now)
	}
	return out
}

// punchTickLocked is the timer's work on a peer link: probe rounds, attempt
// deadlines, direct-path keepalives and loss, retries.
func (h *Host) punchTickLocked(l *link, now time.Time) []directProbe {
	ps := l.punch
	if ps == nil || ps.held() || h.cfg.DisableP2P {
		return nil
	}
	cfg := h.punchCfg
	switch {
	case ps.direct.IsValid():
		// The timer's failover check (failover.go) sees a silent path
		// first; this is the backstop, in case nothing was sent.
		if now.Sub(ps.lastAck) > cfg.Lost && now.Sub(ps.lastRx) > cfg.Lost {
			h.pathLostLocked(l, now)
			return nil
		}
		if !now.Before(ps.nextKeep) {
			ps.nextKeep = now.Add(cfg.Keepalive)
			return h.probeDirectLocked(l, now, nil)
		}
	case ps.probing:
		if !now.Before(ps.deadline) {
			ps.probing = false
			h.birthdayEndLocked(l, now)
			ps.retryAt = now.Add(ps.backoff)
			ps.backoff = min(2*ps.backoff, cfg.RetryMax)
			if !ps.reported {
				ps.reported = true
				h.pathEvent(l, true, ErrPunchTimeout, now)
			}
			return nil
		}
		var out []directProbe
		if ps.bday != nil {
			out = h.birthdayTickLocked(l, now, out)
		}
		if !now.Before(ps.nextProbe) {
			ps.nextProbe = now.Add(cfg.ProbeInterval)
			out = h.probesLocked(l, nil, ps.cands, punchProbe, ps.token, out)
		}
		return out
	case !ps.retryAt.IsZero() && !now.Before(ps.retryAt):
		return h.startAttemptLocked(l, now)
	case ps.lastDirect.IsValid() && !ps.nextCheck.IsZero() && !now.Before(ps.nextCheck):
		return h.recheckLocked(l, now)
	}
	return nil
}
