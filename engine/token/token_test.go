package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

func testKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func serverKey(b byte) net.ServerKey {
	var k net.ServerKey
	k[0], k[31] = b, b
	return k
}

// mintFor mints a token for c signed with key: alice's unless c names a
// user, expiring a minute after now unless c says when, for server srv
// unless c names another.
func mintFor(tb testing.TB, key ed25519.PrivateKey, now time.Time, srv net.ServerKey, c Claims) []byte {
	tb.Helper()
	if c.User == "" {
		c.User = "alice"
	}
	if c.Expires.IsZero() {
		c.Expires = now.Add(time.Minute)
	}
	if c.ServerKey == (net.ServerKey{}) {
		c.ServerKey = srv
	}
	b, err := Mint(key, c)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestMintParseRoundTrip(t *testing.T) {
	_, priv := testKey(t)
	c := Claims{
		User:      "alice",
		Expires:   time.Unix(1_900_000_000, 0),
		ServerKey: serverKey(1),
		Addrs:     []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:7777"), netip.MustParseAddrPort("[2001:db8::1]:7777")},
		Data:      []byte("display=Alice"),
	}
	b, err := Mint(priv, c)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if tk.User != c.User || !tk.Expires.Equal(c.Expires) || tk.ServerKey != c.ServerKey || len(tk.Addrs) != 2 ||
		tk.Addrs[0] != c.Addrs[0] || tk.Addrs[1] != c.Addrs[1] || !bytes.Equal(tk.Data, c.Data) || tk.Nonce == ([NonceSize]byte{}) {
		t.Fatalf("parsed %+v", tk.Claims)
	}
	// The largest token fits the handshake's credentials.
	big := c
	big.User = string(bytes.Repeat([]byte{'u'}, MaxUserID))
	big.Data = make([]byte, MaxData)
	big.Addrs = append(big.Addrs, c.Addrs...)
	b, err = Mint(priv, big)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxSize || MaxSize > net.MaxCredentials {
		t.Fatalf("largest token %d bytes (MaxSize %d, MaxCredentials %d)", len(b), MaxSize, net.MaxCredentials)
	}
	for _, bad := range []Claims{
		{Expires: c.Expires, ServerKey: c.ServerKey}, // no user
		{User: "a", Expires: c.Expires},              // no server
		{User: "a", Expires: c.Expires, ServerKey: c.ServerKey, Data: make([]byte, MaxData+1)},
		{User: string(make([]byte, MaxUserID+1)), Expires: c.Expires, ServerKey: c.ServerKey},
	} {
		if _, err := Mint(priv, bad); err == nil {
			t.Fatalf("minted %+v", bad)
		}
	}
}

func TestVerify(t *testing.T) {
	pub, priv := testKey(t)
	_, other := testKey(t)
	now := time.Unix(1_800_000_000, 0)
	addr := netip.MustParseAddrPort("192.0.2.1:7777")
	v, err := NewVerifier(VerifierConfig{Keys: []ed25519.PublicKey{pub}, Addrs: []netip.AddrPort{addr}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := serverKey(1)
	mint := func(key ed25519.PrivateKey, c Claims) []byte {
		t.Helper()
		if c.Expires.IsZero() {
			c.Expires = now.Add(time.Minute)
		}
		if c.User == "" {
			c.User = "alice"
		}
		b, err := Mint(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := mint(priv, Claims{ServerKey: srv, Data: []byte("x")})
	c, err := v.Verify(good, srv)
	if err != nil || c.User != "alice" || string(c.Data) != "x" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if _, err := v.Verify(good, srv); !errors.Is(err, ErrReplayed) || !errors.Is(err, net.ErrUnauthorized) {
		t.Fatalf("replay: %v", err)
	}
	flipped := mint(priv, Claims{ServerKey: srv})
	flipped[20] ^= 1
	cases := []struct {
		name string
		b    []byte
		want error
		net  error
	}{
		{"bad signature", flipped, ErrBadSignature, net.ErrUnauthorized},
		{"unknown key", mint(other, Claims{ServerKey: srv}), ErrUnknownKey, net.ErrUnauthorized},
		{"expired", mint(priv, Claims{ServerKey: srv, Expires: now}), ErrExpired, net.ErrExpired},
		{"too long", mint(priv, Claims{ServerKey: srv, Expires: now.Add(time.Hour)}), ErrTooLong, net.ErrUnauthorized},
		{"other server key", mint(priv, Claims{ServerKey: serverKey(2)}), ErrForeign, net.ErrUnauthorized},
		{"other address", mint(priv, Claims{Addrs: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:7778")}}), ErrForeign, net.ErrUnauthorized},
		{"truncated", good[:len(good)-1], ErrMalformed, net.ErrUnauthorized},
		{"trailing", append(bytes.Clone(good), 0), ErrMalformed, net.ErrUnauthorized},
		{"empty", nil, ErrMalformed, net.ErrUnauthorized},
	}
	for _, tc := range cases {
		if _, err := v.Verify(tc.b, srv); !errors.Is(err, tc.want) || !errors.Is(err, tc.net) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if n := v.Cached(); n != 1 {
		t.Fatalf("%d nonces cached: refused tokens must take no place", n)
	}
	// By address, with the key left open.
	if _, err := v.Verify(mint(priv, Claims{Addrs: []netip.AddrPort{addr}}), srv); err != nil {
		t.Fatal(err)
	}
	// A verifier that does not know its addresses cannot accept a token
	// named by address only.
	v2, _ := NewVerifier(VerifierConfig{Keys: []ed25519.PublicKey{pub}, Now: func() time.Time { return now }})
	if _, err := v2.Verify(mint(priv, Claims{Addrs: []netip.AddrPort{addr}}), srv); !errors.Is(err, ErrForeign) {
		t.Fatalf("address-only token: %v", err)
	}
}

// TestReplayCacheBounded: the cache holds at most ReplayCache nonces, frees
// expired ones, and refuses (retry later) rather than grow.
func TestReplayCacheBounded(t *testing.T) {
	pub, priv := testKey(t)
	now := time.Unix(1_800_000_000, 0)
	v, err := NewVerifier(VerifierConfig{Keys: []ed25519.PublicKey{pub}, ReplayCache: 4, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := serverKey(1)
	for i := range 4 {
		b, _ := Mint(priv, Claims{User: "u", ServerKey: srv, Expires: now.Add(time.Duration(i+1) * time.Second)})
		if _, err := v.Verify(b, srv); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := Mint(priv, Claims{User: "u", ServerKey: srv, Expires: now.Add(time.Minute)})
	if _, err := v.Verify(b, srv); !errors.Is(err, ErrCacheFull) || !errors.Is(err, net.ErrAuthUnavailable) {
		t.Fatalf("full cache: %v", err)
	}
	now = now.Add(2 * time.Second) // two nonces expire
	b, _ = Mint(priv, Claims{User: "u", ServerKey: srv, Expires: now.Add(time.Minute)})
	if _, err := v.Verify(b, srv); err != nil {
		t.Fatal(err)
	}
	if n := v.Cached(); n != 3 {
		t.Fatalf("%d cached", n)
	}
}

// FuzzParse: any bytes decode or are refused without a panic; a decoded
// token re-encodes to the same body.
func FuzzParse(f *testing.F) {
	_, priv := testKey(f)
	for _, c := range []Claims{
		{User: "alice", Expires: time.Unix(1_900_000_000, 0), ServerKey: serverKey(1)},
		{User: "b", Expires: time.Unix(1, 0), Addrs: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:1")}, Data: []byte("data")},
		{User: string(bytes.Repeat([]byte{'u'}, MaxUserID)), Expires: time.Unix(1, 0), ServerKey: serverKey(9), Data: make([]byte, MaxData),
			Addrs: []netip.AddrPort{netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:1"), netip.MustParseAddrPort("10.0.0.3:1")}},
	} {
		b, err := Mint(priv, c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{Version})
	f.Add(make([]byte, minSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		tk, err := Parse(b)
		if err != nil {
			return
		}
		if len(tk.User) == 0 || len(tk.User) > MaxUserID || len(tk.Data) > MaxData || len(tk.Addrs) > MaxAddrs || len(b) > MaxSize {
			t.Fatalf("accepted %+v", tk.Claims)
		}
		if len(tk.body)+len(tk.sig) != len(b) || len(tk.sig) != ed25519.SignatureSize {
			t.Fatalf("body %d + sig %d != %d", len(tk.body), len(tk.sig), len(b))
		}
	})
}

// TestVerifyCheapChecksFirst: a token whose layout, key, expiry, lifetime
// or server is wrong is refused before its signature is checked (a flood
// of them costs no Ed25519 verification), with the same refusal whether
// its signature is good or not; only a token that passed every cheap check
// has its signature checked, and only a genuinely signed one takes a place
// in the replay cache.
func TestVerifyCheapChecksFirst(t *testing.T) {
	pub, priv := testKey(t)
	_, other := testKey(t)
	now := time.Unix(1_800_000_000, 0)
	v, err := NewVerifier(VerifierConfig{Keys: []ed25519.PublicKey{pub}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := serverKey(1)
	mint := func(key ed25519.PrivateKey, c Claims) []byte { return mintFor(t, key, now, srv, c) }
	forge := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-1] ^= 1
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"expired", mint(priv, Claims{Expires: now}), ErrExpired},
		{"too long", mint(priv, Claims{Expires: now.Add(time.Hour)}), ErrTooLong},
		{"other server", mint(priv, Claims{ServerKey: serverKey(2)}), ErrForeign},
		{"unknown key", mint(other, Claims{}), ErrUnknownKey},
	} {
		for _, b := range [][]byte{tc.b, forge(tc.b)} {
			before := v.sigChecks.Load()
			if _, err := v.Verify(b, srv); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
			if n := v.sigChecks.Load() - before; n != 0 {
				t.Errorf("%s: %d signature checks before the cheap refusal", tc.name, n)
			}
		}
	}
	// A forged token with good claims costs one signature check and
	// takes no place; the genuine one takes its place, and its replay is
	// refused after one more signature check.
	good := mint(priv, Claims{})
	before := v.sigChecks.Load()
	if _, err := v.Verify(forge(good), srv); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged: %v", err)
	}
	if n := v.Cached(); n != 0 {
		t.Fatalf("a forged token took a replay-cache place (%d cached)", n)
	}
	if _, err := v.Verify(good, srv); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(good, srv); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	if n := v.sigChecks.Load() - before; n != 3 {
		t.Fatalf("%d signature checks for forged, good and replayed, want 3", n)
	}
	// A forged token carrying a cached nonce is refused as forged, not as
	// a replay: the cache answers only for genuine tokens.
	if _, err := v.Verify(forge(good), srv); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged copy of a used token: %v", err)
	}
}

// nonceN is a distinct nonce for each n.
func nonceN(n int) [NonceSize]byte {
	var k [NonceSize]byte
	k[0], k[1], k[2], k[15] = byte(n), byte(n>>8), byte(n>>16), 0xaa
	return k
}

// TestReplaySweepVisitsOnlyExpired: freeing places in a full replay cache
// costs in the number of expired nonces, not the cache's size (counted in
// nonces looked at, not time), and one call looks at no more than
// sweepBatch of them however many expired at once: a full cache never
// holds the verifier's lock for long.
func TestReplaySweepVisitsOnlyExpired(t *testing.T) {
	const size = 1 << 14
	now := int64(1_800_000_000)
	c := newReplayCache(size)
	expired := 0
	for i := range size {
		exp := now + 60
		if i%1000 == 0 {
			exp = now + 1 + int64(i%3) // 17 nonces expire within 3 s
			expired++
		}
		if err := c.add(nonceN(i), exp, now); err != nil {
			t.Fatalf("nonce %d: %v", i, err)
		}
	}
	if err := c.add(nonceN(size), now+60, now); !errors.Is(err, ErrCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	if c.visited > 0 {
		t.Fatalf("a full cache with nothing expired looked at %d nonces", c.visited)
	}
	now += 10
	c.visited = 0
	if err := c.add(nonceN(size), now+60, now); err != nil {
		t.Fatalf("after %d expired: %v", expired, err)
	}
	if c.visited != uint64(expired) {
		t.Fatalf("freeing %d expired nonces of %d looked at %d", expired, size, c.visited)
	}
	if n := len(c.seen); n != size-expired+1 {
		t.Fatalf("%d cached, want %d", n, size-expired+1)
	}
	// The unexpired ones are still replays; the expired ones are gone.
	if err := c.add(nonceN(1), now+60, now); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay of a live nonce: %v", err)
	}
	if _, ok := c.seen[nonceN(0)]; ok {
		t.Fatal("an expired nonce is still cached")
	}
	// Everything expires at once: each call looks at sweepBatch at most,
	// and the backlog drains call by call.
	now += 100
	old := len(c.seen)
	calls := 0
	for len(c.seen) > calls {
		c.visited = 0
		if err := c.add(nonceN(2*size+calls), now+60, now); err != nil {
			t.Fatal(err)
		}
		calls++
		if c.visited > sweepBatch {
			t.Fatalf("one call looked at %d nonces (bound %d)", c.visited, sweepBatch)
		}
		if calls > old/sweepBatch+1 {
			t.Fatalf("%d of %d expired nonces left after %d calls", len(c.seen)-calls, old, calls)
		}
	}
}
