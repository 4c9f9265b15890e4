package token_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/token"
)

// The backend mints a token for a player it logged in; the game server
// checks it with the public key (as net.Config.Authenticate, inline) and
// refuses it the second time.
func Example() {
	pub, signing, _ := ed25519.GenerateKey(rand.Reader) // the backend keeps signing
	server, _ := net.NewIdentity()                      // the game server's identity

	tok, err := token.Mint(signing, token.Claims{
		User:      "alice",
		Expires:   time.Now().Add(time.Minute),
		ServerKey: server.Current(),
		Data:      []byte("Alice"),
	})
	if err != nil {
		panic(err)
	}
	// The client: host.DialWith(ctx, addr, net.DialOptions{Credentials: tok}).
	// The server: net.Config{Accept: true, Identity: server,
	// Authenticate: v.Authenticate, AuthInline: true}.
	v, _ := token.NewVerifier(token.VerifierConfig{Keys: []ed25519.PublicKey{pub}})
	c, err := v.Verify(tok, server.Current())
	fmt.Println(c.User, string(c.Data), err)
	_, err = v.Verify(tok, server.Current())
	fmt.Println(err)
	// Output:
	// alice Alice <nil>
	// skein/token: token already used
}
