package net

import (
	"net/netip"
	"reflect"
	"sync/atomic"
	"time"
)

// Admission is what a server does with a hello before it spends anything on
// it. The checks run in a fixed order, cheapest first, and a hello that
// fails one costs no link slot and no key agreement (docs/PROTOCOL.md,
// "Admission"):
//
//  1. the source's handshake rate (Config.SourceHandshakeRate), then the
//     conn's handshake budget (Config.HandshakeRate, one budget per conn:
//     the UDP socket and each AddConn conn). Over either: a "busy" reject
//     (itself rate limited) and DropRateLimited.
//  2. a hello for a link that exists (same address, same key as the hello
//     that made it): a pending one gets its welcome again; a confirmed one
//     is a replay and is dropped (DropReplay). A handshake never replaces
//     or removes another link.
//  3. the protocol version, then the stateless cookie: without one the
//     hello gets a cookie; a wrong one a "bad cookie" reject. From here on
//     the source address is proven.
//  4. admitChecks, the hook for checks on a proven address before any slot
//     is taken (empty outside tests); then, on a server with
//     Config.Authenticate, the credentials: the sealed auth block is opened
//     and the hook runs (auth.go), inline or on its workers, and refuses
//     with a login reject or goes on to stage 5 with the user.
//  5. the user's session (Config.DuplicateLogin: a refused duplicate gets
//     "already logged in", a replaced one is kicked) and capacity,
//     reserved atomically under Host.mu: the server's links
//     (MaxLinks, "full"), its unconfirmed links (MaxPending, "busy"), the
//     source's links (SourceLinks, "full") and unconfirmed links
//     (SourcePending, "busy").
//
// Only then does accept run X25519 and create the link, which stays
// unconfirmed (pending) until the client's first authenticated datagram,
// and is removed, without an event, after Config.PendingTimeout.

// admitCheck is an admission check on a hello whose source address the
// cookie proved (stage 4). A non-nil error refuses the hello with a "busy"
// reject before any slot is taken or any key agreed.
type admitCheck func(hl hello, from netip.AddrPort) error

// maxSources bounds the sources whose handshake rate a server tracks. When
// the table is full (a flood of spoofed sources), hellos from untracked
// sources are held by their conn's budget only; a source that gets a link
// is always tracked.
const maxSources = 16384

// busyRate bounds the busy rejects a server sends per second (a burst of one
// second's worth), and busyGap the interval between two to the same source:
// a busy reject is never larger than the hello it answers, and this caps
// what a spoofed flood can reflect at anyone.
const (
	busyRate = 200
	busyGap  = 100 * time.Millisecond
)

// sourceBurst is the burst of a source's handshake budget, in seconds of
// its rate: a roomful of players behind one NAT may all connect at once.
const sourceBurst = 4

// sourceIdleAfter is how long a source with no link stays in the table
// after its last hello: its bucket is full again by then, so forgetting it
// changes nothing.
const sourceIdleAfter = sourceBurst * time.Second

// sourceState is what a server tracks for one source (an IPv4 address or an
// IPv6 /64). Guarded by Host.mu.
type sourceState struct {
	bucket   tokenBucket
	seen     time.Time // last hello
	busyLast time.Time // last busy reject sent to it
	links    int       // links admitted from it, pending ones included
	pending  int       // of which not yet confirmed
}

// helloKey names a server link by the hello that made it: the client's
// address then and its public key.
type helloKey struct {
	addr netip.AddrPort
	pub  [keySize]byte
}

// admitted is the admission record of one server link.
type admitted struct {
	src     *sourceState
	key     helloKey
	pending bool
}

// admission is a server's admission state. Guarded by Host.mu, except the
// counters.
type admission struct {
	sources   map[netip.Addr]*sourceState
	links     map[*link]*admitted
	byHello   map[helloKey]*link // every admitted link, confirmed or not
	npending  int                // pending links and reservations
	reserving int                // slots reserved whose link is not registered yet
	conns     map[PacketConn]*tokenBucket
	other     tokenBucket // conns that cannot be map keys
	busy      tokenBucket
	lastSweep time.Time

	sourceLimited, connLimited, busySent, busyWithheld atomic.Uint64
	full, pendingFull, sourceFull, replayed, expired   atomic.Uint64
}

// AdmissionStats counts a server's admission decisions (docs/PROTOCOL.md,
// "Admission"). Every hello refused here is also counted in Drops
// (DropRateLimited, DropReplay) or HandshakeFailures (a reject sent after the
// cookie).
type AdmissionStats struct {
	// Pending is the number of links not yet confirmed by the client.
	Pending int
	// Sources is the number of sources tracked.
	Sources int
	// SourceLimited counts hellos over their source's handshake rate,
	// ConnLimited hellos over their conn's handshake budget.
	SourceLimited, ConnLimited uint64
	// Busy counts busy rejects sent; BusyWithheld refused hellos left
	// unanswered because busy rejects were over their own rate.
	Busy, BusyWithheld uint64
	// Full counts verified hellos refused because the server had MaxLinks
	// links, PendingFull because it had MaxPending unconfirmed ones,
	// SourceFull because the source had SourceLinks links or SourcePending
	// unconfirmed ones.
	Full, PendingFull, SourceFull uint64
	// Replayed counts hellos for a link already confirmed: dropped, the
	// link is neither rebuilt nor replaced.
	Replayed uint64
	// Expired counts unconfirmed links removed after PendingTimeout.
	Expired uint64
}

func (h *Host) initAdmission(now time.Time) {
	a := &h.adm
	a.sources = make(map[netip.Addr]*sourceState)
	a.links = make(map[*link]*admitted)
	a.byHello = make(map[helloKey]*link)
	a.conns = make(map[PacketConn]*tokenBucket)
	a.other = tokenBucket{rate: float64(h.cfg.HandshakeRate), tokens: float64(h.cfg.HandshakeRate), last: now}
	a.busy = tokenBucket{rate: busyRate, tokens: busyRate, last: now}
	a.lastSweep = now
}

// admissionStats returns a snapshot of the admission counters.
func (h *Host) admissionStats() AdmissionStats {
	a := &h.adm
	h.mu.RLock()
	pending, sources := a.npending-a.reserving, len(a.sources)
	h.mu.RUnlock()
	return AdmissionStats{
		Pending:       pending,
		Sources:       sources,
		SourceLimited: a.sourceLimited.Load(),
		ConnLimited:   a.connLimited.Load(),
		Busy:          a.busySent.Load(),
		BusyWithheld:  a.busyWithheld.Load(),
		Full:          a.full.Load(),
		PendingFull:   a.pendingFull.Load(),
		SourceFull:    a.sourceFull.Load(),
		Replayed:      a.replayed.Load(),
		Expired:       a.expired.Load(),
	}
}

// SourceAddrer is implemented by a PacketConn whose datagram addresses are
// not the network addresses of the senders (TCPMux gives each connection
// an address of its own): SourceAddr returns the sender's real IP address,
// which admission groups sources by.
type SourceAddrer interface {
	SourceAddr(a netip.AddrPort) (netip.Addr, bool)
}

// admitSource returns the source a hello from a on conn counts against: the
// sender's IPv4 address, or its IPv6 /64.
func admitSource(conn PacketConn, a netip.AddrPort) netip.Addr {
	ip := a.Addr()
	if sa, ok := conn.(SourceAddrer); ok {
		if real, ok := sa.SourceAddr(a); ok {
			ip = real
		}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, err := ip.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return ip.WithZone("")
}

// connBucketLocked returns the handshake budget of conn. Call with h.mu held.
func (h *Host) connBucketLocked(conn PacketConn, now time.Time) *tokenBucket {
	a := &h.adm
	if conn == nil || !reflect.TypeOf(conn).Comparable() {
		return &a.other
	}
	b := a.conns[conn]
	if b == nil {
		r := float64(h.cfg.HandshakeRate)
		b = &tokenBucket{rate: r, tokens: r, last: now}
		a.conns[conn] = b
	}
	return b
}

// sourceLocked returns the state of source src, creating it if the table
// has room or force is set (nil otherwise). Call with h.mu held.
func (h *Host) sourceLocked(src netip.Addr, now time.Time, force bool) *sourceState {
	a := &h.adm
	s := a.sources[src]
	if s == nil {
		if len(a.sources) >= maxSources && !force {
			return nil
		}
		r := float64(h.cfg.SourceHandshakeRate)
		s = &sourceState{bucket: tokenBucket{rate: r, tokens: r * sourceBurst, burst: r * sourceBurst, last: now}, seen: now}
		a.sources[src] = s
	}
	return s
}

// helloVerdict is what stages 1 and 2 decided about a hello.
type helloVerdict int

const (
	helloGo      helloVerdict = iota // on to the version and the cookie
	helloBusy                        // over a rate: answer busy (if allowed), drop
	helloWelcome                     // a pending link's hello again: resend its welcome
	helloReplay                      // a confirmed link's hello: drop
	helloClosed                      // the host is closing
)

// screenHello runs admission stages 1 and 2 under h.mu: rates, then links
// that already exist. For helloBusy, busy reports whether a busy reject may
// be sent; for helloWelcome, welcome is the bytes to resend.
func (h *Host) screenHello(pub [keySize]byte, from netip.AddrPort, src netip.Addr, conn PacketConn, now time.Time) (v helloVerdict, busy bool, welcome *link) {
	a := &h.adm
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return helloClosed, false, nil
	}
	s := h.sourceLocked(src, now, false)
	if s != nil {
		s.seen = now
		if h.cfg.SourceHandshakeRate > 0 && !s.bucket.take(now) {
			a.sourceLimited.Add(1)
			return helloBusy, h.busyAllowedLocked(s, now), nil
		}
	}
	if !h.connBucketLocked(conn, now).take(now) {
		a.connLimited.Add(1)
		return helloBusy, h.busyAllowedLocked(s, now), nil
	}
	if l := a.byHello[helloKey{from, pub}]; l != nil {
		if a.links[l].pending {
			return helloWelcome, false, l
		}
		a.replayed.Add(1)
		return helloReplay, false, nil
	}
	return helloGo, false, nil
}

// busyAllowedLocked takes a busy reject from the host's busy budget and the
// source's (s may be nil), and counts it as sent or withheld. Call with h.mu
// held.
func (h *Host) busyAllowedLocked(s *sourceState, now time.Time) bool {
	if s != nil && now.Sub(s.busyLast) < busyGap {
		h.adm.busyWithheld.Add(1)
		return false
	}
	if !h.adm.busy.take(now) {
		h.adm.busyWithheld.Add(1)
		return false
	}
	if s != nil {
		s.busyLast = now
	}
	h.adm.busySent.Add(1)
	return true
}

// slot is a link slot reserved by reserveSlot: an ID nobody else is given,
// counted against the server's and the source's limits until the link is
// registered (registerPending) or the slot released (releaseSlot).
type slot struct {
	id   HostID
	src  *sourceState
	user string // the user whose session the slot holds ("": anonymous)
	// replaces is the user's earlier session, to kick (SessionReplace).
	replaces HostID
	// takes is the user's suspended session, whose HostID the slot
	// reuses: the new link takes it over (resume.go, takeOver).
	takes HostID
}

// reserveSlot is admission stage 5: it checks every capacity limit and
// reserves a slot, or returns the reject reason to send.
//
// The user's session is decided here, atomically with the reservation
// (sessionLocked): a refused duplicate login gets its reject before any
// capacity is counted, and the slot becomes the user's session at once.
func (h *Host) reserveSlot(from netip.AddrPort, src netip.Addr, now time.Time, user string) (slot, byte, bool) {
	a := &h.adm
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return slot{}, 0, false
	}
	reject, replaces, takes := h.sessionLocked(user, from)
	if reject != 0 {
		return slot{}, reject, false
	}
	if len(h.byID)+a.reserving >= h.cfg.MaxLinks {
		a.full.Add(1)
		return slot{}, rejectFull, false
	}
	if h.cfg.MaxPending > 0 && a.npending >= h.cfg.MaxPending {
		a.pendingFull.Add(1)
		return slot{}, rejectBusy, false
	}
	s := h.sourceLocked(src, now, true)
	if h.cfg.SourceLinks > 0 && s.links >= h.cfg.SourceLinks {
		a.sourceFull.Add(1)
		return slot{}, rejectFull, false
	}
	if h.cfg.SourcePending > 0 && s.pending >= h.cfg.SourcePending {
		a.sourceFull.Add(1)
		return slot{}, rejectBusy, false
	}
	s.links++
	s.pending++
	a.npending++
	a.reserving++
	id := takes
	if id == NoHost {
		id = h.allocIDLocked()
		h.reserved[id] = struct{}{}
	}
	if user != "" && h.cfg.DuplicateLogin != SessionMany {
		h.users[user] = id
	}
	return slot{id: id, src: s, user: user, replaces: replaces, takes: takes}, 0, true
}

// releaseSlot gives back a slot whose link was never registered.
func (h *Host) releaseSlot(sl slot) {
	a := &h.adm
	h.mu.Lock()
	delete(h.reserved, sl.id)
	a.reserving--
	a.npending--
	sl.src.links--
	sl.src.pending--
	if sl.user != "" && h.users[sl.user] == sl.id && h.byID[sl.id] == nil {
		delete(h.users, sl.user)
	}
	h.mu.Unlock()
}

// registerPending puts the link made in slot sl in the host, unconfirmed.
// It reports false if the host closed meanwhile (the slot is released).
func (h *Host) registerPending(sl slot, l *link, from netip.AddrPort) bool {
	a := &h.adm
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.releaseSlot(sl)
		return false
	}
	delete(h.reserved, sl.id)
	a.reserving--
	key := helloKey{from, l.clientPub}
	h.byID[sl.id] = l
	a.byHello[key] = l
	a.links[l] = &admitted{src: sl.src, key: key, pending: true}
	h.mu.Unlock()
	return true
}

// linkConfirmed moves a server link from pending to confirmed: it no longer
// counts against the unconfirmed limits, a hello like the one that made it
// is a replay from now on, and it becomes the link indexed at its address
// unless a confirmed link already is (that one is never displaced by a
// handshake). Call without l.mu.
func (h *Host) linkConfirmed(l *link) {
	a := &h.adm
	h.mu.Lock()
	defer h.mu.Unlock()
	e := a.links[l]
	if e == nil || !e.pending {
		return
	}
	e.pending = false
	a.npending--
	e.src.pending--
	if cur := h.byAddr[e.key.addr]; cur == nil || cur == l {
		h.byAddr[e.key.addr] = l
	}
}

// forgetAdmittedLocked drops the admission record of a link being removed.
// Call with h.mu held.
func (h *Host) forgetAdmittedLocked(l *link) {
	a := &h.adm
	e := a.links[l]
	if e == nil {
		return
	}
	delete(a.links, l)
	if a.byHello[e.key] == l {
		delete(a.byHello, e.key)
	}
	e.src.links--
	if e.pending {
		a.npending--
		e.src.pending--
	}
}

// sweepSources forgets sources with no link that have been quiet for
// sourceIdleAfter. The timer goroutine calls it about once a second.
func (h *Host) sweepSources(now time.Time) {
	if !h.cfg.Accept {
		return
	}
	a := &h.adm
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Sub(a.lastSweep) < time.Second {
		return
	}
	a.lastSweep = now
	for k, s := range a.sources {
		if s.links == 0 && now.Sub(s.seen) >= sourceIdleAfter {
			delete(a.sources, k)
		}
	}
}

// pendingExpiredLocked reports whether l is a server link still unconfirmed
// after PendingTimeout, and counts it. Call with l.mu held.
func (h *Host) pendingExpiredLocked(l *link, now time.Time) bool {
	if !h.cfg.Accept || l.confirmed || now.Sub(l.since) < h.cfg.PendingTimeout {
		return false
	}
	h.adm.expired.Add(1)
	return true
}
