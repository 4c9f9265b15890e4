package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/token"
)

func TestAuthFlags(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	keyText := net.OperatorPublicKeyString(pub)
	file := filepath.Join(t.TempDir(), "token.pub")
	if err := os.WriteFile(file, []byte("# token keys\n"+net.OperatorPublicKeyString(pub2)+"\n"+keyText+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var open net.Config
	if err := configureAuth(&open, authFlags{mode: "open"}); err != nil || open.Authenticate == nil || open.DuplicateLogin != net.SessionMany {
		t.Fatalf("open: %v", err)
	}
	id, _ := net.NewIdentity()
	for _, key := range []string{keyText, net.OperatorPublicKeyString(pub2) + "," + keyText, file} {
		var cfg net.Config
		if err := configureAuth(&cfg, authFlags{mode: "token", tokenKey: key, maxLifetime: time.Minute, duplicate: "refuse"}); err != nil {
			t.Fatalf("%q: %v", key, err)
		}
		if !cfg.AuthInline || cfg.DuplicateLogin != net.SessionRefuse {
			t.Fatalf("%q: config %+v", key, cfg)
		}
		tok, _ := token.Mint(priv, token.Claims{User: "alice", Expires: time.Now().Add(30 * time.Second), ServerKey: id.Current()})
		res, err := cfg.Authenticate(context.Background(), &net.AuthRequest{Credentials: tok, ServerKey: id.Current()})
		if err != nil || res.User != "alice" {
			t.Fatalf("%q: %+v %v", key, res, err)
		}
		if _, err := cfg.Authenticate(context.Background(), &net.AuthRequest{Credentials: tok, ServerKey: id.Current()}); !errors.Is(err, net.ErrUnauthorized) {
			t.Fatalf("replay: %v", err)
		}
	}
	for _, f := range []authFlags{
		{mode: "closed"},
		{mode: "token", maxLifetime: time.Minute, duplicate: "replace"},                                     // no key
		{mode: "token", tokenKey: "nope", maxLifetime: time.Minute, duplicate: "replace"},                   // neither key nor file
		{mode: "token", tokenKey: keyText, maxLifetime: time.Minute, duplicate: "twice"},                    // bad policy
		{mode: "token", tokenKey: keyText, maxLifetime: 0, duplicate: "replace"},                            // bad lifetime
		{mode: "token", tokenKey: keyText, maxLifetime: time.Minute, duplicate: "replace", publicAddr: "x"}, // bad address
	} {
		var cfg net.Config
		if err := configureAuth(&cfg, f); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	// The command refuses them before touching any file.
	for _, args := range [][]string{{"-auth", "closed"}, {"-auth", "token"}, {"-auth", "token", "-token-key", keyText, "-duplicate-login", "x"}} {
		if err := run(append(args, "-key-file", filepath.Join(t.TempDir(), "k"))); err == nil {
			t.Errorf("run(%q) accepted", args)
		}
	}
}
