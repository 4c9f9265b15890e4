package token

import (
	"container/heap"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// Error is a token refusal. errors.Is matches both the refusal (ErrReplayed,
// ...) and the net login refusal it is sent to the client as
// (net.ErrUnauthorized, net.ErrExpired, net.ErrAuthUnavailable).
type Error struct {
	msg  string
	kind error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the net login refusal.
func (e *Error) Unwrap() error { return e.kind }

// Token refusals.
var (
	// ErrMalformed: not a token of this version (a length out of bounds,
	// trailing bytes).
	ErrMalformed error = &Error{"skein/token: malformed token", net.ErrUnauthorized}
	// ErrUnknownKey: signed with a key the server does not trust.
	ErrUnknownKey error = &Error{"skein/token: signed by an unknown key", net.ErrUnauthorized}
	// ErrBadSignature: the signature does not verify (forged or altered).
	ErrBadSignature error = &Error{"skein/token: bad signature", net.ErrUnauthorized}
	// ErrExpired: past its expiry.
	ErrExpired error = &Error{"skein/token: token expired", net.ErrExpired}
	// ErrTooLong: it expires further ahead than VerifierConfig.MaxLifetime
	// (the replay cache could not hold it that long).
	ErrTooLong error = &Error{"skein/token: token lifetime too long", net.ErrUnauthorized}
	// ErrForeign: minted for another server (its key or addresses).
	ErrForeign error = &Error{"skein/token: token for another server", net.ErrUnauthorized}
	// ErrReplayed: already used (each token admits one connection).
	ErrReplayed error = &Error{"skein/token: token already used", net.ErrUnauthorized}
	// ErrCacheFull: the replay cache is full of unexpired tokens; retry
	// later.
	ErrCacheFull error = &Error{"skein/token: replay cache full", net.ErrAuthUnavailable}
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keys are the operator public keys whose tokens are accepted (more
	// than one during a rotation).
	Keys []ed25519.PublicKey
	// Addrs are the server's own public addresses: a token that names
	// addresses must name one of these. A token that names only addresses
	// is refused (ErrForeign) by a verifier with none, since it cannot
	// tell it is meant for this server.
	Addrs []netip.AddrPort
	// MaxLifetime refuses tokens that expire further ahead (ErrTooLong),
	// which bounds how long the replay cache keeps a nonce. Zero means
	// 5 minutes.
	MaxLifetime time.Duration
	// ReplayCache bounds the nonces kept (about 55-60 bytes each, with
	// their buckets by expiry). Past it, with none expired, tokens are
	// refused with ErrCacheFull. Zero means 262144 (about 15 MiB: 5,000
	// connections a second for 50 s).
	ReplayCache int
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

// Verifier checks tokens and remembers the nonces of those it accepted
// until they expire. Safe for concurrent use.
type Verifier struct {
	cfg  VerifierConfig
	keys map[[KeyIDSize]byte]ed25519.PublicKey
	// sigChecks counts Ed25519 verifications (tests: which refusals
	// cost one).
	sigChecks atomic.Uint64

	mu     sync.Mutex
	replay *replayCache
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Keys) == 0 {
		return nil, fmt.Errorf("skein/token: verifier: no key")
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = 5 * time.Minute
	}
	if cfg.ReplayCache <= 0 {
		cfg.ReplayCache = 1 << 18
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, keys: make(map[[KeyIDSize]byte]ed25519.PublicKey), replay: newReplayCache(cfg.ReplayCache)}
	for _, k := range cfg.Keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("skein/token: verifier: not an Ed25519 public key")
		}
		v.keys[KeyID(k)] = k
	}
	return v, nil
}

// Verify checks token b for the server whose static key is server and
// returns the claims of an accepted token. The checks run cheapest first,
// and the first that fails decides the refusal:
//
//  1. the layout (ErrMalformed) and a known signing key (ErrUnknownKey);
//  2. the claims, as the token states them: the expiry (ErrExpired), the
//     lifetime (ErrTooLong), the server (ErrForeign);
//  3. the Ed25519 signature (ErrBadSignature);
//  4. the replay cache (ErrReplayed, ErrCacheFull).
//
// So a flood of expired, overlong or foreign tokens costs no signature
// verification, and only a genuinely signed token, which passed every
// other check, takes a place in the replay cache (a forged copy of a used
// token is ErrBadSignature, never ErrReplayed).
//
// What checking claims before the signature gives a forger, who chooses
// them: the refusal says which claim failed instead of ErrBadSignature.
// At Dial that is seen only for an expiry (net.ErrExpired against
// net.ErrUnauthorized for every other refusal but a full cache), so the
// forger learns the server's clock to the second, which every cookie
// already states (docs/PROTOCOL.md, Handshake); from timing it may tell
// which claims pass (the verifier's MaxLifetime, and its addresses, which
// are the server's public ones). A refusal reveals nothing of the signing keys, and no
// unverified claim is returned or kept. A genuine token gets the same
// refusal as before; a forged one with a past expiry is refused as
// expired (counted as such by the server, net.AuthStats.Expired), which
// tells a client to fetch a new token: right whether it was forged or not.
func (v *Verifier) Verify(b []byte, server net.ServerKey) (Claims, error) {
	t, err := Parse(b)
	if err != nil {
		return Claims{}, err
	}
	pub := v.keys[t.KeyID]
	if pub == nil {
		return Claims{}, ErrUnknownKey
	}
	now := v.cfg.Now()
	switch {
	case !now.Before(t.Expires):
		return Claims{}, ErrExpired
	case t.Expires.Sub(now) > v.cfg.MaxLifetime+time.Second:
		return Claims{}, ErrTooLong
	case !v.forUs(&t.Claims, server):
		return Claims{}, ErrForeign
	}
	v.sigChecks.Add(1)
	if !ed25519.Verify(pub, signedBytes(t.body), t.sig) {
		return Claims{}, ErrBadSignature
	}
	if err := v.remember(t.Nonce, t.Expires.Unix(), now); err != nil {
		return Claims{}, err
	}
	return t.Claims, nil
}

// forUs reports whether c names this server: its key if it names one, and
// one of its addresses if it names any.
func (v *Verifier) forUs(c *Claims, server net.ServerKey) bool {
	if c.ServerKey != (net.ServerKey{}) && c.ServerKey != server {
		return false
	}
	if len(c.Addrs) == 0 {
		return true
	}
	if len(v.cfg.Addrs) == 0 {
		// Named by address only: this server cannot tell.
		return c.ServerKey != (net.ServerKey{})
	}
	for _, a := range c.Addrs {
		if slices.ContainsFunc(v.cfg.Addrs, func(o netip.AddrPort) bool { return o.Addr().Unmap() == a.Addr() && o.Port() == a.Port() }) {
			return true
		}
	}
	return false
}

// remember records a nonce until its token expires; a nonce already there
// is a replay.
func (v *Verifier) remember(nonce [NonceSize]byte, expires int64, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.replay.add(nonce, expires, now.Unix())
}

// replayCache is the nonces of accepted tokens until they expire, at most
// max of them. The nonces are also kept in buckets by the second they
// expire, and the buckets' seconds in a min-heap, so that freeing places
// looks only at expired nonces, oldest first, and never at the live ones:
// each add sweeps at most sweepBatch expired nonces, which bounds how long
// it holds the verifier's lock (a clock jump that expires the whole cache
// at once drains over several adds). Not safe for concurrent use
// (Verifier.mu guards it).
type replayCache struct {
	max     int
	seen    map[[NonceSize]byte]struct{} // every nonce kept
	buckets map[int64][][NonceSize]byte  // expiry second → its nonces
	due     secondHeap                   // the buckets' seconds
	visited uint64                       // nonces sweeps removed (tests)
}

// sweepBatch bounds the expired nonces one add removes: at most one
// nonce is added per add, so the expired ones never pile up.
const sweepBatch = 256

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: make(map[[NonceSize]byte]struct{}), buckets: make(map[int64][][NonceSize]byte)}
}

// add records nonce, which expires at expires; now is the clock, both in
// Unix seconds. It first forgets up to sweepBatch nonces expired by now;
// then a nonce still there is a replay, and a cache still full refuses
// (ErrCacheFull) rather than grow.
func (c *replayCache) add(nonce [NonceSize]byte, expires, now int64) error {
	c.sweep(now, sweepBatch)
	if _, ok := c.seen[nonce]; ok {
		return ErrReplayed
	}
	if len(c.seen) >= c.max {
		return ErrCacheFull
	}
	c.seen[nonce] = struct{}{}
	b, ok := c.buckets[expires]
	if !ok {
		heap.Push(&c.due, expires)
	}
	c.buckets[expires] = append(b, nonce)
	return nil
}

// sweep forgets at most limit nonces expired by now, from the oldest
// bucket on. It looks at no live nonce.
func (c *replayCache) sweep(now int64, limit int) {
	for limit > 0 && len(c.due) > 0 && c.due[0] <= now {
		sec := c.due[0]
		b := c.buckets[sec]
		for len(b) > 0 && limit > 0 {
			delete(c.seen, b[len(b)-1])
			b = b[:len(b)-1]
			limit--
			c.visited++
		}
		if len(b) > 0 {
			c.buckets[sec] = b
			return
		}
		delete(c.buckets, sec)
		heap.Pop(&c.due)
	}
}

// secondHeap is a min-heap of Unix seconds (container/heap).
type secondHeap []int64

func (h secondHeap) Len() int           { return len(h) }
func (h secondHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h secondHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push adds x, an int64 (container/heap).
func (h *secondHeap) Push(x any) { *h = append(*h, x.(int64)) }

// Pop removes the last element (container/heap).
func (h *secondHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Cached returns the number of nonces in the replay cache.
func (v *Verifier) Cached() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.replay.seen)
}

// Authenticate is a net.Config.Authenticate that accepts a connect token
// as the credentials: the user is the token's user ID and the user data
// its data. It does no I/O (one Ed25519 verification, a map lookup): run
// it with net.Config.AuthInline.
func (v *Verifier) Authenticate(_ context.Context, req *net.AuthRequest) (net.AuthResult, error) {
	c, err := v.Verify(req.Credentials, req.ServerKey)
	if err != nil {
		return net.AuthResult{}, err
	}
	return net.AuthResult{User: c.User, Data: c.Data}, nil
}
