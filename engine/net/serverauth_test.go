package net

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	stdnet "net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// listenServer starts a loopback server host with the given identity.
func listenServer(t *testing.T, id *Identity) *Host {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", Config{Accept: true, Identity: id, SourceHandshakeRate: -1, SourceLinks: -1, SourcePending: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// dialWith dials addr from a fresh loopback client with cfg and returns
// the client and Dial's error.
func dialWith(t *testing.T, cfg Config, addr netip.AddrPort) (*Host, error) {
	t.Helper()
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 2 * time.Second
	}
	cli, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, cli.Dial(context.Background(), addr)
}

func mustIdentity(t *testing.T) *Identity {
	t.Helper()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// mitm is a relay on loopback between a client and the real server. It
// forwards the client's hellos and the server's cookies, and counts what
// the client sends it by kind: a client that trusts the wrong server must
// never send anything but hellos (no data datagram: no ping, no message,
// no credential). What it does with the welcome depends on mode.
type mitm struct {
	t     *testing.T
	front *stdnet.UDPConn // the client talks to this
	back  *stdnet.UDPConn // this talks to the real server
	real  netip.AddrPort
	mode  int
	own   *Identity // the attacker's own key (modeTerminate)

	mu        sync.Mutex
	client    netip.AddrPort
	lastHello hello
	fromCli   map[byte]int
	welcomes  atomic.Int32
}

const (
	// modeTerminate answers the client's hello itself, with its own
	// ephemeral and static keys: a server of its own that a client could
	// trust on first use.
	modeTerminate = iota
	// modeSwapEphemeral forwards the real server's welcome, static key
	// included, with the attacker's ephemeral key in place of the
	// server's and the body sealed with keys the attacker derived (it
	// cannot compute the es term: it guesses it). If it could open and
	// reseal, it would read and change everything on the link.
	modeSwapEphemeral
)

func newMITM(t *testing.T, real netip.AddrPort, mode int) *mitm {
	t.Helper()
	lo := &stdnet.UDPAddr{IP: stdnet.IPv4(127, 0, 0, 1)}
	front, err := stdnet.ListenUDP("udp", lo)
	if err != nil {
		t.Fatal(err)
	}
	back, err := stdnet.ListenUDP("udp", lo)
	if err != nil {
		t.Fatal(err)
	}
	m := &mitm{t: t, front: front, back: back, real: real, mode: mode, own: mustIdentity(t), fromCli: map[byte]int{}}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.clientSide() }()
	go func() { defer wg.Done(); m.serverSide() }()
	t.Cleanup(func() { front.Close(); back.Close(); wg.Wait() })
	return m
}

func (m *mitm) addr() netip.AddrPort { return m.front.LocalAddr().(*stdnet.UDPAddr).AddrPort() }

func (m *mitm) clientSide() {
	buf := make([]byte, 2048)
	for {
		n, from, err := m.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		m.mu.Lock()
		m.client = from
		m.fromCli[b[0]]++
		if hl, err := parseHello(b); err == nil {
			hl.Cookie = nil
			m.lastHello = hl
		}
		m.mu.Unlock()
		if m.mode == modeTerminate && b[0] == kindHello {
			if hl, err := parseHello(b); err == nil {
				w := m.terminate(hl)
				m.welcomes.Add(1) // before the client can see it
				_, _ = m.front.WriteToUDPAddrPort(w, from)
			}
			continue
		}
		_, _ = m.back.WriteToUDPAddrPort(b, m.real)
	}
}

func (m *mitm) serverSide() {
	buf := make([]byte, 2048)
	for {
		n, _, err := m.back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := append([]byte(nil), buf[:n]...)
		if b[0] == kindWelcome && m.mode == modeSwapEphemeral {
			b = m.swapEphemeral(b)
			m.welcomes.Add(1) // before the client can see it
		}
		m.mu.Lock()
		to := m.client
		m.mu.Unlock()
		_, _ = m.front.WriteToUDPAddrPort(b, to)
	}
}

// terminate is the server side of the handshake with the attacker's keys.
func (m *mitm) terminate(hl hello) []byte {
	priv, _ := newKeyPair()
	static, spub, _ := m.own.key(hl.KeyID)
	ee, _ := agree(priv, hl.Pub[:])
	es, _ := agree(static, hl.Pub[:])
	w := append([]byte{kindWelcome, byte(ChaCha20Poly1305)}, priv.PublicKey().Bytes()...)
	w = append(w, spub[:]...)
	return m.seal(w, ee, es, hl)
}

// swapEphemeral replaces the server's ephemeral key with the attacker's
// and reseals the body; es is unknown to it, so it uses a guess.
func (m *mitm) swapEphemeral(real []byte) []byte {
	priv, _ := newKeyPair()
	w := append([]byte{kindWelcome, byte(ChaCha20Poly1305)}, priv.PublicKey().Bytes()...)
	w = append(w, real[2+keySize:welcomeHeader]...) // the real static key, as pinned
	guess := make([]byte, keySize)
	_, _ = rand.Read(guess)
	// The attacker saw the hello it forwarded: the transcript and ee are
	// right, only es is a guess.
	m.mu.Lock()
	hl := m.lastHello
	m.mu.Unlock()
	ee, err := agree(priv, hl.Pub[:])
	if err != nil {
		m.t.Error(err)
	}
	return m.seal(w, ee, guess, hl)
}

// seal completes welcome header w with a body sealed under keys derived
// from ee and es.
func (m *mitm) seal(w, ee, es []byte, hl hello) []byte {
	k, err := deriveKeys(ee, es, transcriptHash(&hl, w))
	if err != nil {
		m.t.Error(err)
	}
	k = k.Swap()
	k.Cipher = ChaCha20Poly1305
	s, _ := newSealer(k)
	var nonce [nonceSize]byte
	return s.seal(w, 0, appendWelcomeBody(nil, welcomeBody{ClientID: FirstClientID, Ping: 1000, Timeout: 10000}), nonce[:])
}

func (m *mitm) sentByClient() map[byte]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[byte]int{}
	for k, v := range m.fromCli {
		out[k] = v
	}
	return out
}

// TestMITMDetected: a relay on the path that terminates the handshake with
// its own keys, or forwards the real server's welcome with its own
// ephemeral key, is detected by every client configuration that names the
// server's key (pinned, a verifier as a connect token or an operator
// signature would supply, a key remembered on first use), and the client
// sends it nothing but hellos: no link comes up, no application byte
// leaves.
func TestMITMDetected(t *testing.T) {
	ca, _ := NewOperatorKey()
	caPub := ca.Public().(ed25519.PublicKey)
	if _, err := mustIdentity(t).WithCert(SignServerKey(ca, ServerKey{}, time.Now())); err == nil {
		t.Fatal("WithCert took a certificate for another key")
	}
	real := mustIdentity(t)
	var err error
	if real, err = real.WithCert(SignServerKey(ca, real.Current(), time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	srv := listenServer(t, real)
	realKey := real.Current()
	// The operator-signed client reaches the real server.
	if c, err := dialWith(t, Config{ServerCAs: []ed25519.PublicKey{caPub}}, srv.LocalAddr()); err != nil {
		t.Fatalf("operator-signed client, real server: %v", err)
	} else if k, _ := c.ServerKey(); k != realKey {
		t.Fatalf("operator-signed client got key %v", k)
	}

	// First use: a client that trusts on first use, talking to the real
	// server, remembers its key.
	var remembered ServerKey
	if c, err := dialWith(t, Config{}, srv.LocalAddr()); err != nil {
		t.Fatal(err)
	} else if k, ok := c.ServerKey(); !ok || k != realKey {
		t.Fatalf("first use: server key %v %v, want %v", k, ok, realKey)
	} else {
		remembered = k
	}

	onlyReal := func(k ServerKey) error {
		if k != realKey {
			return errors.New("not the operator's server")
		}
		return nil
	}
	configs := []struct {
		name string
		cfg  Config
	}{
		{"pinned", Config{ServerKeys: []ServerKey{realKey}}},
		{"pinned, next key too", Config{ServerKeys: []ServerKey{realKey, mustIdentity(t).Current()}}},
		{"verifier (token or operator)", Config{VerifyServerKey: onlyReal}},
		{"remembered on first use", Config{ServerKeys: []ServerKey{remembered}}},
		{"operator-signed", Config{ServerCAs: []ed25519.PublicKey{caPub}}},
	}
	for _, mode := range []int{modeTerminate, modeSwapEphemeral} {
		for _, c := range configs {
			name := []string{"terminate", "swap ephemeral"}[mode] + "/" + c.name
			t.Run(name, func(t *testing.T) {
				m := newMITM(t, srv.LocalAddr(), mode)
				c.cfg.Cipher = ChaCha20Poly1305
				c.cfg.HandshakeTimeout = 1500 * time.Millisecond
				cli, err := dialWith(t, c.cfg, m.addr())
				var ke *ServerKeyError
				if !errors.Is(err, ErrServerKeyMismatch) || !errors.As(err, &ke) {
					t.Fatalf("dial through the relay: %v, want a ServerKeyError", err)
				}
				if m.welcomes.Load() == 0 {
					t.Fatal("the relay sent no welcome: the test proved nothing")
				}
				switch mode {
				case modeTerminate:
					if !ke.Proven || ke.Seen != m.own.Current() || !strings.Contains(err.Error(), m.own.Current().Fingerprint()) {
						t.Fatalf("error %v names %v (proven %v), want the relay's key %v", err, ke.Seen, ke.Proven, m.own.Current().Fingerprint())
					}
				case modeSwapEphemeral:
					if ke.Proven || !errors.Is(err, ErrHandshakeTimeout) {
						t.Fatalf("error %v: want unproven and timed out", err)
					}
				}
				if cli.ID() != NoHost || len(cli.Peers()) != 0 {
					t.Fatalf("client has ID %v and peers %v after a refused server", cli.ID(), cli.Peers())
				}
				if _, ok := cli.ServerKey(); ok {
					t.Fatal("client reports a server key after refusing it")
				}
				sent := m.sentByClient()
				for kind, n := range sent {
					if kind != kindHello {
						t.Fatalf("client sent %d datagrams of kind %#x to the relay (all: %v): only hellos may leave before the server is proven", n, kind, sent)
					}
				}
				if sent[kindHello] == 0 {
					t.Fatal("no hello went through the relay")
				}
				// Nothing of the client reaches the application through
				// a send either.
				if err := cli.Send(ServerID, Reliable, []byte("credential")); !errors.Is(err, ErrUnknownPeer) {
					t.Fatalf("send after a refused server: %v", err)
				}
			})
		}
	}

	// Trust on first use has nothing to compare with: through the relay it
	// connects to the relay and shows the relay's fingerprint, which the
	// player can see is not the server's.
	t.Run("first use shows the relay's key", func(t *testing.T) {
		m := newMITM(t, srv.LocalAddr(), modeTerminate)
		cli, err := dialWith(t, Config{Cipher: ChaCha20Poly1305}, m.addr())
		if err != nil {
			t.Fatal(err)
		}
		if k, _ := cli.ServerKey(); k != m.own.Current() || k == realKey {
			t.Fatalf("first use through the relay shows %v", k.Fingerprint())
		}
	})
}

// TestServerKeyRotation: a client pinned to the old key connects while the
// server holds both; a client pinned to the new key does too; after the
// switch the old pin gets a clear error naming the new fingerprint.
func TestServerKeyRotation(t *testing.T) {
	old := mustIdentity(t)
	srv := listenServer(t, old)
	oldKey := old.Current()
	pinned := func(keys ...ServerKey) error {
		_, err := dialWith(t, Config{ServerKeys: keys}, srv.LocalAddr())
		return err
	}
	if err := pinned(oldKey); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	both, err := old.WithNext()
	if err != nil {
		t.Fatal(err)
	}
	newKey, ok := both.Next()
	if !ok || both.Current() != oldKey {
		t.Fatal("WithNext lost the current key")
	}
	if err := srv.SetIdentity(both); err != nil {
		t.Fatal(err)
	}
	if err := pinned(oldKey); err != nil {
		t.Fatalf("old key while the server holds both: %v", err)
	}
	for _, keys := range [][]ServerKey{{newKey}, {newKey, oldKey}, {oldKey, newKey}} {
		c, err := dialWith(t, Config{ServerKeys: keys}, srv.LocalAddr())
		if err != nil {
			t.Fatalf("pins %v while the server holds both: %v", keys, err)
		}
		if k, _ := c.ServerKey(); k != keys[0] {
			t.Fatalf("pins %v: the server proved %v, want the first pin", keys, k)
		}
	}
	rotated, err := both.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Current() != newKey {
		t.Fatal("Rotate did not promote the next key")
	}
	if _, ok := rotated.Next(); ok {
		t.Fatal("Rotate kept a next key")
	}
	if err := srv.SetIdentity(rotated); err != nil {
		t.Fatal(err)
	}
	err = pinned(oldKey)
	var ke *ServerKeyError
	if !errors.Is(err, ErrServerKeyMismatch) || !errors.As(err, &ke) || !ke.Proven || ke.Seen != newKey {
		t.Fatalf("old key after the switch: %v, want a mismatch naming the new key", err)
	}
	if !strings.Contains(err.Error(), newKey.Fingerprint()) {
		t.Fatalf("error %q does not name the new fingerprint %s", err, newKey.Fingerprint())
	}
	if err := pinned(newKey); err != nil {
		t.Fatalf("new key after the switch: %v", err)
	}
	if _, err := rotated.Rotate(); err == nil {
		t.Fatal("Rotate without a next key succeeded")
	}
}

// TestIdentityFile: created on first load with mode 0600, loaded back
// unchanged (next key included), a file others can read is refused, and a
// malformed file's error does not quote the secret.
func TestIdentityFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "server.key")
	id, created, err := LoadIdentity(path)
	if err != nil || !created {
		t.Fatalf("first load: created %v, %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	again, created, err := LoadIdentity(path)
	if err != nil || created || again.Current() != id.Current() {
		t.Fatalf("second load: created %v, key %v (want %v), %v", created, again.Current(), id.Current(), err)
	}
	next, _ := id.WithNext()
	if err := SaveIdentity(path, next); err != nil {
		t.Fatal(err)
	}
	back, _, err := LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	nk, _ := next.Next()
	if bk, ok := back.Next(); !ok || bk != nk || back.Current() != id.Current() {
		t.Fatal("the next key did not survive the file")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadIdentity(path); err == nil {
		t.Fatal("a key file others can read was accepted")
	}
	secret := "current AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if _, err := ParseIdentity([]byte(secret)); err == nil || strings.Contains(err.Error(), "AAAA") {
		t.Fatalf("malformed key file: %v", err)
	}
	for _, bad := range []string{"", "# only a comment\n", "next " + strings.Repeat("A", 43) + "\n", "current x y\n"} {
		if _, err := ParseIdentity([]byte(bad)); !errors.Is(err, ErrBadServerKey) {
			t.Fatalf("ParseIdentity(%q): %v", bad, err)
		}
	}
	k := id.Current()
	if p, err := ParseServerKey(k.String()); err != nil || p != k {
		t.Fatalf("ParseServerKey(String()): %v %v", p, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("A", 43)} {
		if _, err := ParseServerKey(bad); !errors.Is(err, ErrBadServerKey) {
			t.Fatalf("ParseServerKey(%q): %v", bad, err)
		}
	}
}

// FuzzWelcome feeds arbitrary welcomes to a client whose Dial is waiting
// for one, pinned to a server key: nothing panics, and a link comes up only
// for a welcome sealed by the holder of the pinned key; anything else is
// dropped and counted, or ends the dial with a ServerKeyError.
func FuzzWelcome(f *testing.F) {
	n := vnet.New(1)
	defer n.Close()
	srvAddr := netip.MustParseAddrPort("10.0.0.1:1")
	cc, _ := n.Listen(netip.MustParseAddrPort("10.0.0.2:1"))
	real := mustIdentity(&testing.T{})
	attacker := mustIdentity(&testing.T{})
	ca, _ := NewOperatorKey()
	cli, err := NewHost(cc, Config{ServerKeys: []ServerKey{real.Current()}, ServerCAs: []ed25519.PublicKey{ca.Public().(ed25519.PublicKey)}, Cipher: ChaCha20Poly1305})
	if err != nil {
		f.Fatal(err)
	}
	defer cli.Close()
	// The client's pending dial, as Dial makes it.
	priv, _ := newKeyPair()
	d := &pendingDial{priv: priv, flags: helloCert, keyID: real.Current().ID(), kick: make(chan struct{}, 1), done: make(chan error, 1)}
	copy(d.pub[:], priv.PublicKey().Bytes())
	hl := hello{Version: helloVersion, Flags: d.flags, Pub: d.pub, KeyID: d.keyID}
	m := &mitm{t: &testing.T{}}
	welcome := func(id *Identity) []byte {
		m.own = id
		return m.terminate(hl)
	}
	good := welcome(real)
	f.Add(good)
	f.Add(welcome(attacker))
	swapped := bytes.Clone(good)
	swapped[2] ^= 1 // another ephemeral key
	f.Add(swapped)
	f.Add(good[:len(good)-1])
	f.Add(append([]byte{kindWelcome, 9}, good[2:]...))
	f.Add(append([]byte{kindWelcome, 1}, make([]byte, len(good)-2)...)) // zero keys: low order
	// The attacker's key with certificates: its own (another operator),
	// and the real key's (signed by the trusted operator).
	withCert := func(id *Identity, cert ServerCert) []byte {
		epriv, _ := newKeyPair()
		static, spub, _ := id.key(hl.KeyID)
		ee, _ := agree(epriv, hl.Pub[:])
		es, _ := agree(static, hl.Pub[:])
		w := append([]byte{kindWelcome, byte(ChaCha20Poly1305)}, epriv.PublicKey().Bytes()...)
		w = append(w, spub[:]...)
		k, _ := deriveKeys(ee, es, transcriptHash(&hl, w))
		k = k.Swap()
		k.Cipher = ChaCha20Poly1305
		sl, _ := newSealer(k)
		var nonce [nonceSize]byte
		body := appendWelcomeBody(nil, welcomeBody{ClientID: FirstClientID, Ping: 1000, Timeout: 10000, Cert: cert.appendTo(nil)})
		return sl.seal(w, 0, body, nonce[:])
	}
	rogue, _ := NewOperatorKey()
	f.Add(withCert(attacker, SignServerKey(rogue, attacker.Current(), time.Now().Add(time.Hour))))
	f.Add(withCert(attacker, SignServerKey(ca, real.Current(), time.Now().Add(time.Hour))))
	f.Fuzz(func(t *testing.T, b []byte) {
		cli.mu.Lock()
		cli.dials[srvAddr] = d
		cli.mu.Unlock()
		select {
		case <-d.done:
		default:
		}
		before := cli.Stats().Drops.Total()
		cli.handleWelcome(bytes.Clone(b), srvAddr, time.Now())
		up := cli.link(ServerID) != nil
		if up != bytes.Equal(b, good) {
			t.Fatalf("link up %v for a welcome that is the real one: %v", up, bytes.Equal(b, good))
		}
		var outcome error
		select {
		case outcome = <-d.done:
		default:
		}
		switch {
		case up:
			if outcome != nil {
				t.Fatalf("real welcome: %v", outcome)
			}
			cli.removeLink(cli.link(ServerID), nil)
			for {
				if _, ok := cli.Poll(); !ok {
					break
				}
			}
		case outcome != nil:
			var ke *ServerKeyError
			if !errors.As(outcome, &ke) || !ke.Proven || ke.Seen == real.Current() {
				t.Fatalf("welcome refused with %v", outcome)
			}
		case cli.Stats().Drops.Total() == before:
			t.Fatal("a welcome neither made a link, nor ended the dial, nor was counted as dropped")
		}
	})
}

// FuzzServerKeyText checks the key decoders (ParseServerKey for flags and
// join links, ParseIdentity for key files): no panic, and what they accept
// round-trips.
func FuzzServerKeyText(f *testing.F) {
	id, _ := NewIdentity()
	both, _ := id.WithNext()
	text, _ := both.MarshalText()
	f.Add(string(text))
	f.Add(id.Current().String())
	f.Add("current " + id.Current().String() + "\ncurrent x\n")
	f.Add("# x\n\nnext abc\n")
	ca, _ := NewOperatorKey()
	cert := SignServerKey(ca, id.Current(), time.Unix(1e9, 0))
	signed, _ := id.WithCert(cert)
	text, _ = signed.MarshalText()
	f.Add(string(text))
	f.Add(cert.String())
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := ParseServerKey(s); err == nil {
			if k2, err := ParseServerKey(k.String()); err != nil || k2 != k {
				t.Fatalf("server key round trip: %v", err)
			}
		}
		if c, err := ParseServerCert(s); err == nil {
			if c2, err := ParseServerCert(c.String()); err != nil || c2 != c {
				t.Fatalf("certificate round trip: %v", err)
			}
		}
		if id, err := ParseIdentity([]byte(s)); err == nil {
			text, _ := id.MarshalText()
			id2, err := ParseIdentity(text)
			if err != nil || id2.Current() != id.Current() {
				t.Fatalf("identity round trip: %v", err)
			}
			n1, ok1 := id.Next()
			n2, ok2 := id2.Next()
			if n1 != n2 || ok1 != ok2 {
				t.Fatal("identity round trip lost the next key")
			}
			c1, ok1 := id.Cert()
			c2, ok2 := id2.Cert()
			if c1 != c2 || ok1 != ok2 {
				t.Fatal("identity round trip lost the certificate")
			}
		}
	})
}

// TestOperatorSigned: a client that trusts an operator key accepts any
// server key it signed and nothing else: not a key it did not sign, not a
// certificate from another operator, not an expired one, not the real
// server's certificate presented with another key; a key pinned as well
// needs no certificate. A hello that asks for a certificate without the
// longer padding gets no certificate (no answer is larger than its hello).
func TestOperatorSigned(t *testing.T) {
	ca, _ := NewOperatorKey()
	other, _ := NewOperatorKey()
	cas := []ed25519.PublicKey{ca.Public().(ed25519.PublicKey)}
	signed := func(by ed25519.PrivateKey, valid time.Duration) *Identity {
		id := mustIdentity(t)
		id, err := id.WithCert(SignServerKey(by, id.Current(), time.Now().Add(valid)))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	good := signed(ca, time.Hour)
	stolen := mustIdentity(t)
	gc, _ := good.Cert()
	stolen.curCert = &gc // the real server's certificate, another key
	unsigned := mustIdentity(t)
	for _, c := range []struct {
		name string
		id   *Identity
		cfg  Config
		ok   bool
	}{
		{"signed", good, Config{ServerCAs: cas}, true},
		{"signed, with a pin for another key", good, Config{ServerCAs: cas, ServerKeys: []ServerKey{unsigned.Current()}}, true},
		{"unsigned but pinned", unsigned, Config{ServerCAs: cas, ServerKeys: []ServerKey{unsigned.Current()}}, true},
		{"unsigned", unsigned, Config{ServerCAs: cas}, false},
		{"another operator", signed(other, time.Hour), Config{ServerCAs: cas}, false},
		{"expired", signed(ca, -time.Second), Config{ServerCAs: cas}, false},
		{"certificate of another key", stolen, Config{ServerCAs: cas}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := listenServer(t, c.id)
			_, err := dialWith(t, c.cfg, srv.LocalAddr())
			var ke *ServerKeyError
			switch {
			case c.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !c.ok && (!errors.As(err, &ke) || !ke.Proven || ke.Seen != c.id.Current()):
				t.Fatalf("got %v, want a ServerKeyError naming %v", err, c.id.Current().Fingerprint())
			case !c.ok && !strings.Contains(err.Error(), c.id.Current().Fingerprint()):
				t.Fatalf("error %q does not name the fingerprint", err)
			}
		})
	}

	// Answer sizes: a 256-byte hello gets the certificate, a 128-byte one
	// with the same flag does not.
	srv := listenServer(t, good)
	for _, size := range []int{helloCertSize, helloSize} {
		c, err := stdnet.ListenUDP("udp", &stdnet.UDPAddr{IP: stdnet.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		from := c.LocalAddr().(*stdnet.UDPAddr).AddrPort()
		priv, _ := newKeyPair()
		var pub [keySize]byte
		copy(pub[:], priv.PublicKey().Bytes())
		hl := appendHello(nil, hello{Version: ProtocolVersion, Flags: helloCert, Pub: pub, Cookie: srv.cookies.make(time.Now(), from, pub[:])})
		if len(hl) != helloCertSize {
			t.Fatalf("a hello asking for a certificate is %d bytes", len(hl))
		}
		_, _ = c.WriteToUDPAddrPort(hl[:size], srv.LocalAddr())
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 2048)
		n, _, err := c.ReadFromUDPAddrPort(buf)
		c.Close()
		if err != nil {
			t.Fatalf("%d-byte hello: %v", size, err)
		}
		want := welcomeHeader + welcomeBodySize + sealOverhead
		if size == helloCertSize {
			want += certSize
		}
		if buf[0] != kindWelcome || n != want || n > size {
			t.Fatalf("%d-byte hello: answer of kind %#x and %d bytes, want a %d-byte welcome", size, buf[0], n, want)
		}
	}
}
