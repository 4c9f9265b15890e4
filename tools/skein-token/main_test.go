package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/token"
)

// TestMintCommand: the command makes a key file, prints its public key, and
// mints a token a Verifier with that key accepts for that server only.
func TestMintCommand(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "tokens.key")
	var out bytes.Buffer
	if err := run([]string{"-key", keyFile, "-print-public"}, &out); err != nil {
		t.Fatal(err)
	}
	pub, err := net.ParseOperatorKey(out.String())
	if err != nil {
		t.Fatal(err)
	}
	id, err := net.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"-key", keyFile, "-user", "alice", "-server-key", id.Current().String(), "-ttl", "30s", "-data", "Alice"}, &out); err != nil {
		t.Fatal(err)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(token.VerifierConfig{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(b, id.Current())
	if err != nil || c.User != "alice" || string(c.Data) != "Alice" || time.Until(c.Expires) > 31*time.Second {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	other, _ := net.NewIdentity()
	if _, err := v.Verify(b, other.Current()); err == nil {
		t.Fatal("token accepted by another server")
	}
	for _, bad := range [][]string{
		{"-key", keyFile, "-user", "alice"},                                   // names no server
		{"-key", keyFile, "-server-key", id.Current().String()},               // no user
		{"-user", "alice", "-server-key", id.Current().String()},              // no key file
		{"-key", keyFile, "-user", "a", "-addr", "nonsense"},                  // bad address
		{"-key", keyFile, "-user", "a", "-addr", "10.0.0.1:1", "-ttl", "-1s"}, // bad ttl
	} {
		if err := run(bad, &out); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
