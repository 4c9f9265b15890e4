package net

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Credentials in the handshake (docs/PROTOCOL.md, "Credentials"). A client
// that dials with credentials sets hello flag bit 2; the server's cookie
// reply then also carries its static key S; the client checks S against its
// trust (trustServerKey) and only then seals the credentials to it, with a
// key only the holder of S can derive (X25519 of its ephemeral key and S),
// in the second hello. The server opens them after the cookie check and
// runs Config.Authenticate before it takes a slot, an ID or a link.

// AuthRequest is what a server's Authenticate hook decides on.
type AuthRequest struct {
	// Credentials are the bytes the client gave DialWith, opened from the
	// sealed auth block (at most MaxCredentials; empty if the client sent
	// none). The hook owns them.
	Credentials []byte
	// Addr is the client's address, proven by the cookie round trip.
	Addr netip.AddrPort
	// ServerKey is the server's static key the client sealed the
	// credentials to (the key it trusts): a connect token names it.
	ServerKey ServerKey
}

// AuthResult is who the hook says the client is.
type AuthResult struct {
	// User is the client's user ID (at most MaxUserID bytes). Empty: an
	// anonymous client, never subject to Config.DuplicateLogin.
	User string
	// Data is the per-connection user data the server keeps with the link
	// (a display name, a role; at most MaxUserData bytes).
	Data []byte
}

// Bounds on what an Authenticate hook may return: more is a hook bug, and
// the client is refused with ErrAuthUnavailable (and it is logged).
const (
	MaxUserID   = 128
	MaxUserData = 1024
)

// User is who the peer of a server link is, as the Authenticate hook said
// (Host.User, Event.User). It is shared: do not modify it.
type User struct {
	ID   string
	Data []byte
}

// SessionPolicy says what a server does with a login of a user ID that
// already has a session (Config.DuplicateLogin).
type SessionPolicy uint8

const (
	// SessionReplace (the default) admits the new login and kicks the old
	// session: its client's EventDisconnected carries ErrSessionReplaced.
	SessionReplace SessionPolicy = iota
	// SessionRefuse refuses the new login: Dial returns ErrAlreadyLoggedIn.
	SessionRefuse
	// SessionMany lets a user have any number of sessions. As the user
	// then does not tell its clients apart, a login takes over a
	// suspended session of the same user only from that session's own
	// address (ErrSessionRestarted).
	SessionMany
)

// DialOptions are the options of one DialWith.
type DialOptions struct {
	// Credentials are sent to the server sealed inside the handshake (at
	// most MaxCredentials bytes), for its Config.Authenticate hook: a
	// connect token (engine/token), a session ticket, a profile. Empty:
	// none are sent (a server with a hook then sees empty credentials).
	Credentials []byte
}

// authState is a server's authentication pipeline: the pending handshakes
// (by client ephemeral key: retransmitted hellos are dropped while the
// hook runs, and refused ones get the same refusal again for a while), the
// workers' queue and the counters.
type authState struct {
	jobs   chan *authJob
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	pending  map[[keySize]byte]*authEntry
	inflight int                // entries whose hook has not answered
	bySource map[netip.Addr]int // of those, per source (AuthPerSource)

	logins, replaced, queueFull, sourceBusy, duplicates, badSeal atomic.Uint64
	refused                                                      [numRefusals]atomic.Uint64
}

// authEntry is a handshake the hook is deciding or has refused.
type authEntry struct {
	addr   netip.AddrPort
	src    netip.Addr // the source charged while the hook runs
	reject byte       // 0 while the hook runs; the reject sent once refused
	until  time.Time  // a refused entry is forgotten then
}

// authJob is one hook call, with what admission needs after it.
type authJob struct {
	hl   hello // Auth copied out of the datagram, Cookie dropped
	from netip.AddrPort
	src  netip.Addr
	conn PacketConn
	es   []byte // X25519(S, e_c), reused by accept
	req  *AuthRequest
}

// authRefusedFor is how long a refused handshake's verdict is kept, so the
// client's retransmitted hello gets the same reject rather than a second
// hook call (a connect token would then look replayed).
const authRefusedFor = 3 * time.Second

// maxAuthRefused bounds the refused verdicts kept; past it a refusal is not
// remembered (a retransmission runs the hook again).
const maxAuthRefused = 4096

// Refusal reasons, indexing AuthStats.Refused.
const (
	refusalUnauthorized = iota
	refusalBanned
	refusalExpired
	refusalAlreadyLoggedIn
	refusalUnavailable
	numRefusals
)

// AuthStats counts a server's authentication decisions (Config.Authenticate).
type AuthStats struct {
	// Logins counts clients the hook accepted (before the capacity checks
	// of admission stage 5).
	Logins uint64
	// Unauthorized, Banned, Expired, AlreadyLoggedIn and Unavailable count
	// refusals by the reason sent (AlreadyLoggedIn includes
	// SessionRefuse's; Unavailable includes hook timeouts).
	Unauthorized, Banned, Expired, AlreadyLoggedIn, Unavailable uint64
	// Replaced counts sessions kicked by a new login of their user
	// (SessionReplace).
	Replaced uint64
	// QueueFull counts handshakes refused as busy because the hook's
	// workers and queue were all taken.
	QueueFull uint64
	// SourceBusy counts handshakes refused as busy because their source
	// already had Config.AuthPerSource of them in the hook's hands.
	SourceBusy uint64
	// Duplicates counts retransmitted hellos dropped while their hook ran.
	Duplicates uint64
	// BadSeal counts auth blocks that did not open (refused as
	// unauthorized).
	BadSeal uint64
	// InFlight is the number of handshakes the hook is deciding.
	InFlight int
}

func (h *Host) authStats() AuthStats {
	a := &h.auth
	var inflight int
	if a.pending != nil {
		a.mu.Lock()
		inflight = a.inflight
		a.mu.Unlock()
	}
	return AuthStats{
		Logins:          a.logins.Load(),
		Unauthorized:    a.refused[refusalUnauthorized].Load(),
		Banned:          a.refused[refusalBanned].Load(),
		Expired:         a.refused[refusalExpired].Load(),
		AlreadyLoggedIn: a.refused[refusalAlreadyLoggedIn].Load(),
		Unavailable:     a.refused[refusalUnavailable].Load(),
		Replaced:        a.replaced.Load(),
		QueueFull:       a.queueFull.Load(),
		SourceBusy:      a.sourceBusy.Load(),
		Duplicates:      a.duplicates.Load(),
		BadSeal:         a.badSeal.Load(),
		InFlight:        inflight,
	}
}

// initAuth starts a server's authentication pipeline: the workers, unless
// the hook runs inline. They end when the host closes.
func (h *Host) initAuth() {
	if !h.cfg.Accept || h.cfg.Authenticate == nil {
		return
	}
	a := &h.auth
	a.pending = make(map[[keySize]byte]*authEntry)
	a.bySource = make(map[netip.Addr]int)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	if h.cfg.AuthInline {
		return
	}
	a.jobs = make(chan *authJob, h.cfg.AuthQueue)
	h.wg.Add(h.cfg.AuthWorkers)
	for range h.cfg.AuthWorkers {
		go h.authWorker()
	}
}

// stopAuth cancels the hooks' context (Shutdown, before it waits for the
// workers).
func (h *Host) stopAuth() {
	if h.auth.cancel != nil {
		h.auth.cancel()
	}
}

func (h *Host) authWorker() {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			return
		case j := <-h.auth.jobs:
			h.runAuth(j)
		}
	}
}

// authenticate is admission stage 4b for a server with a hook: on the
// reading goroutine, dedup, open the credentials, then run the hook inline
// or queue it for the workers (never blocking).
func (h *Host) authenticate(hl hello, from netip.AddrPort, src netip.Addr, conn PacketConn, now time.Time) {
	a := &h.auth
	a.mu.Lock()
	if e := a.pending[hl.Pub]; e != nil {
		reject := e.reject
		same := e.addr == from
		a.mu.Unlock()
		switch {
		case !same:
			h.drops.add(DropUnexpected)
		case reject != 0:
			h.drops.add(DropReplay)
			h.replyOn(conn, appendReject(nil, reject, &hl.Pub), from)
		default:
			a.duplicates.Add(1)
			h.drops.add(DropReplay)
		}
		return
	}
	a.mu.Unlock()
	static, spub, _ := h.ident.Load().key(hl.KeyID)
	// (j.hl's key from the start: a refusal below is remembered under it.)
	j := &authJob{hl: hello{Pub: hl.Pub}, from: from, src: src, conn: conn, req: &AuthRequest{Addr: from, ServerKey: *spub}}
	if len(hl.Auth) > 0 {
		es, err := agree(static, hl.Pub[:])
		if err != nil {
			h.drops.add(DropMalformed)
			return
		}
		creds, err := openCredentials(es, &hl, spub)
		if err != nil {
			a.badSeal.Add(1)
			h.drops.add(DropBadSeal)
			h.refuse(j, ErrUnauthorized, now)
			return
		}
		j.es = es
		j.req.Credentials = creds
		hl.Auth = append([]byte(nil), hl.Auth...)
	}
	hl.Cookie = nil
	j.hl = hl
	if h.cfg.AuthInline {
		h.runAuth(j)
		return
	}
	a.mu.Lock()
	if a.inflight >= h.cfg.AuthWorkers+h.cfg.AuthQueue {
		a.mu.Unlock()
		h.authBusy(j, &a.queueFull)
		return
	}
	if a.bySource[src] >= h.cfg.AuthPerSource {
		a.mu.Unlock()
		h.authBusy(j, &a.sourceBusy)
		return
	}
	a.pending[hl.Pub] = &authEntry{addr: from, src: src}
	a.inflight++
	a.bySource[src]++
	a.mu.Unlock()
	select {
	case a.jobs <- j:
	default:
		a.mu.Lock()
		a.answeredLocked(hl.Pub)
		a.mu.Unlock()
		h.authBusy(j, &a.queueFull)
	}
}

// answeredLocked forgets a handshake whose hook call ended (or never
// started), if it is still in flight. Call with a.mu held.
func (a *authState) answeredLocked(pub [keySize]byte) {
	e := a.pending[pub]
	if e == nil || e.reject != 0 {
		return
	}
	a.inflight--
	delete(a.pending, pub)
	if n := a.bySource[e.src] - 1; n > 0 {
		a.bySource[e.src] = n
	} else {
		delete(a.bySource, e.src)
	}
}

// authBusy refuses a handshake the hook has no room for (busy, retry),
// counted in why: QueueFull or SourceBusy, not both.
func (h *Host) authBusy(j *authJob, why *atomic.Uint64) {
	why.Add(1)
	h.hsFail.Add(1)
	h.drops.add(DropRateLimited)
	h.sendBusy(j.conn, j.from, j.hl.Pub)
}

// runAuth calls the hook (on a worker, or inline) and admits or refuses
// the client.
func (h *Host) runAuth(j *authJob) {
	a := &h.auth
	ctx, cancel := context.WithTimeout(a.ctx, h.cfg.AuthTimeout)
	res, err := h.cfg.Authenticate(ctx, j.req)
	cancel()
	now := time.Now()
	if err == nil && (len(res.User) > MaxUserID || len(res.Data) > MaxUserData) {
		h.log.Error("Authenticate returned a user ID or data over its bound", "user_bytes", len(res.User), "data_bytes", len(res.Data))
		err = fmt.Errorf("%w: hook result too large", ErrAuthUnavailable)
	}
	if err != nil {
		h.log.Debug("login refused", "addr", j.from, "error", err)
		h.refuse(j, err, now)
		return
	}
	a.logins.Add(1)
	reject := h.admit(j.hl, j.from, j.src, j.conn, now, &authOK{es: j.es, key: j.req.ServerKey, user: &User{ID: res.User, Data: res.Data}})
	a.mu.Lock()
	a.answeredLocked(j.hl.Pub)
	if reject != 0 {
		h.rememberRefusalLocked(j, reject, now)
	}
	a.mu.Unlock()
}

// refuse sends the reject for a refusal err and remembers it for the
// client's retransmissions.
func (h *Host) refuse(j *authJob, err error, now time.Time) {
	a := &h.auth
	code, idx := refusalCode(err)
	a.refused[idx].Add(1)
	h.hsFail.Add(1)
	a.mu.Lock()
	a.answeredLocked(j.hl.Pub)
	h.rememberRefusalLocked(j, code, now)
	a.mu.Unlock()
	h.replyOn(j.conn, appendReject(nil, code, &j.hl.Pub), j.from)
}

// rememberRefusalLocked keeps a refusal for authRefusedFor, if there is
// room. Call with h.auth.mu held.
func (h *Host) rememberRefusalLocked(j *authJob, code byte, now time.Time) {
	a := &h.auth
	if len(a.pending)-a.inflight >= maxAuthRefused {
		return
	}
	a.pending[j.hl.Pub] = &authEntry{addr: j.from, reject: code, until: now.Add(authRefusedFor)}
}

// sweepAuth forgets refusals past authRefusedFor. The timer goroutine calls
// it about once a second (with sweepSources).
func (h *Host) sweepAuth(now time.Time) {
	a := &h.auth
	if a.pending == nil {
		return
	}
	a.mu.Lock()
	for k, e := range a.pending {
		if e.reject != 0 && now.After(e.until) {
			delete(a.pending, k)
		}
	}
	a.mu.Unlock()
}

// refusalCode maps a hook's error to the reject sent and the counter.
// Errors that wrap none of the refusal reasons are ErrUnauthorized (a hook
// fails closed); a hook that ran out of time is ErrAuthUnavailable.
func refusalCode(err error) (byte, int) {
	switch {
	case errors.Is(err, ErrBanned):
		return rejectBanned, refusalBanned
	case errors.Is(err, ErrExpired):
		return rejectExpired, refusalExpired
	case errors.Is(err, ErrAlreadyLoggedIn):
		return rejectAlreadyLoggedIn, refusalAlreadyLoggedIn
	case errors.Is(err, ErrAuthUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return rejectAuthUnavailable, refusalUnavailable
	}
	return rejectUnauthorized, refusalUnauthorized
}

// authOK is what a hook's acceptance hands to accept: the X25519 with the
// server's static key already computed to open the credentials, and the
// user.
type authOK struct {
	es   []byte
	key  ServerKey // the static key es was computed with
	user *User
}

// admit is admission stage 5 and accept: reserve a slot (deciding the
// user's session), kick a replaced session, run the key agreement. It
// returns the reject it sent (0: none).
func (h *Host) admit(hl hello, from netip.AddrPort, src netip.Addr, conn PacketConn, now time.Time, au *authOK) byte {
	var user string
	if au != nil {
		user = au.user.ID
	}
	sl, reason, ok := h.reserveSlot(from, src, now, user)
	if !ok {
		if reason == rejectAlreadyLoggedIn {
			// Counted before the reject goes: the client may look at
			// once.
			h.auth.refused[refusalAlreadyLoggedIn].Add(1)
		}
		if reason != 0 {
			h.hsFail.Add(1)
			h.replyOn(conn, appendReject(nil, reason, &hl.Pub), from)
		}
		return reason
	}
	if sl.replaces != NoHost {
		h.auth.replaced.Add(1)
		h.log.Info("session replaced by a new login", "user", user, "old", sl.replaces, "new", sl.id)
		_ = h.closeLink(sl.replaces, ErrSessionReplaced, "signed in elsewhere")
	}
	if sl.takes != NoHost {
		h.takeOver(sl.takes, user, from)
	}
	if !h.accept(hl, sl, from, now, conn, au) {
		h.releaseSlot(sl)
		if sl.takes != NoHost {
			// The session taken over ends here.
			h.events.Push(Event{Kind: EventDisconnected, Peer: sl.takes, Err: ErrTimeout, Received: now})
		}
	}
	return 0
}

// sessionLocked decides what a login of user from the address from does
// to the user's existing session: the single place where "this user
// already has a session" is decided. It returns the reject to send (0: go
// on), the session to kick (NoHost: none) and the suspended session the
// login takes over (NoHost: none). Call with h.mu held.
//
// Under SessionMany a user may have several sessions (the arena's windows
// on one computer share a profile by default, so a user), and the user alone does
// not say that a login is a suspended session's client restarted: it may
// be another client of the same user, which must not inherit the
// session. Only a login from the suspended session's own address takes
// it over: that address, proven by the cookie round trip (a TCP-fallback
// address is one connection's), now answers for the new client, so the
// old client can no longer be reached there and its link would only be
// replaced (addLink). docs/SEMANTICS.md, "Reconnect and resume".
func (h *Host) sessionLocked(user string, from netip.AddrPort) (reject byte, replaces HostID, takes HostID) {
	if user == "" {
		return 0, NoHost, NoHost
	}
	if h.cfg.DuplicateLogin == SessionMany {
		if l := h.byAddr[from]; l != nil && l.away.Load() && l.user != nil && l.user.ID == user {
			return 0, NoHost, l.id
		}
		return 0, NoHost, NoHost
	}
	old, ok := h.users[user]
	if !ok {
		return 0, NoHost, NoHost
	}
	if l := h.byID[old]; l != nil && l.away.Load() {
		// The user's session is suspended (its client vanished, a
		// process restart among the likely causes): the login takes it
		// over, whatever the policy (resume.go, takeOver).
		return 0, NoHost, old
	}
	if h.cfg.DuplicateLogin == SessionRefuse {
		return rejectAlreadyLoggedIn, NoHost, NoHost
	}
	return 0, old, NoHost
}

// User returns who the peer id is, as the server's Authenticate hook said
// (on a server; false for an unknown link or a server without a hook).
func (h *Host) User(id HostID) (User, bool) {
	l := h.link(id)
	if l == nil || l.user == nil {
		return User{}, false
	}
	return *l.user, true
}

// Sealing the credentials.

const authBlockLabel = "skein v4 credentials"

// credentialsKey derives the key of an auth block from es = X25519(e_c, S),
// salted with the hello's fixed fields (kind, version, flags, e_c, key ID),
// the resume ticket ID and S.
func credentialsKey(es []byte, hl *hello, s *ServerKey) ([]byte, error) {
	d := sha256.New()
	var b [helloCookieLen]byte
	b[0] = kindHello
	binary.LittleEndian.PutUint16(b[1:], hl.Version)
	b[3] = hl.Flags
	copy(b[4:], hl.Pub[:])
	copy(b[4+keySize:], hl.KeyID[:])
	d.Write([]byte(authBlockLabel))
	d.Write(b[:])
	d.Write(hl.Ticket[:])
	d.Write(s[:])
	key, err := hkdf.Key(sha256.New, es, d.Sum(nil), authBlockLabel+" key", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("skein/net: credentials key: %w", err)
	}
	return key, nil
}

// sealCredentials returns the auth block for creds. The key is used once
// (e_c is fresh for each Dial) and the block is sealed once per Dial, so a
// zero nonce is safe; a retransmitted hello carries the same bytes.
func sealCredentials(es []byte, hl *hello, s *ServerKey, creds []byte) ([]byte, error) {
	aead, err := credentialsAEAD(es, hl, s)
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	return aead.Seal(nil, nonce[:], creds, nil), nil
}

// openCredentials opens hl's auth block (a copy: hl.Auth aliases the
// datagram and stays intact for the transcript).
func openCredentials(es []byte, hl *hello, s *ServerKey) ([]byte, error) {
	aead, err := credentialsAEAD(es, hl, s)
	if err != nil {
		return nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	p, err := aead.Open(nil, nonce[:], hl.Auth, nil)
	if err != nil {
		return nil, errBadSeal
	}
	return p, nil
}

// credentialsAEAD is the AEAD of an auth block (credentialsKey), for
// sealCredentials and openCredentials.
func credentialsAEAD(es []byte, hl *hello, s *ServerKey) (cipher.AEAD, error) {
	key, err := credentialsKey(es, hl, s)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("skein/net: credentials: %w", err)
	}
	return aead, nil
}
