package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"
)

// BenchmarkVerifyRefused is what refusing one token costs the server, by
// why it is refused, all in one run: the cases a flood sends (garbage, a
// signature forged over good claims, tokens validly signed but expired,
// too long, for another server, replayed) next to each other.
//
//	go test -run '^$' -bench VerifyRefused -count 5 ./engine/token
func BenchmarkVerifyRefused(b *testing.B) {
	pub, priv := testKey(b)
	now := time.Unix(1_800_000_000, 0)
	srv := serverKey(1)
	v, err := NewVerifier(VerifierConfig{Keys: []ed25519.PublicKey{pub}, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	mint := func(c Claims) []byte { return mintFor(b, priv, now, srv, c) }
	garbage := make([]byte, len(mint(Claims{})))
	rand.Read(garbage)
	garbage[0] = Version // past the version byte: a layout or key ID refusal
	forged := mint(Claims{})
	forged[len(forged)-1] ^= 1
	replayed := mint(Claims{})
	if _, err := v.Verify(replayed, srv); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		tok  []byte
		want error
	}{
		{"garbage", garbage, nil},
		{"forged", forged, ErrBadSignature},
		{"expired-signed", mint(Claims{Expires: now.Add(-time.Second)}), ErrExpired},
		{"too-long-signed", mint(Claims{Expires: now.Add(time.Hour)}), ErrTooLong},
		{"foreign-signed", mint(Claims{ServerKey: serverKey(2)}), ErrForeign},
		{"replayed", replayed, ErrReplayed},
	} {
		b.Run(c.name, func(b *testing.B) {
			if _, err := v.Verify(c.tok, srv); err == nil || (c.want != nil && err != c.want) {
				b.Fatalf("Verify: %v, want %v", err, c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = v.Verify(c.tok, srv)
			}
		})
	}
}
