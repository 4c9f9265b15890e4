package net

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// certSize is a ServerCert on the wire: the server key (32), the expiry
// (8, Unix seconds) and the operator's Ed25519 signature (64).
const certSize = keySize + 8 + ed25519.SignatureSize

// certLabel starts the message an operator signs.
const certLabel = "skein server key certificate v1"

// ServerCert is an operator's signature over a server key with an expiry:
// a client that trusts the operator (Config.ServerCAs) accepts any server
// key the operator signed, so a fleet of servers needs one trusted key.
// The server sends it inside the sealed welcome when the client asks.
type ServerCert struct {
	Key     ServerKey
	Expires time.Time // to the second
	Sig     [ed25519.SignatureSize]byte
}

// ErrBadCert: a certificate that is malformed, expired, for another key or
// not signed by a trusted operator.
var ErrBadCert = errors.New("skein/net: bad server certificate")

func certMessage(k ServerKey, expires int64) []byte {
	b := append([]byte(certLabel), k[:]...)
	return binary.LittleEndian.AppendUint64(b, uint64(expires))
}

// SignServerKey has the operator key ca sign server key k until expires.
func SignServerKey(ca ed25519.PrivateKey, k ServerKey, expires time.Time) ServerCert {
	c := ServerCert{Key: k, Expires: time.Unix(expires.Unix(), 0)}
	copy(c.Sig[:], ed25519.Sign(ca, certMessage(k, expires.Unix())))
	return c
}

// Verify checks that one of cas signed the certificate and that it has not
// expired at now.
func (c ServerCert) Verify(cas []ed25519.PublicKey, now time.Time) error {
	if !now.Before(c.Expires) {
		return fmt.Errorf("%w: expired at %v", ErrBadCert, c.Expires.UTC())
	}
	msg := certMessage(c.Key, c.Expires.Unix())
	for _, ca := range cas {
		if len(ca) == ed25519.PublicKeySize && ed25519.Verify(ca, msg, c.Sig[:]) {
			return nil
		}
	}
	return fmt.Errorf("%w: not signed by a trusted operator", ErrBadCert)
}

func (c ServerCert) appendTo(b []byte) []byte {
	b = append(b, c.Key[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.Expires.Unix()))
	return append(b, c.Sig[:]...)
}

func parseCert(b []byte) (ServerCert, error) {
	var c ServerCert
	if len(b) != certSize {
		return c, fmt.Errorf("%w: %d bytes, want %d", ErrBadCert, len(b), certSize)
	}
	copy(c.Key[:], b)
	exp := binary.LittleEndian.Uint64(b[keySize:])
	if exp > 1<<40 { // beyond year 36,000: not a time
		return c, fmt.Errorf("%w: expiry out of range", ErrBadCert)
	}
	c.Expires = time.Unix(int64(exp), 0)
	copy(c.Sig[:], b[keySize+8:])
	return c, nil
}

// String returns the certificate in unpadded URL-safe base64 (it is
// public: the key file keeps it beside the keys).
func (c ServerCert) String() string {
	return base64.RawURLEncoding.EncodeToString(c.appendTo(nil))
}

// ParseServerCert reads a certificate in the form String writes.
func ParseServerCert(s string) (ServerCert, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return ServerCert{}, fmt.Errorf("%w: %w", ErrBadCert, err)
	}
	return parseCert(b)
}

// NewOperatorKey draws an operator's Ed25519 signing key.
func NewOperatorKey() (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("skein/net: operator key: %w", err)
	}
	return k, nil
}

// OperatorPublicKeyString and ParseOperatorKey are the text form of an
// operator's public key (unpadded URL-safe base64), as clients configure
// it in Config.ServerCAs.
func OperatorPublicKeyString(k ed25519.PublicKey) string {
	return base64.RawURLEncoding.EncodeToString(k)
}

// ParseOperatorKey reads an operator public key written by
// OperatorPublicKeyString.
func ParseOperatorKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: not an operator key", ErrBadServerKey)
	}
	return ed25519.PublicKey(b), nil
}

// operatorFileHeader opens every operator key file.
const operatorFileHeader = "# skein operator signing key: secret, keep it offline and mode 0600"

// LoadOperatorKey reads the operator key file at path, or creates one
// (mode 0600) and reports created. A file others can read is refused.
func LoadOperatorKey(path string) (k ed25519.PrivateKey, created bool, err error) {
	text, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if k, err = NewOperatorKey(); err != nil {
			return nil, false, err
		}
		body := operatorFileHeader + "\nseed " + base64.RawURLEncoding.EncodeToString(k.Seed()) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("skein/net: operator key file: %w", err)
		}
		if _, err := f.WriteString(body); err != nil {
			_ = f.Close() // the write error is the one to report
			return nil, false, fmt.Errorf("skein/net: operator key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, false, fmt.Errorf("skein/net: operator key file: %w", err)
		}
		return k, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("skein/net: operator key file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("skein/net: operator key file %s has mode %v: others may read it", path, fi.Mode().Perm())
	}
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "seed "); ok {
			seed, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(seed) != ed25519.SeedSize {
				return nil, false, fmt.Errorf("%w: operator key file %s: the seed is not 32 bytes of base64", ErrBadServerKey, path)
			}
			return ed25519.NewKeyFromSeed(seed), false, nil
		}
	}
	return nil, false, fmt.Errorf("%w: operator key file %s: no seed line", ErrBadServerKey, path)
}
