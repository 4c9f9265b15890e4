// Package token makes and checks connect tokens, in the style of
// netcode.io: the operator's backend, having logged a player in its own
// way, mints a short-lived token naming the user, the server (its static
// key, or its addresses) and an expiry, signed with an Ed25519 key; the
// game client passes it to net.Host.DialWith as its credentials (sealed in
// the handshake); the game server checks it with the public key alone (no
// database call) before the client gets anything, and refuses a token that
// is forged, expired, replayed or meant for another server.
//
// The format is in docs/PROTOCOL.md ("Connect tokens"). Signing keys use
// the operator key file format of engine/net (net.LoadOperatorKey,
// net.ParseOperatorKey); the match server's tokens are minted with
// `go run ./tools/skein-token`.
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// Version is the token format version, its first byte.
const Version byte = 1

// Bounds of a token's fields.
const (
	MaxUserID = 64  // bytes of user ID (UTF-8; not empty)
	MaxData   = 192 // bytes of user data
	MaxAddrs  = 4   // server addresses
	NonceSize = 16
	KeyIDSize = 8
)

// Fixed parts of the encoding.
const (
	headerSize = 1 + KeyIDSize + 8 + NonceSize + 32 + 1 // version, key ID, expiry, nonce, server key, address count
	addrSize   = 16 + 2
	// MaxSize is the largest token: it fits net.MaxCredentials.
	MaxSize = headerSize + MaxAddrs*addrSize + 1 + MaxUserID + 2 + MaxData + ed25519.SignatureSize
	minSize = headerSize + 1 + 1 + 2 + ed25519.SignatureSize
)

// signLabel starts what a token's signature covers.
const signLabel = "skein connect token v1"

// Claims are what a token says.
type Claims struct {
	// User is the user ID (1 to MaxUserID bytes).
	User string
	// Expires is when the token stops being accepted (whole seconds).
	Expires time.Time
	// ServerKey, if not zero, is the static key of the only server (or
	// server key) that accepts the token.
	ServerKey net.ServerKey
	// Addrs, if any, are the server addresses that accept the token (a
	// server checks them against its own, VerifierConfig.Addrs).
	Addrs []netip.AddrPort
	// Data is per-connection user data the server keeps with the link
	// (net.User.Data): a display name, a role, a match ticket.
	Data []byte
	// Nonce makes every token distinct (the replay cache keys on it);
	// Mint draws it.
	Nonce [NonceSize]byte
}

// KeyID names an operator signing key in a token: the first 8 bytes of the
// SHA-256 of its public key.
func KeyID(pub ed25519.PublicKey) [KeyIDSize]byte {
	s := sha256.Sum256(pub)
	return [KeyIDSize]byte(s[:KeyIDSize])
}

// Mint returns a token for c signed with key, with a fresh nonce. A token
// must name the server it is for: a ServerKey, or at least one address.
func Mint(key ed25519.PrivateKey, c Claims) ([]byte, error) {
	switch {
	case len(key) != ed25519.PrivateKeySize:
		return nil, fmt.Errorf("skein/token: mint: not an Ed25519 private key")
	case c.User == "" || len(c.User) > MaxUserID:
		return nil, fmt.Errorf("skein/token: mint: user ID of %d bytes (1 to %d)", len(c.User), MaxUserID)
	case len(c.Data) > MaxData:
		return nil, fmt.Errorf("skein/token: mint: %d bytes of user data (max %d)", len(c.Data), MaxData)
	case len(c.Addrs) > MaxAddrs:
		return nil, fmt.Errorf("skein/token: mint: %d addresses (max %d)", len(c.Addrs), MaxAddrs)
	case c.ServerKey == (net.ServerKey{}) && len(c.Addrs) == 0:
		return nil, fmt.Errorf("skein/token: mint: the token names no server (a key or an address)")
	}
	if _, err := rand.Read(c.Nonce[:]); err != nil {
		return nil, fmt.Errorf("skein/token: mint: %w", err)
	}
	b := make([]byte, 0, MaxSize)
	b = append(b, Version)
	id := KeyID(key.Public().(ed25519.PublicKey))
	b = append(b, id[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.Expires.Unix()))
	b = append(b, c.Nonce[:]...)
	b = append(b, c.ServerKey[:]...)
	b = append(b, byte(len(c.Addrs)))
	for _, a := range c.Addrs {
		ip := a.Addr().Unmap().As16()
		b = append(b, ip[:]...)
		b = binary.LittleEndian.AppendUint16(b, a.Port())
	}
	b = append(b, byte(len(c.User)))
	b = append(b, c.User...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(c.Data)))
	b = append(b, c.Data...)
	return append(b, ed25519.Sign(key, signedBytes(b))...), nil
}

// signedBytes is what a token's signature covers: the label and every byte
// before the signature.
func signedBytes(body []byte) []byte {
	return append([]byte(signLabel), body...)
}

// Token is a decoded, not yet verified, token.
type Token struct {
	Claims
	KeyID [KeyIDSize]byte
	body  []byte // every byte before the signature
	sig   []byte
}

// Parse decodes a token without checking anything but its layout: every
// length is checked against what is left and against its bound, and
// trailing bytes are refused (ErrMalformed).
func Parse(b []byte) (Token, error) {
	var t Token
	if len(b) < minSize || len(b) > MaxSize || b[0] != Version {
		return t, ErrMalformed
	}
	copy(t.KeyID[:], b[1:])
	t.Expires = time.Unix(int64(binary.LittleEndian.Uint64(b[1+KeyIDSize:])), 0)
	p := 1 + KeyIDSize + 8
	copy(t.Nonce[:], b[p:])
	p += NonceSize
	copy(t.ServerKey[:], b[p:])
	p += 32
	n := int(b[p])
	p++
	if n > MaxAddrs || len(b)-p < n*addrSize+1+2+ed25519.SignatureSize {
		return t, ErrMalformed
	}
	for range n {
		ip := netip.AddrFrom16([16]byte(b[p : p+16])).Unmap()
		t.Addrs = append(t.Addrs, netip.AddrPortFrom(ip, binary.LittleEndian.Uint16(b[p+16:])))
		p += addrSize
	}
	u := int(b[p])
	p++
	if u == 0 || u > MaxUserID || len(b)-p < u+2+ed25519.SignatureSize {
		return t, ErrMalformed
	}
	t.User = string(b[p : p+u])
	p += u
	d := int(binary.LittleEndian.Uint16(b[p:]))
	p += 2
	if d > MaxData || len(b)-p != d+ed25519.SignatureSize {
		return t, ErrMalformed
	}
	if d > 0 {
		t.Data = append([]byte(nil), b[p:p+d]...)
	}
	p += d
	t.body = b[:p]
	t.sig = b[p:]
	return t, nil
}
