package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/token"
)

// tokenServer is a server that admits connect tokens of the returned
// signing key, checked inline.
func tokenServer(t *testing.T, conn net.PacketConn, cfg net.Config) (*net.Host, ed25519.PrivateKey, *token.Verifier) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(token.VerifierConfig{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Accept = true
	cfg.Authenticate = v.Authenticate
	cfg.AuthInline = true
	srv, err := net.NewHost(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, priv, v
}

func mint(t *testing.T, key ed25519.PrivateKey, c token.Claims) []byte {
	t.Helper()
	if c.User == "" {
		c.User = "alice"
	}
	if c.Expires.IsZero() {
		c.Expires = time.Now().Add(time.Minute)
	}
	b, err := token.Mint(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dialToken(t *testing.T, addr netip.AddrPort, tok []byte) (*net.Host, error) {
	t.Helper()
	cli, err := net.Listen("127.0.0.1:0", net.Config{HandshakeTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, cli.DialWith(context.Background(), addr, net.DialOptions{Credentials: tok})
}

// TestTokensOverLoopback: a valid token connects as its user; bad, expired,
// replayed and foreign tokens are refused with typed errors at Dial, before
// the server keeps anything (no link, no pending link, no event).
func TestTokensOverLoopback(t *testing.T) {
	conn, err := net.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, key, v := tokenServer(t, conn, net.Config{SourceHandshakeRate: -1, SourceLinks: -1, SourcePending: -1})
	me := srv.Identity().Current()
	addr := srv.LocalAddr()

	good := mint(t, key, token.Claims{ServerKey: me, Data: []byte("Alice")})
	cli, err := dialToken(t, addr, good)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := srv.Next(ctx)
	if err != nil || e.Kind != net.EventConnected || e.User == nil || e.User.ID != "alice" || string(e.User.Data) != "Alice" {
		t.Fatalf("server event %+v (user %+v): %v", e, e.User, err)
	}
	if u, ok := srv.User(cli.ID()); !ok || u.ID != "alice" {
		t.Fatalf("User = %+v %v", u, ok)
	}
	base := srv.Stats()

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged := mint(t, key, token.Claims{ServerKey: me})
	forged[len(forged)-1] ^= 1
	otherID, _ := net.NewIdentity()
	cases := []struct {
		name string
		tok  []byte
		want error
	}{
		{"replayed", good, net.ErrUnauthorized},
		{"bad signature", forged, net.ErrUnauthorized},
		{"unknown signer", mint(t, other, token.Claims{ServerKey: me}), net.ErrUnauthorized},
		{"expired", mint(t, key, token.Claims{ServerKey: me, Expires: time.Now().Add(-time.Second)}), net.ErrExpired},
		{"foreign key", mint(t, key, token.Claims{ServerKey: otherID.Current()}), net.ErrUnauthorized},
		{"foreign address", mint(t, key, token.Claims{Addrs: []netip.AddrPort{addr}}), net.ErrUnauthorized}, // the verifier knows no address
		{"garbage", []byte("not a token"), net.ErrUnauthorized},
	}
	for _, c := range cases {
		_, err := dialToken(t, addr, c.tok)
		var re *net.RejectError
		if !errors.Is(err, c.want) || !errors.As(err, &re) {
			t.Errorf("%s: Dial = %v, want %v", c.name, err, c.want)
		}
	}
	st := srv.Stats()
	if st.Links != 1 || st.Admission.Pending != 0 || st.Handshakes != base.Handshakes || st.Auth.Logins != 1 {
		t.Fatalf("state after refusals: links %d pending %d handshakes %d→%d logins %d", st.Links, st.Admission.Pending, base.Handshakes, st.Handshakes, st.Auth.Logins)
	}
	if got := st.Auth.Unauthorized + st.Auth.Expired; got != uint64(len(cases)) || st.Auth.Expired != 1 {
		t.Fatalf("auth stats %+v", st.Auth)
	}
	if e, ok := srv.Poll(); ok {
		t.Fatalf("event after refusals: %+v", e)
	}
	if v.Cached() != 1 {
		t.Fatalf("%d nonces cached", v.Cached())
	}
}

// TestTokenFloodDoesNotLockOut: 48 sources on a virtual network connect
// over and over with invalid tokens while a client with a valid token
// connects: it gets in (retrying only on "busy", which is admission's rate
// answer), and the flood leaves no link or pending link behind.
func TestTokenFloodDoesNotLockOut(t *testing.T) {
	nw := vnet.New(1)
	defer nw.Close()
	srvAddr := netip.MustParseAddrPort("10.0.0.1:7000")
	sconn, err := nw.Listen(srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv, key, _ := tokenServer(t, sconn, net.Config{})
	me := srv.Identity().Current()
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	host := func(a netip.AddrPort) *net.Host {
		c, err := nw.Listen(a)
		if err != nil {
			t.Fatal(err)
		}
		h, err := net.NewHost(c, net.Config{HandshakeTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	const sources, rounds = 48, 5
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	refusals := map[string]int{}
	for i := range sources {
		ip := netip.AddrFrom4([4]byte{10, 1, byte(i / 200), byte(1 + i%200)})
		// A fresh port for each round: a late answer to one dial cannot
		// reach the next (replies name no handshake, only the address).
		hosts := make([]*net.Host, rounds)
		for r := range hosts {
			hosts[r] = host(netip.AddrPortFrom(ip, uint16(5000+r)))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r, h := range hosts {
				select {
				case <-stop:
					return
				default:
				}
				var tok []byte
				switch r % 3 {
				case 0: // forged signer
					tok = mint(t, other, token.Claims{ServerKey: me})
				case 1: // expired
					tok = mint(t, key, token.Claims{ServerKey: me, Expires: time.Now().Add(-time.Minute)})
				default: // garbage of a token's size
					tok = make([]byte, 200)
				}
				err := h.DialWith(context.Background(), srvAddr, net.DialOptions{Credentials: tok})
				mu.Lock()
				switch {
				case errors.Is(err, net.ErrUnauthorized):
					refusals["unauthorized"]++
				case errors.Is(err, net.ErrExpired):
					refusals["expired"]++
				case errors.Is(err, net.ErrServerBusy):
					refusals["busy"]++
				case errors.Is(err, net.ErrHandshakeTimeout):
					// The server's reader, verifying every token inline,
					// is saturated (it is, under -race, on a shared
					// machine): unanswered hellos are what a flood gets.
					refusals["timeout"]++
				default:
					refusals["other: "+errorString(err)]++
				}
				mu.Unlock()
			}
		}()
	}
	// Wait until the flood is under way, then connect for real.
	deadline := time.Now().Add(20 * time.Second)
	for srv.Stats().Auth.Unauthorized < 32 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	good := host(netip.MustParseAddrPort("10.2.0.1:5000"))
	var derr error
	for range 20 {
		derr = good.DialWith(context.Background(), srvAddr, net.DialOptions{Credentials: mint(t, key, token.Claims{ServerKey: me, User: "valid"})})
		if !errors.Is(derr, net.ErrServerBusy) {
			break
		}
	}
	close(stop)
	wg.Wait()
	if derr != nil {
		t.Fatalf("valid client: %v", derr)
	}
	if u, ok := srv.User(good.ID()); !ok || u.ID != "valid" {
		t.Fatalf("User = %+v %v", u, ok)
	}
	st := srv.Stats()
	if st.Links != 1 || st.Admission.Pending != 0 || st.Auth.Logins != 1 {
		t.Fatalf("after the flood: links %d pending %d logins %d", st.Links, st.Admission.Pending, st.Auth.Logins)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range refusals {
		if k != "unauthorized" && k != "expired" && k != "busy" && k != "timeout" {
			t.Errorf("flood dials ended with %s (%d times)", k, n)
		}
	}
	t.Logf("flood refusals %v, auth stats %+v, admission %+v, drops %v, vnet %+v", refusals, st.Auth, st.Admission, st.Drops, nw.Stats())
}

func errorString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
