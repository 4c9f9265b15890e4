package net

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

var errBadSeal = errors.New("bad seal")

// Cipher is a link's AEAD.
type Cipher uint8

const (
	// CipherAuto lets the handshake choose: AES-256-GCM when both ends have
	// AES hardware (faster, and constant-time only with hardware),
	// ChaCha20-Poly1305 otherwise.
	CipherAuto Cipher = 0
	// ChaCha20Poly1305 is the default where either end lacks AES hardware.
	ChaCha20Poly1305 Cipher = 1
	// AES256GCM is used when both ends have AES hardware.
	AES256GCM Cipher = 2
)

func (c Cipher) String() string {
	switch c {
	case ChaCha20Poly1305, CipherAuto:
		return "chacha20-poly1305"
	case AES256GCM:
		return "aes-256-gcm"
	}
	return "unknown"
}

// hasAESHardware reports whether this CPU runs AES-GCM in constant-time
// hardware.
func hasAESHardware() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	}
	return false
}

// prefersAES reports whether a host configured with c asks for AES-GCM.
func prefersAES(c Cipher) bool {
	return c == AES256GCM || c == CipherAuto && hasAESHardware()
}

// Keys are the two directional keys of a link and its cipher. Send seals
// what this host sends; Recv opens what it receives. The peer holds the same
// two keys swapped.
type Keys struct {
	Send   [keySize]byte
	Recv   [keySize]byte
	Cipher Cipher // CipherAuto means ChaCha20-Poly1305
}

// Swap returns the keys as the other end of the link sees them.
func (k Keys) Swap() Keys { return Keys{Send: k.Recv, Recv: k.Send, Cipher: k.Cipher} }

// NewKeys returns a fresh random pair of keys, as the server hands out to two
// peers that will talk directly (the second peer gets k.Swap()).
func NewKeys() Keys {
	var k Keys
	_, _ = rand.Read(k.Send[:])
	_, _ = rand.Read(k.Recv[:])
	return k
}

// handshakeLabel starts the transcript hash of every handshake.
const handshakeLabel = "skein v4 handshake"

// transcriptHash hashes what both ends saw of a handshake: the hello's
// fields up to its key ID (kind, version, flags, client ephemeral key, key
// ID; the cookie is left out, it changes between the two hellos) and the
// welcome's header (kind, cipher, server ephemeral key, server static key).
//
// A hello with an auth block (flags bit 2) also has its sealed bytes, after
// their length (2), between the two: the link keys then depend on the
// credentials the server opened, so a block swapped in flight makes the
// welcome fail to open.
func transcriptHash(hl *hello, welcomeHdr []byte) [sha256.Size]byte {
	var b [len(handshakeLabel) + helloCookieLen + welcomeHeader]byte
	n := copy(b[:], handshakeLabel)
	b[n] = kindHello
	binary.LittleEndian.PutUint16(b[n+1:], hl.Version)
	b[n+3] = hl.Flags
	copy(b[n+4:], hl.Pub[:])
	copy(b[n+4+keySize:], hl.KeyID[:])
	copy(b[n+helloCookieLen:], welcomeHdr[:welcomeHeader])
	if hl.Flags&helloAuth == 0 {
		return sha256.Sum256(b[:])
	}
	d := sha256.New()
	d.Write(b[:n+helloCookieLen])
	var l [2]byte
	binary.LittleEndian.PutUint16(l[:], uint16(len(hl.Auth)))
	d.Write(l[:])
	d.Write(hl.Auth)
	d.Write(b[n+helloCookieLen:])
	var out [sha256.Size]byte
	d.Sum(out[:0])
	return out
}

// deriveKeys runs HKDF-SHA256 over the two X25519 results of the
// handshake, ee (client ephemeral × server ephemeral: forward secrecy) and
// es (client ephemeral × server static: only the holder of the server's
// static key can compute it), salted with the transcript hash, and returns
// the client's view of the link keys.
func deriveKeys(ee, es []byte, transcript [sha256.Size]byte) (Keys, error) {
	var secret [2 * keySize]byte
	copy(secret[:], ee)
	copy(secret[keySize:], es)
	okm, err := hkdf.Key(sha256.New, secret[:], transcript[:], "skein v4 link keys", 2*keySize)
	clear(secret[:])
	if err != nil {
		return Keys{}, fmt.Errorf("skein/net: derive keys: %w", err)
	}
	var k Keys
	copy(k.Send[:], okm[:keySize]) // client → server
	copy(k.Recv[:], okm[keySize:]) // server → client
	return k, nil
}

// sealer seals and opens the datagrams of one link. Both AEADs are safe for
// concurrent use.
type sealer struct {
	send, recv cipher.AEAD
}

func newSealer(k Keys) (*sealer, error) {
	s, err := newAEAD(k.Cipher, k.Send[:])
	if err != nil {
		return nil, fmt.Errorf("skein/net: send key: %w", err)
	}
	r, err := newAEAD(k.Cipher, k.Recv[:])
	if err != nil {
		return nil, fmt.Errorf("skein/net: recv key: %w", err)
	}
	return &sealer{send: s, recv: r}, nil
}

func newAEAD(c Cipher, key []byte) (cipher.AEAD, error) {
	if c == AES256GCM {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	return chacha20poly1305.New(key)
}

// nonceSize is the AEAD nonce size: the packet number, little endian,
// zero-padded.
const nonceSize = chacha20poly1305.NonceSize

func putNonce(n []byte, pn uint64) []byte {
	n = n[:nonceSize]
	binary.LittleEndian.PutUint64(n, pn)
	clear(n[8:])
	return n
}

// seal appends the sealed form of plaintext to dst, which already holds the
// cleartext header (used as associated data). nonce is scratch space of
// nonceSize bytes that must not overlap dst's future contents (an array on
// the stack would escape through the AEAD interface: one allocation per
// datagram).
func (s *sealer) seal(dst []byte, pn uint64, plaintext, nonce []byte) []byte {
	return s.send.Seal(dst, putNonce(nonce, pn), plaintext, dst)
}

// open decrypts the datagram b (header + ciphertext) in place and returns
// the plaintext, which aliases b. nonce is scratch as for seal.
func (s *sealer) open(b []byte, pn uint64, headerLen int, nonce []byte) ([]byte, error) {
	p, err := s.recv.Open(b[headerLen:headerLen], putNonce(nonce, pn), b[headerLen:], b[:headerLen])
	if err != nil {
		return nil, errBadSeal
	}
	return p, nil
}

// cookieJar makes and checks stateless handshake cookies: an HMAC over the
// source address, the client's public key and a timestamp, keyed by a secret
// the host draws at start. A cookie proves the client receives at the address
// it claims, so the server keeps no state for spoofed sources.
type cookieJar struct {
	mu       sync.Mutex
	mac      hash.Hash
	lifetime time.Duration
}

func newCookieJar(lifetime time.Duration) *cookieJar {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return &cookieJar{mac: hmac.New(sha256.New, secret), lifetime: lifetime}
}

func (j *cookieJar) sum(ts uint32, addr netip.AddrPort, pub []byte) []byte {
	var buf [4 + 16 + 2]byte
	binary.LittleEndian.PutUint32(buf[:], ts)
	a16 := addr.Addr().As16()
	copy(buf[4:], a16[:])
	binary.LittleEndian.PutUint16(buf[20:], addr.Port())
	j.mu.Lock()
	defer j.mu.Unlock()
	j.mac.Reset()
	j.mac.Write(buf[:])
	j.mac.Write(pub)
	return j.mac.Sum(nil)[:cookieSize-4]
}

func (j *cookieJar) make(now time.Time, addr netip.AddrPort, pub []byte) []byte {
	ts := uint32(now.Unix())
	c := binary.LittleEndian.AppendUint32(make([]byte, 0, cookieSize), ts)
	return append(c, j.sum(ts, addr, pub)...)
}

func (j *cookieJar) check(now time.Time, addr netip.AddrPort, pub, cookie []byte) bool {
	if len(cookie) != cookieSize {
		return false
	}
	ts := binary.LittleEndian.Uint32(cookie)
	age := now.Unix() - int64(ts)
	if age < -1 || age > int64(j.lifetime/time.Second) {
		return false
	}
	return subtle.ConstantTimeCompare(j.sum(ts, addr, pub), cookie[4:]) == 1
}

// newKeyPair draws an ephemeral X25519 key pair.
func newKeyPair() (*ecdh.PrivateKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("skein/net: x25519 key: %w", err)
	}
	return k, nil
}

// agree computes the shared secret with the peer's public key.
func agree(priv *ecdh.PrivateKey, peerPub []byte) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(peerPub)
	if err != nil {
		return nil, fmt.Errorf("skein/net: peer key: %w", err)
	}
	s, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("skein/net: key agreement: %w", err)
	}
	return s, nil
}
