package net

import (
	"context"
	"crypto/ecdh"
	"crypto/subtle"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// helloVersion is the version Dial announces; tests change it.
var helloVersion = ProtocolVersion

// maxPendingDials bounds the handshakes a client runs at once.
const maxPendingDials = 8

// pendingDial is a client handshake in progress.
type pendingDial struct {
	priv  *ecdh.PrivateKey
	pub   [keySize]byte
	flags byte
	keyID KeyID  // the server key the hello names
	creds []byte // credentials to seal (helloAuth)

	mu     sync.Mutex
	cookie []byte
	// Welcomes that failed to open: the static key the last one claimed
	// (guarded by mu), so a Dial that times out can say the server never
	// proved it.
	badWelcomes int
	claimed     ServerKey
	// auth is the sealed auth block once the cookie reply named a key the
	// client trusts (sealedTo); guarded by mu.
	auth     []byte
	sealedTo ServerKey
	// linked: a welcome made the server link; a copy of it is a
	// duplicate (guarded by mu).
	linked bool
	kick   chan struct{} // a cookie arrived: send the hello again now
	done   chan error    // the outcome, once
}

// ours reports whether a cookie reply's or a reject's dial tag is this
// Dial's: the hello's key is fresh for each Dial, so a late answer to an
// earlier Dial to the same server, from the same socket, is not taken for
// this one's.
func (d *pendingDial) ours(tag []byte) bool {
	return subtle.ConstantTimeCompare(tag, dialTag(&d.pub)) == 1
}

func (d *pendingDial) finish(err error) {
	select {
	case d.done <- err:
	default:
	}
}

// Dial connects to the server at addr over the host's socket: hello,
// stateless cookie, X25519 key agreement with the server's ephemeral and
// static keys, welcome (docs/PROTOCOL.md, "Handshake"). The welcome opens
// only if the server holds the private half of the static key it names;
// that key must then be one of Config.ServerKeys (if any) and pass
// Config.VerifyServerKey (if set), or Dial returns a *ServerKeyError
// (errors.Is: ErrServerKeyMismatch) having sent nothing after its hello.
// On success the host has a link to ServerID, ID() returns the HostID the
// server assigned, ServerKey() the key it proved, and an EventConnected
// for ServerID is queued. A refusal is a *RejectError (errors.Is:
// ErrVersionMismatch, ErrServerFull, ErrBadCookie, ErrServerBusy); no
// answer in time is ErrHandshakeTimeout (inside a *ServerKeyError with
// Proven false if welcomes came that failed to open).
func (h *Host) Dial(ctx context.Context, addr netip.AddrPort) error {
	return h.DialWith(ctx, addr, DialOptions{})
}

// DialWith is Dial with options: opts.Credentials are sent sealed to the
// server's static key, after the client checked that key against its trust
// (as Dial checks the welcome's; a key it does not trust gets no
// credentials and Dial returns a *ServerKeyError), for the server's
// Config.Authenticate. A refusal is a *RejectError wrapping
// ErrUnauthorized, ErrBanned, ErrExpired, ErrAlreadyLoggedIn or
// ErrAuthUnavailable.
func (h *Host) DialWith(ctx context.Context, addr netip.AddrPort, opts DialOptions) error {
	if len(opts.Credentials) > MaxCredentials {
		return fmt.Errorf("dial %v: %d bytes of credentials (max %d): %w", addr, len(opts.Credentials), MaxCredentials, ErrTooLarge)
	}
	h.bt.giveBack() // the welcome must be read while it waits
	if h.cfg.Accept {
		return fmt.Errorf("dial %v: a server host does not dial", addr)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.HandshakeTimeout)
		defer cancel()
	}
	priv, err := newKeyPair()
	if err != nil {
		return err
	}
	d := &pendingDial{priv: priv, kick: make(chan struct{}, 1), done: make(chan error, 1)}
	copy(d.pub[:], priv.PublicKey().Bytes())
	if prefersAES(h.cfg.Cipher) {
		d.flags |= helloAES
	}
	if len(h.cfg.ServerKeys) > 0 {
		d.keyID = h.cfg.ServerKeys[0].ID()
	}
	if len(h.cfg.ServerCAs) > 0 {
		d.flags |= helloCert
	}
	if len(opts.Credentials) > 0 {
		d.flags |= helloAuth
		d.creds = append([]byte(nil), opts.Credentials...)
	}

	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return ErrHostClosed
	case h.byID[ServerID] != nil:
		h.mu.Unlock()
		return fmt.Errorf("dial %v: %w", addr, ErrAlreadyConnected)
	case len(h.dials) >= maxPendingDials || h.dials[addr] != nil:
		h.mu.Unlock()
		return fmt.Errorf("dial %v: too many handshakes in progress", addr)
	}
	h.dials[addr] = d
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.dials, addr)
		h.mu.Unlock()
	}()

	wait := 200 * time.Millisecond
	for {
		d.mu.Lock()
		hl := hello{Version: helloVersion, Flags: d.flags, Pub: d.pub, KeyID: d.keyID, Cookie: d.cookie}
		if d.flags&helloAuth != 0 {
			// The cookie goes with the sealed credentials, or not at all.
			hl.Cookie, hl.Auth = nil, nil
			if d.auth != nil && len(d.cookie) > 0 {
				hl.Cookie, hl.Auth = d.cookie, d.auth
			}
		}
		pkt := appendHello(make([]byte, 0, helloSize), hl)
		d.mu.Unlock()
		if _, err := h.conn.WriteTo(pkt, addr); err == nil {
			h.traffic.out(len(pkt))
		}
		t := time.NewTimer(wait)
		select {
		case err := <-d.done:
			t.Stop()
			if err != nil {
				h.hsFail.Add(1)
				return fmt.Errorf("dial %v: %w", addr, err)
			}
			h.hsOK.Add(1)
			return nil
		case <-d.kick:
			t.Stop()
		case <-t.C:
			wait = min(wait*3/2, time.Second)
		case <-ctx.Done():
			t.Stop()
			h.hsFail.Add(1)
			if ctx.Err() == context.DeadlineExceeded {
				d.mu.Lock()
				bad, claimed := d.badWelcomes, d.claimed
				d.mu.Unlock()
				clear(d.creds)
				if bad > 0 {
					return fmt.Errorf("dial %v: %w", addr, &ServerKeyError{Seen: claimed, Reason: ErrHandshakeTimeout})
				}
				return fmt.Errorf("dial %v: %w", addr, ErrHandshakeTimeout)
			}
			return fmt.Errorf("dial %v: %w", addr, ctx.Err())
		case <-h.done:
			t.Stop()
			return ErrHostClosed
		}
	}
}

func (h *Host) pendingDial(from netip.AddrPort) *pendingDial {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.dials[from]
}

// handleCookie stores the server's cookie and makes Dial resend its hello.
// A Dial with credentials also gets the server's static key: it checks it
// against its trust and seals the credentials to it (sealFor).
func (h *Host) handleCookie(b []byte, from netip.AddrPort, now time.Time) {
	d := h.pendingDial(from)
	if d == nil {
		h.drops.add(DropUnexpected)
		return
	}
	tag, c, key, cert, err := parseCookie(b)
	if err != nil {
		h.drops.add(DropMalformed)
		return
	}
	if !d.ours(tag) {
		// The answer to another hello: an earlier Dial's, late (which
		// may have asked for another layout: its credentials or a
		// certificate).
		h.drops.add(DropUnexpected)
		return
	}
	if (d.flags&helloAuth != 0) != (key != nil) || (cert != nil && d.flags&helloCert == 0) {
		h.drops.add(DropMalformed)
		return
	}
	if key != nil && !h.sealFor(d, key, cert, now) {
		return
	}
	d.mu.Lock()
	d.cookie = append(d.cookie[:0], c...)
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (h *Host) handleReject(b []byte, from netip.AddrPort) {
	d := h.pendingDial(from)
	if d == nil {
		h.drops.add(DropUnexpected)
		return
	}
	code, version, tag, err := parseReject(b)
	if err != nil {
		h.drops.add(DropMalformed)
		return
	}
	if (tag != nil && !d.ours(tag)) || (tag == nil && version == helloVersion) {
		// The answer to another hello (an earlier Dial's, late), or an
		// untagged reject from a server of this version, which tags
		// every reject. (An untagged one, a version mismatch, cannot be
		// bound to the hello: a server of another version does not know
		// where its hello keeps its key.)
		h.drops.add(DropUnexpected)
		return
	}
	d.finish(&RejectError{Reason: rejectReason(code), ServerVersion: version})
}

// handleWelcome completes a client handshake: derive the keys from the
// server's ephemeral and static keys, open the sealed welcome (proving the
// server holds both private halves), check the static key against the
// client's trust, create the server link.
func (h *Host) handleWelcome(b []byte, from netip.AddrPort, now time.Time) {
	d := h.pendingDial(from)
	if d == nil {
		h.drops.add(DropUnexpected)
		return
	}
	if n := welcomeHeader + welcomeBodySize + sealOverhead; len(b) != n && (len(b) != n+certSize || d.flags&helloCert == 0) {
		h.drops.add(DropMalformed)
		return
	}
	d.mu.Lock()
	auth, sealedTo := d.auth, d.sealedTo
	d.mu.Unlock()
	if d.flags&helloAuth != 0 && (auth == nil || [keySize]byte(b[2+keySize:welcomeHeader]) != sealedTo) {
		// Not the server the credentials were sealed to (or no hello
		// with them was sent): it cannot have opened them.
		h.drops.add(DropUnexpected)
		return
	}
	suite := Cipher(b[1])
	if suite != ChaCha20Poly1305 && suite != AES256GCM {
		h.drops.add(DropMalformed)
		return
	}
	epub := b[2 : 2+keySize]
	var static ServerKey
	copy(static[:], b[2+keySize:welcomeHeader])
	ee, err := agree(d.priv, epub)
	if err != nil {
		h.drops.add(DropMalformed)
		return
	}
	es, err := agree(d.priv, static[:])
	if err != nil {
		h.drops.add(DropMalformed)
		return
	}
	hl := hello{Version: helloVersion, Flags: d.flags, Pub: d.pub, KeyID: d.keyID, Auth: auth}
	keys, err := deriveKeys(ee, es, transcriptHash(&hl, b))
	if err != nil {
		h.drops.add(DropMalformed)
		return
	}
	keys.Cipher = suite
	s, err := newSealer(keys)
	if err != nil {
		return
	}
	var nonce [nonceSize]byte
	body, err := s.open(b, 0, welcomeHeader, nonce[:])
	if err != nil {
		// Forged (or corrupted) on the path: the real welcome may still
		// come. Dial reports it if none does.
		h.drops.add(DropBadSeal)
		d.mu.Lock()
		d.badWelcomes++
		d.claimed = static
		d.mu.Unlock()
		return
	}
	w, err := parseWelcomeBody(body)
	if err != nil || w.ClientID < FirstClientID {
		h.drops.add(DropMalformed)
		return
	}
	// The server proved static. Trust it or send it nothing more.
	if err := h.trustServerKey(static, w.Cert, now); err != nil {
		h.log.Warn("server key refused", "server", from, "fingerprint", static.Fingerprint(), "error", err)
		d.finish(&ServerKeyError{Seen: static, Proven: true, Reason: err})
		return
	}
	d.mu.Lock()
	dup := d.linked
	d.linked = true
	d.mu.Unlock()
	if dup {
		// The same welcome again (the server resends it for each
		// retransmitted hello), read before Dial forgot d: the link
		// exists already.
		h.drops.add(DropReplay)
		return
	}
	h.srvKey.Store(&static)
	l, err := newLink(h, ServerID, w.ClientID, keys, h.DirectPath(from), now)
	if err != nil {
		d.finish(err)
		return
	}
	l.confirmed = true
	h.id.Store(uint32(w.ClientID))
	h.srvAddr.set(from)
	h.addLink(l)
	h.events.Push(Event{Kind: EventConnected, Peer: ServerID, Received: now})
	h.log.Debug("connected", "server", from, "id", w.ClientID)
	// Confirm at once: the server counts the client as connected on its
	// first authenticated datagram.
	l.mu.Lock()
	l.queuePingLocked(now)
	out, p := l.takeLocked()
	l.mu.Unlock()
	l.writeOut(out, p)
	clear(d.creds)
	d.finish(nil)
}

// handleHello is the server side of the handshake: admission (admit.go
// lists its stages), then accept. It keeps no state until the client echoes
// a valid cookie, takes no slot and runs no key agreement before every
// cheap check passed, and never answers with more bytes than it received.
func (h *Host) handleHello(b []byte, from netip.AddrPort, now time.Time, conn PacketConn) {
	if !h.cfg.Accept {
		h.drops.add(DropUnexpected)
		return
	}
	if len(b) < helloSize {
		h.drops.add(DropMalformed)
		return
	}
	hl, err := parseHello(b)
	if err != nil {
		h.drops.add(DropMalformed)
		return
	}
	src := admitSource(conn, from)
	// Stages 1 and 2: rates, then links that exist.
	v, busy, pending := h.screenHello(hl.Pub, from, src, conn, now)
	switch v {
	case helloClosed:
		return
	case helloBusy:
		h.drops.add(DropRateLimited)
		if busy {
			h.sendBusy(conn, from, hl.Pub)
		}
		return
	case helloReplay:
		h.drops.add(DropReplay)
		return
	case helloWelcome:
		// The welcome was lost: send it again (same bytes, same size).
		pending.mu.Lock()
		w := pending.welcome
		pending.mu.Unlock()
		if w != nil {
			h.replyOn(conn, w, from)
		}
		return
	case helloGo:
	}
	// Stage 3: version, then the cookie.
	if hl.Version != ProtocolVersion {
		h.hsFail.Add(1)
		h.replyOn(conn, appendVersionReject(nil), from)
		return
	}
	// (pub is a copy: hl must not escape, so that the stages above stay
	// free of allocations.)
	if pub := hl.Pub; len(hl.Cookie) == 0 {
		h.replyOn(conn, h.cookieReply(&pub, hl.Flags, hl.KeyID, hl.Long, h.cookies.make(now, from, pub[:])), from)
		return
	} else if !h.cookies.check(now, from, pub[:], hl.Cookie) {
		h.hsFail.Add(1)
		h.replyOn(conn, appendReject(nil, rejectBadCookie, &pub), from)
		return
	}
	// Stage 4: checks on a proven address, then the credentials.
	h.mu.RLock()
	checks := h.admitChecks
	h.mu.RUnlock()
	for _, check := range checks {
		if err := check(hl, from); err != nil {
			h.hsFail.Add(1)
			h.log.Debug("hello refused", "addr", from, "error", err)
			h.sendBusy(conn, from, hl.Pub)
			return
		}
	}
	if h.cfg.Authenticate != nil {
		h.authenticate(hl, from, src, conn, now)
		return
	}
	// Stage 5: capacity; a slot is reserved before the key agreement.
	h.admit(hl, from, src, conn, now, nil)
}

// cookieReply is the answer to a hello without a cookie (its ephemeral
// key pub, whose dial tag the reply echoes): the cookie, and
// for a hello that set helloAuth the static key its key ID selects (the
// key the welcome will prove), with its certificate if the hello asked for
// one and came padded for it. Never larger than the hello.
func (h *Host) cookieReply(pub *[keySize]byte, flags byte, keyID KeyID, long bool, cookie []byte) []byte {
	if flags&helloAuth == 0 {
		return appendCookie(nil, pub, cookie)
	}
	_, spub, cert := h.ident.Load().key(keyID)
	var cb []byte
	if cert != nil && flags&helloCert != 0 && long {
		cb = cert.appendTo(make([]byte, 0, certSize))
	}
	return appendCookieKey(make([]byte, 0, cookieReplySize+keySize+len(cb)), pub, cookie, spub, cb)
}

// sealFor checks the static key a cookie reply named against the client's
// trust and seals the Dial's credentials to it (once: a later reply must
// name the same key). It reports whether the hello may now go with them.
// The key is not proven yet (the reply is cleartext): the welcome must
// prove the same key, or handleWelcome drops it.
func (h *Host) sealFor(d *pendingDial, key, cert []byte, now time.Time) bool {
	s := ServerKey(key)
	d.mu.Lock()
	if d.auth != nil {
		same := d.sealedTo == s
		d.mu.Unlock()
		if !same {
			h.drops.add(DropUnexpected)
		}
		return same
	}
	d.mu.Unlock()
	if err := h.precheckServerKey(s, cert, now); err != nil {
		h.log.Warn("server key refused: credentials not sent", "fingerprint", s.Fingerprint(), "error", err)
		d.finish(&ServerKeyError{Seen: s, Reason: err, BeforeCredentials: true})
		return false
	}
	es, err := agree(d.priv, s[:])
	if err != nil {
		h.drops.add(DropMalformed)
		return false
	}
	hl := hello{Version: helloVersion, Flags: d.flags, Pub: d.pub, KeyID: d.keyID}
	auth, err := sealCredentials(es, &hl, &s, d.creds)
	if err != nil {
		return false
	}
	d.mu.Lock()
	if d.auth == nil {
		d.auth, d.sealedTo = auth, s
	}
	d.mu.Unlock()
	return true
}

// precheckServerKey decides whether a client may seal its credentials to
// the key a cookie reply named, not proven yet: the pins and operator CAs,
// then Config.CheckServerKey if set (never VerifyServerKey, which may
// record the key: a forged cookie reply must not be remembered).
func (h *Host) precheckServerKey(k ServerKey, cert []byte, now time.Time) error {
	if err := h.pinnedServerKey(k, cert, now); err != nil {
		return err
	}
	if h.cfg.CheckServerKey != nil {
		return h.cfg.CheckServerKey(k)
	}
	return nil
}

// trustServerKey decides whether a client trusts the key its server
// proved: one of Config.ServerKeys, or signed by one of Config.ServerCAs
// (cert, from the sealed welcome), if either is set; then
// Config.VerifyServerKey if set.
func (h *Host) trustServerKey(k ServerKey, cert []byte, now time.Time) error {
	if err := h.pinnedServerKey(k, cert, now); err != nil {
		return err
	}
	if h.cfg.VerifyServerKey != nil {
		if err := h.cfg.VerifyServerKey(k); err != nil {
			return err
		}
	}
	return nil
}

// pinnedServerKey checks k against Config.ServerKeys and Config.ServerCAs
// (cert: the operator certificate the server sent), if either is set.
func (h *Host) pinnedServerKey(k ServerKey, cert []byte, now time.Time) error {
	if len(h.cfg.ServerKeys) > 0 || len(h.cfg.ServerCAs) > 0 {
		pinned := false
		for _, p := range h.cfg.ServerKeys {
			if subtle.ConstantTimeCompare(p[:], k[:]) == 1 {
				pinned = true
			}
		}
		if !pinned && len(h.cfg.ServerCAs) == 0 {
			return ErrServerKeyMismatch
		}
		if !pinned {
			if len(cert) == 0 {
				return fmt.Errorf("%w: no operator certificate", ErrBadCert)
			}
			c, err := parseCert(cert)
			if err != nil {
				return err
			}
			if c.Key != k {
				return fmt.Errorf("%w: it signs key %s, not the server's", ErrBadCert, c.Key.Fingerprint())
			}
			if err := c.Verify(h.cfg.ServerCAs, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendBusy answers a hello (its ephemeral key pub) with a busy reject (12
// bytes, never more than the 128-byte hello).
func (h *Host) sendBusy(conn PacketConn, to netip.AddrPort, pub [keySize]byte) {
	h.replyOn(conn, appendReject(nil, rejectBusy, &pub), to)
}

// accept runs the key agreement for a client admitted into slot sl,
// registers its link (unconfirmed) and sends the welcome. It reports false
// if no link was registered: the caller releases the slot.
//
// au is what the Authenticate hook accepted (nil without a hook): its
// X25519 with the static key is reused, and the link gets its user.
func (h *Host) accept(hl hello, sl slot, from netip.AddrPort, now time.Time, conn PacketConn, au *authOK) bool {
	priv, err := newKeyPair()
	if err != nil {
		return false
	}
	ee, err := agree(priv, hl.Pub[:])
	if err != nil {
		h.drops.add(DropMalformed)
		return false
	}
	static, spub, cert := h.ident.Load().key(hl.KeyID)
	var es []byte
	if au != nil && au.es != nil && au.key == *spub {
		es = au.es
	} else if es, err = agree(static, hl.Pub[:]); err != nil {
		return false
	}
	cipher := ChaCha20Poly1305
	if hl.Flags&helloAES != 0 && prefersAES(h.cfg.Cipher) {
		cipher = AES256GCM
	}
	w := make([]byte, 0, welcomeHeader+welcomeBodySize+certSize+sealOverhead)
	w = append(append(w, kindWelcome, byte(cipher)), priv.PublicKey().Bytes()...)
	w = append(w, spub[:]...)
	clientKeys, err := deriveKeys(ee, es, transcriptHash(&hl, w))
	if err != nil {
		return false
	}
	keys := clientKeys.Swap()
	keys.Cipher = cipher

	id := sl.id
	l, err := newLink(h, id, ServerID, keys, directPath{conn, from}, now)
	if err != nil {
		return false
	}
	l.clientPub = hl.Pub
	l.restarted = sl.takes != NoHost
	if au != nil {
		l.user = au.user
	}
	wb := welcomeBody{
		ClientID: id,
		Ping:     uint32(h.cfg.PingInterval / time.Millisecond),
		Timeout:  uint32(h.cfg.Timeout / time.Millisecond),
	}
	if cert != nil && hl.Flags&helloCert != 0 && hl.Long {
		// The hello was padded to helloCertSize: the longer welcome is
		// still smaller than it.
		wb.Cert = cert.appendTo(make([]byte, 0, certSize))
	}
	body := appendWelcomeBody(make([]byte, 0, welcomeBodySize+certSize), wb)
	var nonce [nonceSize]byte
	l.welcome = l.seal.seal(w, 0, body, nonce[:])
	if !h.registerPending(sl, l, from) {
		return true // released by registerPending
	}
	h.replyOn(conn, l.welcome, from)
	return true
}

// allocIDLocked returns an unused HostID. Call with h.mu held.
func (h *Host) allocIDLocked() HostID {
	for {
		id := h.nextID
		h.nextID++
		if h.nextID < FirstClientID {
			h.nextID = FirstClientID
		}
		if _, taken := h.reserved[id]; h.byID[id] == nil && !taken {
			return id
		}
	}
}

// ReserveID takes a HostID from a server's ID space for something that is
// not a link, such as a P2P group: no client is given it until ReleaseID.
// Group IDs and client IDs thus never collide, and "send to X" can name
// either.
func (h *Host) ReserveID() HostID {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.allocIDLocked()
	h.reserved[id] = struct{}{}
	return id
}

// ReleaseID returns an ID taken with ReserveID.
func (h *Host) ReleaseID(id HostID) {
	h.mu.Lock()
	delete(h.reserved, id)
	h.mu.Unlock()
}

func (h *Host) replyOn(conn PacketConn, b []byte, to netip.AddrPort) {
	if _, err := conn.WriteTo(b, to); err == nil {
		h.traffic.out(len(b))
	}
}
