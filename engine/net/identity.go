package net

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ServerKey is a server's long-term X25519 public key: what a client pins
// (Config.ServerKeys) and what the handshake proves the server holds the
// private half of. Its text form (String, ParseServerKey) is 43 characters
// of unpadded URL-safe base64, fit for a flag or a join link.
type ServerKey [keySize]byte

// keyIDSize is the size of a server key's ID in the hello.
const keyIDSize = 8

// KeyID names a server key in the hello in 8 bytes (the first 8 bytes of
// its SHA-256 hash) so a server that holds two keys (rotation) knows which
// one the client expects. The zero KeyID names no key.
type KeyID [keyIDSize]byte

// String returns the key in unpadded URL-safe base64.
func (k ServerKey) String() string { return base64.RawURLEncoding.EncodeToString(k[:]) }

// IsZero reports whether k is the zero key (no key).
func (k ServerKey) IsZero() bool { return k == ServerKey{} }

// Fingerprint returns the text players and operators compare: "SHA256:"
// and the unpadded standard base64 of the key's SHA-256 hash (the form
// OpenSSH shows for host keys).
func (k ServerKey) Fingerprint() string {
	sum := sha256.Sum256(k[:])
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// ID returns the key's ID, as a client puts it in its hello.
func (k ServerKey) ID() KeyID {
	sum := sha256.Sum256(k[:])
	var id KeyID
	copy(id[:], sum[:keyIDSize])
	return id
}

// ErrBadServerKey: text that is not a server key (ParseServerKey, key
// files).
var ErrBadServerKey = errors.New("skein/net: not a server key")

// ParseServerKey reads a key in the form String writes (standard base64,
// padded or not, is accepted too).
func ParseServerKey(s string) (ServerKey, error) {
	var k ServerKey
	s = strings.TrimSpace(s)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.StdEncoding.DecodeString(s)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(s)
		}
	}
	if err != nil || len(b) != keySize {
		return k, fmt.Errorf("%w: %q (want 32 bytes of base64)", ErrBadServerKey, s)
	}
	copy(k[:], b)
	if k.IsZero() {
		return k, fmt.Errorf("%w: the zero key", ErrBadServerKey)
	}
	return k, nil
}

// Identity is a server's long-term key pair, and optionally the next one
// (rotation): a server holding both answers a client that names either
// key in its hello with that key, and everyone else with the current one.
// An Identity is immutable; Host.SetIdentity swaps it on a running host.
// Its private keys are never logged or printed.
type Identity struct {
	current, next *ecdh.PrivateKey
	curPub        ServerKey
	nextPub       ServerKey
	curID, nextID KeyID
	// Operator certificates of the two keys (cert.go), if any.
	curCert, nextCert *ServerCert
}

// NewIdentity draws a fresh current key and no next key.
func NewIdentity() (*Identity, error) {
	k, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	return newIdentity(k, nil), nil
}

func newIdentity(cur, next *ecdh.PrivateKey) *Identity {
	id := &Identity{current: cur, next: next}
	copy(id.curPub[:], cur.PublicKey().Bytes())
	id.curID = id.curPub.ID()
	if next != nil {
		copy(id.nextPub[:], next.PublicKey().Bytes())
		id.nextID = id.nextPub.ID()
	}
	return id
}

// Current returns the public half of the key the server answers with.
func (id *Identity) Current() ServerKey { return id.curPub }

// Next returns the public half of the next key, if there is one.
func (id *Identity) Next() (ServerKey, bool) { return id.nextPub, id.next != nil }

// WithNext returns a copy of the identity holding a fresh next key (which
// replaces any next key it held): publish it to clients, then Rotate.
func (id *Identity) WithNext() (*Identity, error) {
	k, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	n := newIdentity(id.current, k)
	n.curCert = id.curCert
	return n, nil
}

// Rotate returns the identity whose current key is the next key and which
// has no next key (the old current key is gone: clients that pinned it get
// ErrServerKeyMismatch naming the new key's fingerprint). It fails if
// there is no next key.
func (id *Identity) Rotate() (*Identity, error) {
	if id.next == nil {
		return nil, errors.New("skein/net: rotate: the identity has no next key")
	}
	n := newIdentity(id.next, nil)
	n.curCert = id.nextCert
	return n, nil
}

// WithCert returns a copy of the identity with the operator certificate c
// attached to the key it signs (current or next), replacing any it had.
func (id *Identity) WithCert(c ServerCert) (*Identity, error) {
	n := *id
	switch c.Key {
	case id.curPub:
		n.curCert = &c
	case id.nextPub:
		if id.next == nil {
			return nil, fmt.Errorf("%w: it signs none of this identity's keys", ErrBadCert)
		}
		n.nextCert = &c
	default:
		return nil, fmt.Errorf("%w: it signs none of this identity's keys", ErrBadCert)
	}
	return &n, nil
}

// Cert returns the operator certificate of the current key, if any.
func (id *Identity) Cert() (ServerCert, bool) {
	if id.curCert == nil {
		return ServerCert{}, false
	}
	return *id.curCert, true
}

// key returns the private key a handshake uses for a client that named
// the key with this ID: the next key if it names that one, the current
// key otherwise (a client that pinned an older key learns the current
// key's fingerprint from its error).
func (id *Identity) key(want KeyID) (*ecdh.PrivateKey, *ServerKey, *ServerCert) {
	if id.next != nil && want == id.nextID {
		return id.next, &id.nextPub, id.nextCert
	}
	return id.current, &id.curPub, id.curCert
}

// identityFileHeader opens every key file.
const identityFileHeader = "# skein server identity: secret, keep it mode 0600 and never share it"

// MarshalText writes the identity as a key file: a comment line, then
// "current <base64 private key>", possibly "next <base64 private key>",
// and a "cert <base64 certificate>" line for each key an operator signed.
// The result is secret.
func (id *Identity) MarshalText() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(identityFileHeader + "\n")
	fmt.Fprintf(&b, "current %s\n", base64.RawURLEncoding.EncodeToString(id.current.Bytes()))
	if id.next != nil {
		fmt.Fprintf(&b, "next %s\n", base64.RawURLEncoding.EncodeToString(id.next.Bytes()))
	}
	for _, c := range []*ServerCert{id.curCert, id.nextCert} {
		if c != nil {
			fmt.Fprintf(&b, "cert %s\n", c)
		}
	}
	return b.Bytes(), nil
}

// ParseIdentity reads a key file written by MarshalText.
func ParseIdentity(text []byte) (*Identity, error) {
	var cur, next *ecdh.PrivateKey
	var certs []ServerCert
	sc := bufio.NewScanner(bytes.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		name, val, ok := strings.Cut(s, " ")
		if ok && name == "cert" {
			c, err := ParseServerCert(val)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			certs = append(certs, c)
			continue
		}
		if !ok || (name != "current" && name != "next") {
			return nil, fmt.Errorf("%w: line %d: want \"current KEY\" or \"next KEY\"", ErrBadServerKey, line)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(val))
		if err != nil || len(raw) != keySize {
			// The value is secret: the error does not quote it.
			return nil, fmt.Errorf("%w: line %d: the %s key is not 32 bytes of base64", ErrBadServerKey, line, name)
		}
		k, err := ecdh.X25519().NewPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrBadServerKey, line, err)
		}
		switch {
		case name == "current" && cur == nil:
			cur = k
		case name == "next" && next == nil:
			next = k
		default:
			return nil, fmt.Errorf("%w: line %d: a second %s key", ErrBadServerKey, line, name)
		}
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: no current key", ErrBadServerKey)
	}
	id := newIdentity(cur, next)
	for _, c := range certs {
		var err error
		if id, err = id.WithCert(c); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// LoadIdentity reads the key file at path; if there is none, it creates
// one with a fresh key (mode 0600, in a directory created with mode 0700
// if needed) and reports created. A key file readable by others is
// refused: its key may have leaked.
func LoadIdentity(path string) (id *Identity, created bool, err error) {
	text, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		id, err := NewIdentity()
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("skein/net: key file: %w", err)
		}
		if err := SaveIdentity(path, id); err != nil {
			return nil, false, err
		}
		return id, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("skein/net: key file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("skein/net: key file %s has mode %v: others may read it; chmod 600 it (or make a new key)", path, fi.Mode().Perm())
	}
	id, err = ParseIdentity(text)
	if err != nil {
		return nil, false, fmt.Errorf("skein/net: key file %s: %w", path, err)
	}
	return id, false, nil
}

// SaveIdentity writes id to the key file at path with mode 0600, replacing
// it atomically (a temporary file in the same directory, then a rename).
func SaveIdentity(path string, id *Identity) error {
	text, err := id.MarshalText()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".skein-key-*")
	if err != nil {
		return fmt.Errorf("skein/net: key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("skein/net: key file: %w", err)
	}
	if _, err := f.Write(text); err != nil {
		f.Close()
		return fmt.Errorf("skein/net: key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("skein/net: key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("skein/net: key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("skein/net: key file: %w", err)
	}
	return nil
}

// ErrServerKeyMismatch: the server Dial reached did not prove it holds a
// key the client trusts (Config.ServerKeys, Config.VerifyServerKey). Dial's
// error is then a *ServerKeyError naming the key it saw.
var ErrServerKeyMismatch = errors.New("skein/net: server key mismatch")

// ServerKeyError is what Dial returns when it refuses the server's key.
// Nothing was sent to that server after its hello: no link exists.
type ServerKeyError struct {
	// Seen is the static key the server named in its welcome.
	Seen ServerKey
	// Proven reports whether the server proved it holds Seen (its welcome
	// opened with keys only Seen's private half could derive). When false,
	// every welcome claiming a key failed to open before Dial timed out:
	// something on the path forged them.
	Proven bool
	// Reason is why the key was refused: ErrServerKeyMismatch, or the
	// error Config.VerifyServerKey returned (which should wrap it).
	Reason error
	// BeforeCredentials: the key was named in the cookie reply to a
	// DialWith with credentials, and refused before any were sent (it is
	// not proven then: Proven is false).
	BeforeCredentials bool
}

func (e *ServerKeyError) Error() string {
	if e.BeforeCredentials {
		return fmt.Sprintf("%v: the server named key %s, which is not trusted (%v); no credentials were sent", ErrServerKeyMismatch, e.Seen.Fingerprint(), e.Reason)
	}
	if !e.Proven {
		return fmt.Sprintf("%v: the server did not prove it holds key %s (welcomes failed to open)", ErrServerKeyMismatch, e.Seen.Fingerprint())
	}
	if e.Reason != nil && !errors.Is(e.Reason, ErrServerKeyMismatch) {
		return fmt.Sprintf("%v: the server's key %s was refused: %v", ErrServerKeyMismatch, e.Seen.Fingerprint(), e.Reason)
	}
	return fmt.Sprintf("%v: the server proved key %s, which is not a trusted key", ErrServerKeyMismatch, e.Seen.Fingerprint())
}

// Unwrap returns ErrServerKeyMismatch and the reason, for errors.Is.
func (e *ServerKeyError) Unwrap() []error {
	if e.Reason == nil || e.Reason == ErrServerKeyMismatch {
		return []error{ErrServerKeyMismatch}
	}
	return []error{ErrServerKeyMismatch, e.Reason}
}

// Identity returns a server's identity (nil on a client).
func (h *Host) Identity() *Identity { return h.ident.Load() }

// SetIdentity replaces a running server's identity, for a key rotation
// without a restart: handshakes from now on use the new one; links made
// before keep their keys.
func (h *Host) SetIdentity(id *Identity) error {
	if !h.cfg.Accept {
		return errors.New("skein/net: SetIdentity: not a server")
	}
	if id == nil {
		return errors.New("skein/net: SetIdentity: nil identity")
	}
	h.ident.Store(id)
	return nil
}

// ServerKey returns the key the server proved it holds when Dial last
// succeeded (show its Fingerprint to a player who trusts it on first use),
// and false before.
func (h *Host) ServerKey() (ServerKey, bool) {
	k := h.srvKey.Load()
	if k == nil {
		return ServerKey{}, false
	}
	return *k, true
}
