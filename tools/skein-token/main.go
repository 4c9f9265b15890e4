// Command skein-token mints connect tokens (engine/token) for tests and
// operators, signed with an Ed25519 token key kept in a key file (the
// operator key file format of engine/net: created with mode 0600 on first
// use; keep it on the backend, never on a game server).
//
//	go run ./tools/skein-token -key tokens.key -print-public
//	go run ./tools/skein-token -key tokens.key -user alice -server-key KEY -ttl 60s
//
// -print-public prints the public key the match server checks tokens with
// (server -auth token -token-key KEY). A token is printed as unpadded
// URL-safe base64 on one line; the client passes its bytes as its
// credentials (the arena takes it with -token). A real backend
// calls token.Mint itself, after logging the player in its own way.
package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/token"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "skein-token:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("skein-token", flag.ContinueOnError)
	keyFile := fs.String("key", os.Getenv("SKEIN_TOKEN_SIGNING_KEY_FILE"), "the token signing key `file` (created, mode 0600, if missing) ($SKEIN_TOKEN_SIGNING_KEY_FILE)")
	printPublic := fs.Bool("print-public", false, "print the public key servers check tokens with, and exit")
	user := fs.String("user", "", "the user ID the token names (1 to 64 bytes)")
	serverKey := fs.String("server-key", "", "the static `key` of the server the token is for (its -print-key)")
	addrs := fs.String("addr", "", "comma-separated server `addresses` (ip:port) the token is for (a server checks them against its -public-addr)")
	ttl := fs.Duration("ttl", time.Minute, "how long the token is valid (servers refuse more than their -token-max-lifetime, 5m by default)")
	data := fs.String("data", "", "user data the server keeps with the connection (at most 192 bytes), such as a display name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyFile == "" {
		return errors.New("-key FILE is required")
	}
	key, created, err := net.LoadOperatorKey(*keyFile)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(os.Stderr, "created token signing key file %s\n", *keyFile)
	}
	if *printPublic {
		fmt.Fprintln(out, net.OperatorPublicKeyString(key.Public().(ed25519.PublicKey)))
		return nil
	}
	c := token.Claims{User: *user, Expires: time.Now().Add(*ttl), Data: []byte(*data)}
	if *serverKey != "" {
		if c.ServerKey, err = net.ParseServerKey(*serverKey); err != nil {
			return err
		}
	}
	for _, a := range strings.Split(*addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return fmt.Errorf("-addr: %w", err)
		}
		c.Addrs = append(c.Addrs, ap)
	}
	if *ttl <= 0 {
		return errors.New("-ttl must be positive")
	}
	b, err := token.Mint(key, c)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, base64.RawURLEncoding.EncodeToString(b))
	return nil
}
