package net

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// authServer starts a loopback server whose hook is fn (cfg.Accept and the
// hook are set here; loopback clients share one source, so the per-source
// limits are off).
func authServer(t *testing.T, cfg Config, fn func(context.Context, *AuthRequest) (AuthResult, error)) *Host {
	t.Helper()
	cfg.Accept = true
	cfg.Authenticate = fn
	cfg.SourceHandshakeRate, cfg.SourceLinks, cfg.SourcePending = -1, -1, -1
	srv, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// dialCreds dials addr from a fresh loopback client with credentials.
func dialCreds(t *testing.T, cfg Config, addr netip.AddrPort, creds string) (*Host, error) {
	t.Helper()
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 3 * time.Second
	}
	cli, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, cli.DialWith(context.Background(), addr, DialOptions{Credentials: []byte(creds)})
}

// nextEvent waits for the next event of h (failing after 5 s: a hang, not
// a timing assertion).
func authEvent(t *testing.T, h *Host) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := h.Next(ctx)
	if err != nil {
		t.Fatalf("no event: %v", err)
	}
	return e
}

// authEventKind waits for the next event of h of kind k, skipping others.
func authEventKind(t *testing.T, h *Host, k EventKind) Event {
	t.Helper()
	for {
		if e := authEvent(t, h); e.Kind == k {
			return e
		}
	}
}

// userHook accepts "user:NAME" as user NAME with data "d:NAME" and refuses
// the rest by name.
func userHook(calls *atomic.Int32) func(context.Context, *AuthRequest) (AuthResult, error) {
	return func(ctx context.Context, r *AuthRequest) (AuthResult, error) {
		calls.Add(1)
		c := string(r.Credentials)
		switch {
		case len(c) > 5 && c[:5] == "user:":
			return AuthResult{User: c[5:], Data: []byte("d:" + c[5:])}, nil
		case c == "banned":
			return AuthResult{}, ErrBanned
		case c == "old":
			return AuthResult{}, ErrExpired
		case c == "odd":
			return AuthResult{}, errors.New("no such user")
		case c == "slow":
			<-ctx.Done()
			return AuthResult{}, ctx.Err()
		case c == "dup":
			return AuthResult{}, ErrAlreadyLoggedIn
		}
		return AuthResult{}, ErrUnauthorized
	}
}

func TestAuthAcceptsAndNamesUser(t *testing.T) {
	var calls atomic.Int32
	var seen struct {
		sync.Mutex
		req AuthRequest
	}
	hook := userHook(&calls)
	srv := authServer(t, Config{}, func(ctx context.Context, r *AuthRequest) (AuthResult, error) {
		seen.Lock()
		seen.req = *r
		seen.Unlock()
		return hook(ctx, r)
	})
	cli, err := dialCreds(t, Config{}, srv.LocalAddr(), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	e := authEvent(t, srv)
	if e.Kind != EventConnected || e.Peer != cli.ID() || e.User == nil || e.User.ID != "alice" || string(e.User.Data) != "d:alice" {
		t.Fatalf("server event %+v (user %+v)", e, e.User)
	}
	u, ok := srv.User(cli.ID())
	if !ok || u.ID != "alice" {
		t.Fatalf("User = %+v, %v", u, ok)
	}
	seen.Lock()
	req := seen.req
	seen.Unlock()
	if string(req.Credentials) != "user:alice" || req.ServerKey != srv.Identity().Current() || req.Addr != cli.LocalAddr() {
		t.Fatalf("hook saw %q key %v addr %v", req.Credentials, req.ServerKey.Fingerprint(), req.Addr)
	}
	if st := srv.Stats().Auth; st.Logins != 1 || calls.Load() != 1 {
		t.Fatalf("auth stats %+v, %d calls", st, calls.Load())
	}
	// The link works, and its end carries the user too.
	if err := cli.Send(ServerID, Reliable, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if e := authEvent(t, srv); e.Kind != EventMessage || string(e.Data) != "hi" {
		t.Fatalf("event %+v", e)
	}
	cli.Close()
	if e := authEvent(t, srv); e.Kind != EventDisconnected || e.User == nil || e.User.ID != "alice" {
		t.Fatalf("event %+v", e)
	}
	if _, ok := srv.User(cli.ID()); ok {
		t.Fatal("User still known after the link ended")
	}
}

// TestAuthRefusalsTyped: every refusal is a typed error at Dial, counted by
// reason, and leaves no state: no link, no pending link, no reserved ID, no
// event.
func TestAuthRefusalsTyped(t *testing.T) {
	var calls atomic.Int32
	srv := authServer(t, Config{AuthTimeout: 50 * time.Millisecond}, userHook(&calls))
	cases := []struct {
		creds string
		want  error
	}{
		{"nobody", ErrUnauthorized},
		{"odd", ErrUnauthorized},
		{"banned", ErrBanned},
		{"old", ErrExpired},
		{"dup", ErrAlreadyLoggedIn},
		{"slow", ErrAuthUnavailable},
		{"", ErrUnauthorized}, // no credentials at all
	}
	for _, c := range cases {
		_, err := dialCreds(t, Config{}, srv.LocalAddr(), c.creds)
		var re *RejectError
		if !errors.Is(err, c.want) || !errors.As(err, &re) {
			t.Fatalf("%q: Dial = %v, want %v", c.creds, err, c.want)
		}
	}
	st := srv.Stats()
	if st.Links != 0 || st.Admission.Pending != 0 || st.Handshakes != 0 {
		t.Fatalf("state after refusals: %+v", st)
	}
	a := st.Auth
	if a.Unauthorized != 3 || a.Banned != 1 || a.Expired != 1 || a.AlreadyLoggedIn != 1 || a.Unavailable != 1 || a.Logins != 0 || a.InFlight != 0 {
		t.Fatalf("auth stats %+v", a)
	}
	srv.mu.RLock()
	reserved, users := len(srv.reserved), len(srv.users)
	srv.mu.RUnlock()
	if reserved != 0 || users != 0 {
		t.Fatalf("%d reserved IDs, %d users", reserved, users)
	}
	if e, ok := srv.Poll(); ok {
		t.Fatalf("event after refusals: %+v", e)
	}
}

// TestAuthKeyCheckedBeforeCredentials: a client pinned to another key
// refuses the key the cookie reply names and sends no credentials: the
// hook never runs.
func TestAuthKeyCheckedBeforeCredentials(t *testing.T) {
	var calls atomic.Int32
	srv := authServer(t, Config{}, userHook(&calls))
	other := mustIdentity(t)
	_, err := dialCreds(t, Config{ServerKeys: []ServerKey{other.Current()}}, srv.LocalAddr(), "user:alice")
	var ke *ServerKeyError
	if !errors.As(err, &ke) || !ke.BeforeCredentials || ke.Seen != srv.Identity().Current() || !errors.Is(err, ErrServerKeyMismatch) {
		t.Fatalf("Dial = %v", err)
	}
	if calls.Load() != 0 || srv.Stats().Auth.Logins != 0 || srv.Stats().Links != 0 {
		t.Fatalf("hook ran %d times, stats %+v", calls.Load(), srv.Stats())
	}
	// Pinned to the right key, and trusting the operator that signed it.
	if _, err := dialCreds(t, Config{ServerKeys: []ServerKey{srv.Identity().Current()}}, srv.LocalAddr(), "user:alice"); err != nil {
		t.Fatal(err)
	}
}

// TestCheckServerKeyBeforeVerify: a Dial with credentials asks
// CheckServerKey about the key the cleartext cookie reply names (a refusal
// sends no credentials and never calls VerifyServerKey, which may record
// the key), and VerifyServerKey only once the welcome proved it.
func TestCheckServerKeyBeforeVerify(t *testing.T) {
	var calls atomic.Int32
	srv := authServer(t, Config{}, userHook(&calls))
	key := srv.Identity().Current()
	var order []string
	var mu sync.Mutex
	note := func(what string, k ServerKey) {
		mu.Lock()
		defer mu.Unlock()
		if k != key {
			t.Errorf("%s called with %s", what, k.Fingerprint())
		}
		order = append(order, what)
	}
	refuse := errors.New("not this key")
	cfg := Config{
		CheckServerKey:  func(k ServerKey) error { note("check", k); return refuse },
		VerifyServerKey: func(k ServerKey) error { note("verify", k); return nil },
	}
	_, err := dialCreds(t, cfg, srv.LocalAddr(), "user:alice")
	var ke *ServerKeyError
	if !errors.As(err, &ke) || !ke.BeforeCredentials || !errors.Is(err, refuse) {
		t.Fatalf("Dial = %v", err)
	}
	mu.Lock()
	got := slices.Clone(order)
	order = nil
	mu.Unlock()
	if !slices.Equal(got, []string{"check"}) || calls.Load() != 0 {
		t.Fatalf("calls %v, hook ran %d times", got, calls.Load())
	}
	cfg.CheckServerKey = func(k ServerKey) error { note("check", k); return nil }
	if _, err := dialCreds(t, cfg, srv.LocalAddr(), "user:alice"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(order, []string{"check", "verify"}) {
		t.Fatalf("calls %v, want check then verify", order)
	}
}

// TestAuthWithOperatorCert: the cookie reply to a hello asking for a
// certificate carries it, so a client trusting only the operator seals its
// credentials to a key the operator signed.
func TestAuthWithOperatorCert(t *testing.T) {
	pub, ca, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := mustIdentity(t)
	id, err = id.WithCert(SignServerKey(ca, id.Current(), time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	srv := authServer(t, Config{Identity: id}, userHook(&calls))
	if _, err := dialCreds(t, Config{ServerCAs: []ed25519.PublicKey{pub}}, srv.LocalAddr(), "user:carol"); err != nil {
		t.Fatal(err)
	}
	// Another operator: refused before the credentials go.
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	_, err = dialCreds(t, Config{ServerCAs: []ed25519.PublicKey{pub2}}, srv.LocalAddr(), "user:carol")
	var ke *ServerKeyError
	if !errors.As(err, &ke) || !ke.BeforeCredentials || !errors.Is(err, ErrBadCert) {
		t.Fatalf("Dial = %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("hook ran %d times", calls.Load())
	}
}

// TestAuthOpenServerIgnoresCredentials: without a hook, credentials are
// carried (and covered by the key derivation) but not used; a hook server
// sees empty credentials from a plain Dial.
func TestAuthOpenServerIgnoresCredentials(t *testing.T) {
	srv := listenServer(t, nil)
	if _, err := dialCreds(t, Config{}, srv.LocalAddr(), "user:dave"); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int32
	hsrv := authServer(t, Config{AuthInline: true}, func(_ context.Context, r *AuthRequest) (AuthResult, error) {
		got.Store(int32(len(r.Credentials)) + 1)
		return AuthResult{}, nil
	})
	if _, err := dialWith(t, Config{}, hsrv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 1 {
		t.Fatalf("hook saw %d bytes of credentials", got.Load()-1)
	}
	if _, err := dialCreds(t, Config{}, hsrv.LocalAddr(), string(make([]byte, MaxCredentials+1))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized credentials: %v", err)
	}
}

// TestAuthSlowHookDoesNotStall: while the hook blocks on one client's
// login, another client's round trips go on, the blocked client's
// retransmitted hellos are deduplicated (one hook call), and it connects
// once the hook answers.
func TestAuthSlowHookDoesNotStall(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var calls atomic.Int32
	srv := authServer(t, Config{AuthTimeout: time.Minute}, func(ctx context.Context, r *AuthRequest) (AuthResult, error) {
		calls.Add(1)
		if string(r.Credentials) == "user:slow" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return AuthResult{}, ctx.Err()
			}
		}
		return AuthResult{User: string(r.Credentials[5:])}, nil
	})
	fast, err := dialCreds(t, Config{}, srv.LocalAddr(), "user:fast")
	if err != nil {
		t.Fatal(err)
	}
	if e := authEvent(t, srv); e.Kind != EventConnected {
		t.Fatalf("event %+v", e)
	}
	slowErr := make(chan error, 1)
	slow, err := Listen("127.0.0.1:0", Config{HandshakeTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	go func() {
		slowErr <- slow.DialWith(context.Background(), srv.LocalAddr(), DialOptions{Credentials: []byte("user:slow")})
	}()
	<-entered
	// The hook is blocked: round trips with the other client go on.
	for i := range 50 {
		msg := []byte{byte(i)}
		if err := fast.Send(ServerID, Reliable, msg); err != nil {
			t.Fatal(err)
		}
		e := authEvent(t, srv)
		if e.Kind != EventMessage || !bytes.Equal(e.Data, msg) {
			t.Fatalf("server event %+v", e)
		}
		if err := srv.Send(e.Peer, Reliable, msg); err != nil {
			t.Fatal(err)
		}
		if e := authEventKind(t, fast, EventMessage); e.Kind != EventMessage || !bytes.Equal(e.Data, msg) {
			t.Fatalf("client event %+v", e)
		}
	}
	// The slow client retransmits (every 200 ms to 1 s): those hellos are
	// dropped as duplicates, not run again.
	deadline := time.Now().Add(10 * time.Second)
	for srv.Stats().Auth.Duplicates == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := srv.Stats().Auth; st.Duplicates == 0 || st.InFlight != 1 {
		t.Fatalf("auth stats while blocked: %+v", st)
	}
	close(release)
	if err := <-slowErr; err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("hook ran %d times", calls.Load())
	}
	if u, ok := srv.User(slow.ID()); !ok || u.ID != "slow" {
		t.Fatalf("User = %+v %v", u, ok)
	}
}

// TestAuthQueueFull: with every worker and queue place taken, a login is
// refused as busy at once, and counted.
func TestAuthQueueFull(t *testing.T) {
	release := make(chan struct{})
	srv := authServer(t, Config{AuthWorkers: 1, AuthQueue: 1, AuthTimeout: time.Minute}, func(ctx context.Context, r *AuthRequest) (AuthResult, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return AuthResult{}, nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		cli, err := Listen("127.0.0.1:0", Config{HandshakeTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- cli.DialWith(context.Background(), srv.LocalAddr(), DialOptions{Credentials: []byte("x")})
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.Stats().Auth.InFlight < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_, err := dialCreds(t, Config{}, srv.LocalAddr(), "x")
	if !errors.Is(err, ErrServerBusy) || srv.Stats().Auth.QueueFull != 1 {
		t.Fatalf("third Dial = %v, stats %+v", err, srv.Stats().Auth)
	}
	close(release)
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuthPerSource: a source flooding a slow hook gets "busy" past
// AuthPerSource handshakes in the hook's hands, and another source still
// gets a place in the queue.
func TestAuthPerSource(t *testing.T) {
	release := make(chan struct{})
	srv, err := NewHost(mustListenUDP(t), Config{Accept: true, AuthWorkers: 1, AuthQueue: 64, AuthPerSource: 2, AuthTimeout: time.Minute,
		SourceHandshakeRate: -1, SourceLinks: -1, SourcePending: -1,
		Authenticate: func(ctx context.Context, r *AuthRequest) (AuthResult, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return AuthResult{}, ErrUnauthorized
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hello := func(from netip.AddrPort) {
		t.Helper()
		priv, err := newKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		hl := hello{Version: ProtocolVersion, Flags: helloAuth}
		copy(hl.Pub[:], priv.PublicKey().Bytes())
		s := srv.Identity().Current()
		es, err := agree(priv, s[:])
		if err != nil {
			t.Fatal(err)
		}
		if hl.Auth, err = sealCredentials(es, &hl, &s, []byte("x")); err != nil {
			t.Fatal(err)
		}
		hl.Cookie = srv.cookies.make(time.Now(), from, hl.Pub[:])
		srv.demux(appendHello(nil, hl), from, time.Now(), new(rxScratch), srv.conn)
	}
	for port := range uint16(5) {
		hello(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 4000+port))
	}
	if st := srv.Stats().Auth; st.InFlight != 2 || st.SourceBusy != 3 {
		t.Fatalf("after the flood: %+v", st)
	}
	hello(netip.MustParseAddrPort("127.0.0.3:4000"))
	if st := srv.Stats().Auth; st.InFlight != 3 || st.SourceBusy != 3 {
		t.Fatalf("another source: %+v", st)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for srv.Stats().Auth.InFlight != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := srv.Stats().Auth; st.InFlight != 0 || st.Unauthorized != 3 {
		t.Fatalf("after the hook answered: %+v", st)
	}
	// The flood's places are free again.
	hello(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 5000))
	if st := srv.Stats().Auth; st.SourceBusy != 3 {
		t.Fatalf("the source was not released: %+v", st)
	}
}

// TestDuplicateLoginReplace: a second login of a user kicks the first
// session, whose client learns why.
func TestDuplicateLoginReplace(t *testing.T) {
	var calls atomic.Int32
	srv := authServer(t, Config{}, userHook(&calls))
	first, err := dialCreds(t, Config{}, srv.LocalAddr(), "user:bob")
	if err != nil {
		t.Fatal(err)
	}
	if e := authEvent(t, srv); e.Kind != EventConnected {
		t.Fatalf("event %+v", e)
	}
	second, err := dialCreds(t, Config{}, srv.LocalAddr(), "user:bob")
	if err != nil {
		t.Fatal(err)
	}
	e := authEventKind(t, first, EventDisconnected)
	if e.Kind != EventDisconnected || !errors.Is(e.Err, ErrSessionReplaced) {
		t.Fatalf("first client's event %+v", e)
	}
	if u, ok := srv.User(second.ID()); !ok || u.ID != "bob" {
		t.Fatalf("User = %+v %v", u, ok)
	}
	if _, ok := srv.User(first.ID()); ok {
		t.Fatal("first session still has a user")
	}
	if st := srv.Stats().Auth; st.Replaced != 1 || st.Logins != 2 {
		t.Fatalf("auth stats %+v", st)
	}
	// Another user is not affected.
	if _, err := dialCreds(t, Config{}, srv.LocalAddr(), "user:eve"); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().Auth.Replaced; n != 1 {
		t.Fatalf("replaced %d", n)
	}
}

// TestDuplicateLoginRefuse: with SessionRefuse the second login is
// refused and the first session stays.
func TestDuplicateLoginRefuse(t *testing.T) {
	var calls atomic.Int32
	srv := authServer(t, Config{DuplicateLogin: SessionRefuse, AuthInline: true}, userHook(&calls))
	first, err := dialCreds(t, Config{}, srv.LocalAddr(), "user:bob")
	if err != nil {
		t.Fatal(err)
	}
	_, err = dialCreds(t, Config{}, srv.LocalAddr(), "user:bob")
	if !errors.Is(err, ErrAlreadyLoggedIn) {
		t.Fatalf("second Dial = %v", err)
	}
	if st := srv.Stats(); st.Links != 1 || st.Auth.AlreadyLoggedIn != 1 || st.Auth.Replaced != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := first.Send(ServerID, Reliable, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	for {
		e := authEvent(t, srv)
		if e.Kind == EventMessage {
			break
		}
	}
	// Once the first session ends, the user may log in again.
	first.Close()
	for {
		if e := authEvent(t, srv); e.Kind == EventDisconnected {
			break
		}
	}
	if _, err := dialCreds(t, Config{}, srv.LocalAddr(), "user:bob"); err != nil {
		t.Fatal(err)
	}
}

// TestAuthBlockTampered: an auth block changed in flight does not open:
// refused as unauthorized, counted, before any state.
func TestAuthBlockTampered(t *testing.T) {
	var calls atomic.Int32
	srv := authServer(t, Config{}, userHook(&calls))
	p := newRawPeer(t, "127.0.0.1:0")
	var pub [keySize]byte
	priv, err := newKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	copy(pub[:], priv.PublicKey().Bytes())
	hl := hello{Version: ProtocolVersion, Flags: helloAuth, Pub: pub}
	p.c.WriteToUDPAddrPort(appendHello(nil, hl), srv.LocalAddr())
	b := p.read(2 * time.Second)
	tag, cookie, key, _, err := parseCookie(b)
	if err != nil || key == nil || !bytes.Equal(tag, pub[:dialTagSize]) {
		t.Fatalf("cookie reply %x: %v", b, err)
	}
	es, err := agree(priv, key)
	if err != nil {
		t.Fatal(err)
	}
	sk := ServerKey(key)
	auth, err := sealCredentials(es, &hl, &sk, []byte("user:mallory"))
	if err != nil {
		t.Fatal(err)
	}
	auth[3] ^= 1
	hl.Cookie, hl.Auth = bytes.Clone(cookie), auth // (cookie is in p's read buffer)
	p.c.WriteToUDPAddrPort(appendHello(nil, hl), srv.LocalAddr())
	b = p.read(2 * time.Second)
	if code, _, tag, err := parseReject(b); err != nil || code != rejectUnauthorized || !bytes.Equal(tag, pub[:dialTagSize]) {
		t.Fatalf("answer %x", b)
	}
	if st := srv.Stats(); st.Auth.BadSeal != 1 || calls.Load() != 0 || st.Links != 0 {
		t.Fatalf("stats %+v, %d calls", st, calls.Load())
	}
	// Its retransmission gets the refusal remembered for its key, without
	// opening the block again.
	replays := srv.Stats().Drops[DropReplay]
	p.c.WriteToUDPAddrPort(appendHello(nil, hl), srv.LocalAddr())
	b = p.read(2 * time.Second)
	if code, _, tag, err := parseReject(b); err != nil || code != rejectUnauthorized || !bytes.Equal(tag, pub[:dialTagSize]) {
		t.Fatalf("answer to the retransmission %x", b)
	}
	if st := srv.Stats(); st.Auth.BadSeal != 1 || st.Drops[DropReplay] != replays+1 {
		t.Fatalf("retransmission opened again: bad seals %d, replays %d (was %d)", st.Auth.BadSeal, st.Drops[DropReplay], replays)
	}
}

// FuzzAuthBlock feeds hellos with a valid cookie and an arbitrary auth
// block (or one sealed to the server's key around fuzzed credentials) to a
// server with an inline hook: nothing panics, a block that does not open
// is refused without the hook, and the hook only ever sees credentials
// within MaxCredentials.
func FuzzAuthBlock(f *testing.F) {
	var maxSeen atomic.Int64
	srv, err := NewHost(mustListenUDP(f), Config{Accept: true, AuthInline: true, HandshakeRate: 1 << 30, SourceHandshakeRate: -1, SourceLinks: -1, SourcePending: -1,
		Authenticate: func(_ context.Context, r *AuthRequest) (AuthResult, error) {
			if n := int64(len(r.Credentials)); n > maxSeen.Load() {
				maxSeen.Store(n)
			}
			if len(r.Credentials) > 0 && r.Credentials[0] == 'u' {
				return AuthResult{User: string(r.Credentials)}, nil
			}
			return AuthResult{}, ErrUnauthorized
		}})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	from := netip.MustParseAddrPort("127.0.0.2:4000")
	f.Add(false, []byte("user:alice"))
	f.Add(true, make([]byte, sealOverhead))
	f.Add(true, make([]byte, maxAuthBlock))
	f.Add(false, []byte{})
	f.Add(false, []byte("x"))
	f.Fuzz(func(t *testing.T, raw bool, b []byte) {
		priv, err := newKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		hl := hello{Version: ProtocolVersion, Flags: helloAuth}
		copy(hl.Pub[:], priv.PublicKey().Bytes())
		if raw {
			hl.Auth = b
		} else {
			if len(b) > MaxCredentials {
				b = b[:MaxCredentials]
			}
			s := srv.Identity().Current()
			es, err := agree(priv, s[:])
			if err != nil {
				t.Fatal(err)
			}
			if hl.Auth, err = sealCredentials(es, &hl, &s, b); err != nil {
				t.Fatal(err)
			}
		}
		if len(hl.Auth) > maxAuthBlock {
			hl.Auth = hl.Auth[:maxAuthBlock]
		}
		hl.Cookie = srv.cookies.make(time.Now(), from, hl.Pub[:])
		before := srv.Stats().Auth
		srv.demux(appendHello(nil, hl), from, time.Now(), new(rxScratch), srv.conn)
		after := srv.Stats().Auth
		if raw && len(hl.Auth) >= sealOverhead && after.BadSeal == before.BadSeal && after.Logins == before.Logins && after.Unauthorized == before.Unauthorized {
			t.Fatalf("a raw block was neither refused nor admitted: %+v", after)
		}
		if maxSeen.Load() > MaxCredentials {
			t.Fatalf("hook saw %d bytes", maxSeen.Load())
		}
		srv.DropLinks()
	})
}

func mustListenUDP(tb testing.TB) PacketConn {
	tb.Helper()
	c, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
