package main

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/token"
	"github.com/skein-dev/skein/server/matchserver"
)

// authFlags are the auth mode's flags (docs in the server's README).
type authFlags struct {
	mode        string        // open or token
	tokenKey    string        // public key(s), comma-separated, or a file of them
	maxLifetime time.Duration // tokens expiring further ahead are refused
	publicAddr  string        // the server's public addresses, comma-separated
	duplicate   string        // replace or refuse
}

// configureAuth sets cfg's Authenticate (and its policy) for the mode.
func configureAuth(cfg *net.Config, f authFlags) error {
	switch f.mode {
	case "open":
		// Profiles are claims, not proof: no session limit.
		cfg.Authenticate = matchserver.OpenAuth
		cfg.AuthInline = true
		cfg.DuplicateLogin = net.SessionMany
		return nil
	case "token":
	default:
		return fmt.Errorf("-auth %q: want open or token", f.mode)
	}
	keys, err := parseTokenKeys(f.tokenKey)
	if err != nil {
		return err
	}
	var addrs []netip.AddrPort
	for _, a := range splitList(f.publicAddr) {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return fmt.Errorf("-public-addr: %w", err)
		}
		addrs = append(addrs, ap)
	}
	if f.maxLifetime <= 0 {
		return fmt.Errorf("-token-max-lifetime %v: must be positive", f.maxLifetime)
	}
	v, err := token.NewVerifier(token.VerifierConfig{Keys: keys, Addrs: addrs, MaxLifetime: f.maxLifetime})
	if err != nil {
		return err
	}
	cfg.Authenticate = v.Authenticate
	cfg.AuthInline = true // one Ed25519 verification, no I/O
	switch f.duplicate {
	case "replace":
		cfg.DuplicateLogin = net.SessionReplace
	case "refuse":
		cfg.DuplicateLogin = net.SessionRefuse
	default:
		return fmt.Errorf("-duplicate-login %q: want replace or refuse", f.duplicate)
	}
	return nil
}

// parseTokenKeys reads -token-key: public keys in their text form,
// comma-separated, or the name of a file holding them one a line (#
// comments).
func parseTokenKeys(v string) ([]ed25519.PublicKey, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("-auth token needs -token-key (the public key skein-token -print-public shows)")
	}
	text := v
	if _, err := net.ParseOperatorKey(strings.Split(v, ",")[0]); err != nil {
		b, ferr := os.ReadFile(v)
		if ferr != nil {
			return nil, fmt.Errorf("-token-key %q: neither a key (%v) nor a readable file (%w)", v, err, ferr)
		}
		text = string(b)
	}
	var keys []ed25519.PublicKey
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' }) {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := net.ParseOperatorKey(line)
		if err != nil {
			return nil, fmt.Errorf("-token-key: %w", err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("-token-key: no key")
	}
	return keys, nil
}
