package net

import (
	"fmt"
	"math/rand/v2"
	stdnet "net"
	"net/netip"
	"slices"
	"time"
)

// Birthday punching (docs/SEMANTICS.md, "Birthday punching"), for a pair
// where one side's NAT maps every destination to a new random public port
// (symmetric, the "hard" side) and the other's keeps one public address
// (endpoint-independent, the "easy" side). Plain punching fails there: the
// easy side cannot guess which port the hard side's NAT gave the mapping
// towards it, and its own NAT lets in only the addresses it sent to.
//
// Skein keeps one socket per process, but that alone cannot work: a
// symmetric NAT gives one socket exactly one mapping towards the easy
// side's one address, and the easy side would need ~32,000 guesses on
// average to find it. So the hard side opens BirthdayPorts extra sockets
// for the attempt (Tailscale's way), each sending a sealed punch probe to
// the easy side's public address (each gets a random public port), and the
// easy side probes random ports of the hard side's public IP, paced at
// BirthdayRate. With 256 open mappings among ~64,500 ports, each guess
// hits with p ≈ 1/252: 1,024 guesses succeed 98% of the time, 2,048 over
// 99.9%. A guess that hits passes the hard NAT (the mapping exists towards
// the easy side's address) and the hard side answers through the socket
// it arrived on, which the easy NAT lets in (the easy side sent to that
// port). Both sides then hold an acknowledged probe: the usual rule makes
// that address (and, on the hard side, that socket) the direct path. The
// other extra sockets are closed at once; the winning one carries the
// link, and is closed with it (or when the path is lost).
//
// Bounds: one hard-side attempt per host at a time (BirthdayPorts sockets
// for at most BirthdayTimeout), BirthdayProbes probes on the easy side,
// each probe one small sealed datagram (39 bytes of UDP payload). It runs
// only while the pair is already on the relay and neither side forces the
// relay, so the match is never delayed.

// birthdayRole is this host's part in a birthday attempt.
type birthdayRole uint8

const (
	birthdayNone birthdayRole = iota
	birthdayHard              // this host is behind the symmetric NAT
	birthdayEasy              // this host is behind the endpoint-independent one
)

// birthdayResend is how often the hard side probes again from every
// socket (a probe lost on the way, or one that arrived before the easy
// side had opened the port, gets another chance).
const birthdayResend = 2 * time.Second

// maxBirthdayBurst bounds the probes the easy side sends in one timer tick.
const maxBirthdayBurst = 128

// firstGuessPort is the lowest port the easy side guesses: NATs hand out
// ports above the well-known range.
const firstGuessPort = 1024

// birthday is a link's birthday attempt, under link.mu.
type birthday struct {
	role    birthdayRole
	running bool
	target  netip.AddrPort // the peer's public address (easy side: its IP)
	conns   []PacketConn   // hard side: the extra sockets
	won     PacketConn     // hard side: the socket of the direct path
	started time.Time
	next    time.Time    // hard side: the next round of probes
	sent    int          // easy side: guesses sent
	tried   [1024]uint64 // easy side: ports guessed (bit per port)
	rng     *rand.Rand   // easy side: the guesses
	probes  int          // datagrams sent by the attempt (BirthdayStats)
}

// BirthdayPhase says how far a link's birthday punching got
// (LinkStats.Birthday).
type BirthdayPhase uint8

// Birthday phases.
const (
	// BirthdayNone: no attempt started on the link. The pair's NAT types
	// do not call for one or are not known yet, birthday punching is off
	// on this host (PunchConfig.BirthdayPorts < 0), the peer has no
	// public candidate, this host could not open its extra sockets or
	// another attempt held them, the relay is forced, or SetPeerNAT was
	// not called (engine/sync does not call it when either side has a
	// port mapping).
	BirthdayNone BirthdayPhase = iota
	// BirthdayRunning: an attempt is under way.
	BirthdayRunning
	// BirthdayWon: an attempt found the direct path (which may since have
	// been lost).
	BirthdayWon
	// BirthdayFailed: the attempt ended without a path (its timeout, or
	// the relay was forced).
	BirthdayFailed
)

// String returns the phase's name: "none", "running", "won" or "failed".
func (p BirthdayPhase) String() string {
	switch p {
	case BirthdayNone:
		return "none"
	case BirthdayRunning:
		return "running"
	case BirthdayWon:
		return "won"
	case BirthdayFailed:
		return "failed"
	}
	return fmt.Sprintf("BirthdayPhase(%d)", int(p))
}

// BirthdayStats counts a host's birthday punching (Host.BirthdayStats).
type BirthdayStats struct {
	// Attempts started, and how many found a direct path.
	Attempts, Won uint64
	// Probes is the datagrams the attempts sent (both roles).
	Probes uint64
	// Sockets is the extra sockets open now: an attempt's, and those
	// carrying a direct path an attempt found.
	Sockets int
}

// BirthdayStats returns the host's birthday-punching counters.
func (h *Host) BirthdayStats() BirthdayStats {
	h.bdayMu.Lock()
	n := len(h.bdayConns)
	h.bdayMu.Unlock()
	return BirthdayStats{Attempts: h.bdayAttempts.Load(), Won: h.bdayWon.Load(), Probes: h.bdayProbes.Load(), Sockets: n}
}

// directConn is the socket of the direct path: a birthday attempt's
// winning one, or nil for the host's.
func (ps *punchState) directConn() PacketConn {
	if ps.bday != nil {
		return ps.bday.won
	}
	return nil
}

// birthdayRoleLocked says whether the link's pair calls for birthday
// punching and which side this host is, and the peer's public address.
func (h *Host) birthdayRoleLocked(l *link) (birthdayRole, netip.AddrPort) {
	ps := l.punch
	if h.punchCfg.BirthdayPorts < 0 || h.cfg.Accept {
		return birthdayNone, netip.AddrPort{}
	}
	var role birthdayRole
	switch {
	case ps.mine == NATSymmetric && ps.theirs == NATEndpointIndependent:
		role = birthdayHard
	case ps.mine == NATEndpointIndependent && ps.theirs == NATSymmetric:
		role = birthdayEasy
	default:
		return birthdayNone, netip.AddrPort{}
	}
	// The peer's public address is the candidate the server saw it at: the
	// first one that is no private address (the server sends none when
	// both are behind the same public address: they meet on the LAN).
	for _, c := range ps.cands {
		if a := c.Addr(); a.IsGlobalUnicast() && !a.IsPrivate() {
			return role, c
		}
	}
	return birthdayNone, netip.AddrPort{}
}

// SetPeerNAT tells the host the NAT types of this host (mine) and of peer
// (theirs), as engine/sync learns them. When one is symmetric and the
// other endpoint-independent, and the pair is not direct, a birthday
// attempt starts at once, in the background: traffic stays on the relay
// meanwhile, and moves to the direct path if one is found
// (EventPathChange).
func (h *Host) SetPeerNAT(peer HostID, mine, theirs NATType) error {
	l := h.link(peer)
	if l == nil {
		return h.noLink("set peer NAT", peer)
	}
	l.mu.Lock()
	ps := h.punchStateLocked(l)
	ps.mine, ps.theirs = mine, theirs
	role, target := h.birthdayRoleLocked(l)
	want := role != birthdayNone && h.birthdayMayStartLocked(l)
	l.mu.Unlock()
	if !want {
		return nil
	}
	var conns []PacketConn
	if role == birthdayHard {
		if !h.bdayHard.CompareAndSwap(false, true) {
			h.log.Debug("birthday punch: another attempt runs", "peer", peer)
			return nil
		}
		var err error
		if conns, err = h.openBirthdayConns(); err != nil {
			h.bdayHard.Store(false)
			h.log.Debug("birthday punch: no extra sockets", "peer", peer, "error", err)
			return nil
		}
	}
	now := time.Now()
	l.mu.Lock()
	if !h.birthdayMayStartLocked(l) || l.removed {
		l.mu.Unlock()
		if role == birthdayHard {
			h.dropBirthdayConns(conns)
			h.bdayHard.Store(false)
		}
		return nil
	}
	bd := &birthday{role: role, running: true, target: target, conns: conns, started: now, next: now.Add(birthdayResend)}
	if role == birthdayEasy {
		bd.rng = rand.New(rand.NewPCG(newToken(), newToken()))
	}
	ps.bday = bd
	ps.bdayPhase = BirthdayRunning
	probes := h.startAttemptLocked(l, now)
	ps.deadline = now.Add(h.punchCfg.BirthdayTimeout)
	if role == birthdayHard {
		probes = h.birthdayRoundLocked(l, probes)
	}
	l.mu.Unlock()
	h.bdayAttempts.Add(1)
	h.log.Debug("birthday punch", "peer", peer, "hard", role == birthdayHard, "target", target, "sockets", len(conns))
	h.writeProbes(l, probes)
	return nil
}

// birthdayMayStartLocked reports whether a birthday attempt may start on
// l: not direct, no attempt already, relay not forced, P2P allowed.
func (h *Host) birthdayMayStartLocked(l *link) bool {
	ps := l.punch
	return !ps.direct.IsValid() && ps.bday == nil && !ps.held() && !h.cfg.DisableP2P && len(ps.cands) > 0
}

// openBirthdayConns opens the hard side's extra sockets and starts
// reading them.
func (h *Host) openBirthdayConns() ([]PacketConn, error) {
	listen := h.punchCfg.BirthdayListen
	if listen == nil {
		uc, ok := h.conn.(*udpConn)
		if !ok {
			return nil, errNoBirthdayListen
		}
		ip := uc.LocalAddr().Addr()
		listen = func() (PacketConn, error) {
			c, err := stdnet.ListenUDP("udp", stdnet.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
			if err != nil {
				return nil, err
			}
			return UDP(c), nil
		}
	}
	conns := make([]PacketConn, 0, h.punchCfg.BirthdayPorts)
	for range h.punchCfg.BirthdayPorts {
		c, err := listen()
		if err != nil {
			if len(conns) == 0 {
				return nil, err
			}
			break // fewer sockets (a file limit): fewer chances, still some
		}
		conns = append(conns, c)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		return nil, ErrHostClosed
	}
	h.bdayMu.Lock()
	if h.bdayConns == nil {
		h.bdayConns = make(map[PacketConn]struct{})
	}
	for _, c := range conns {
		h.bdayConns[c] = struct{}{}
	}
	h.bdayMu.Unlock()
	h.wg.Add(len(conns))
	h.mu.Unlock()
	for _, c := range conns {
		go h.readSmall(c)
	}
	return conns, nil
}

// dropBirthdayConns closes extra sockets (their readers end). It may be
// called under a link's lock: bdayMu is a leaf.
func (h *Host) dropBirthdayConns(conns []PacketConn) {
	if len(conns) == 0 {
		return
	}
	h.bdayMu.Lock()
	for _, c := range conns {
		delete(h.bdayConns, c)
	}
	h.bdayMu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// readSmall is readLoop for an extra socket: one datagram at a time into
// one small buffer (hundreds of them may be open).
func (h *Host) readSmall(conn PacketConn) {
	defer h.wg.Done()
	h.readEach(conn, make([]byte, MaxDatagram+1))
}

// birthdayRoundLocked adds one probe from each of the hard side's sockets
// to the easy side's address.
func (h *Host) birthdayRoundLocked(l *link, out []directProbe) []directProbe {
	ps := l.punch
	bd := ps.bday
	for _, c := range bd.conns {
		out = h.probesLocked(l, c, []netip.AddrPort{bd.target}, punchProbe, ps.token, out)
	}
	bd.probes += len(bd.conns)
	h.bdayProbes.Add(uint64(len(bd.conns)))
	return out
}

// birthdayTickLocked is the timer's work on a running attempt: the hard
// side's next round, the easy side's next paced guesses.
func (h *Host) birthdayTickLocked(l *link, now time.Time, out []directProbe) []directProbe {
	ps := l.punch
	bd := ps.bday
	if !bd.running {
		return out
	}
	if bd.role == birthdayHard {
		if !now.Before(bd.next) {
			bd.next = now.Add(birthdayResend)
			out = h.birthdayRoundLocked(l, out)
		}
		return out
	}
	cfg := h.punchCfg
	due := min(cfg.BirthdayProbes, int(now.Sub(bd.started).Seconds()*float64(cfg.BirthdayRate))) - bd.sent
	due = min(due, maxBirthdayBurst)
	const span = 65536 - firstGuessPort
	ip := bd.target.Addr()
	before := len(out)
	for range max(due, 0) {
		if bd.sent >= span {
			break
		}
		port := firstGuessPort + bd.rng.IntN(span)
		for bd.tried[port/64]&(1<<(port%64)) != 0 { // the next port not tried yet
			port = firstGuessPort + (port-firstGuessPort+1)%span
		}
		bd.tried[port/64] |= 1 << (port % 64)
		bd.sent++
		out = h.probesLocked(l, nil, []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port))}, punchProbe, ps.token, out)
	}
	// Count what was sent: the loop stops early once every port was tried.
	if n := len(out) - before; n > 0 {
		bd.probes += n
		h.bdayProbes.Add(uint64(n))
	}
	return out
}

// birthdayWonLocked ends a running attempt that found the direct path
// through conn: the hard side keeps that socket (if it is one of its
// extra ones) and closes the others.
func (h *Host) birthdayWonLocked(l *link, conn PacketConn, now time.Time) {
	bd := l.punch.bday
	if bd == nil || !bd.running {
		return
	}
	bd.running = false
	l.punch.bdayPhase = BirthdayWon
	h.bdayWon.Add(1)
	h.log.Debug("birthday punch found a path", "peer", l.id, "took", now.Sub(bd.started), "probes", bd.probes)
	if bd.role != birthdayHard {
		l.punch.bday = nil
		return
	}
	h.bdayHard.Store(false)
	if i := slices.Index(bd.conns, conn); i >= 0 {
		bd.won = conn
		bd.conns = slices.Delete(bd.conns, i, i+1)
	}
	h.dropBirthdayConns(bd.conns)
	bd.conns = nil
	if bd.won == nil {
		l.punch.bday = nil // the host's own socket won (a LAN candidate)
	}
}

// birthdayEndLocked ends the link's attempt, or gives up the socket of
// the direct path it found (the path was lost, the relay forced, the link
// removed).
func (h *Host) birthdayEndLocked(l *link, now time.Time) {
	ps := l.punch
	if ps == nil || ps.bday == nil {
		return
	}
	bd := ps.bday
	ps.bday = nil
	if bd.running {
		ps.bdayPhase = BirthdayFailed
		h.log.Debug("birthday punch ended", "peer", l.id, "after", now.Sub(bd.started), "probes", bd.probes)
		if bd.role == birthdayHard {
			h.bdayHard.Store(false)
		}
	}
	if bd.won != nil {
		bd.conns = append(bd.conns, bd.won)
	}
	h.dropBirthdayConns(bd.conns)
}
