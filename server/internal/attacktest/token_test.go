package attacktest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/token"
	"github.com/skein-dev/skein/internal/hostile"
)

// tokenAuth is the operator's side of a server run with -auth token: the
// signing key and the server's static key the tokens name.
type tokenAuth struct {
	key    ed25519.PrivateKey
	pub    string        // the -token-key flag
	server net.ServerKey // the static key of the suite's servers
	users  atomic.Int64
}

func newTokenAuth(t *testing.T) *tokenAuth {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &tokenAuth{key: priv, pub: net.OperatorPublicKeyString(pub)}
}

// args are the server flags for token mode.
func (a *tokenAuth) args() []string { return []string{"-auth", "token", "-token-key", a.pub} }

// learnServerKey reads the static key of the servers started so far (they
// share one key file, created by the first).
func (a *tokenAuth) learnServerKey(t *testing.T) {
	t.Helper()
	id, _, err := net.LoadIdentity(filepath.Join(keyDir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	a.server = id.Current()
}

// mint signs c with key (the operator's if nil), for the suite's server
// unless c names another, valid for a minute unless c says otherwise.
func (a *tokenAuth) mint(key ed25519.PrivateKey, c token.Claims) ([]byte, error) {
	if key == nil {
		key = a.key
	}
	if c.User == "" {
		c.User = fmt.Sprintf("user-%d", a.users.Add(1))
	}
	if c.Expires.IsZero() {
		c.Expires = time.Now().Add(time.Minute)
	}
	if c.ServerKey == (net.ServerKey{}) {
		c.ServerKey = a.server
	}
	b, err := token.Mint(key, c)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	return b, nil
}

// tokenFloodResult is what the flood's clients saw.
type tokenFloodResult struct {
	rejects            map[byte]int // by reason
	welcomed, noAnswer int
	other              []string
}

// tokenFlood sends n handshakes carrying tok, spread over sources (one
// goroutine each, perSource handshakes a second at most), each a fresh
// client key from a fresh port: hello, cookie, hello with the cookie and
// the sealed token, then the server's answer.
func tokenFlood(srv *server, tok []byte, n int, sources []string, perSource float64) tokenFloodResult {
	res := tokenFloodResult{rejects: map[byte]int{}}
	var mu stdsync.Mutex
	var wg stdsync.WaitGroup
	every := time.Duration(float64(time.Second) / perSource)
	for s, src := range sources {
		share := n / len(sources)
		if s < n%len(sources) {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			for i := range share {
				if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
					time.Sleep(d)
				}
				err := tokenHandshake(srv, src, tok)
				var rej *hostile.RejectError
				mu.Lock()
				switch {
				case err == nil:
					res.welcomed++
				case errors.As(err, &rej):
					res.rejects[rej.Reason]++
				case errors.Is(err, hostile.ErrNoAnswer):
					res.noAnswer++
				default:
					if len(res.other) < 5 {
						res.other = append(res.other, err.Error())
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}

// tokenHandshake runs one credentials handshake from a new socket on src
// and returns how it ended (nil: welcomed).
func tokenHandshake(srv *server, src string, tok []byte) error {
	c, err := hostile.Listen(src + ":0")
	if err != nil {
		return err
	}
	defer c.Close()
	hs, err := hostile.NewHandshake(false)
	if err != nil {
		return err
	}
	hs.Credentials = tok
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := hs.GetCookie(ctx, c, srv.udp); err != nil {
		return err
	}
	_, _, err = hs.Finish(ctx, c, srv.udp)
	return err
}

// loginRefused is the skein_login_refused_total sample of reason.
func loginRefused(reason string) string {
	return `skein_login_refused_total{reason="` + reason + `"}`
}

// attackTokenFlood (9): against a server run with -auth token, many
// sources send handshakes whose sealed credentials are connect tokens
// that must be refused: garbage, signed by an unknown key, forged
// (a bad signature over good claims), validly signed but expired, too
// long-lived or for another server, and a token already used. One kind
// at a time, each measured: the refusals the server counted (by reason)
// against what the flood's clients were told, and the server's CPU per
// refusal. Meanwhile the legitimate client logs in with a fresh token at
// every attempt.
func attackTokenFlood(t *testing.T) {
	auth := newTokenAuth(t)
	srv := startServer(t, serverOpts{args: auth.args()})
	auth.learnServerKey(t)
	srv.creds = func() []byte {
		b, err := auth.mint(nil, token.Claims{})
		if err != nil {
			return []byte("mint failed: " + err.Error()) // refused: the probe reports it
		}
		return b
	}
	mustMint := func(key ed25519.PrivateKey, c token.Claims) []byte {
		t.Helper()
		b, err := auth.mint(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 200)
	rand.Read(garbage)
	garbage[0] = token.Version
	forged := mustMint(nil, token.Claims{})
	forged[len(forged)-1] ^= 1
	var otherServer net.ServerKey
	otherServer[0] = 1
	// The used token logs in once (the attacker never confirms: the
	// unconfirmed link expires), then is replayed.
	used := mustMint(nil, token.Claims{User: "victim"})
	if err := tokenHandshake(srv, "127.0.5.99", used); err != nil {
		t.Fatalf("the token's first use: %v", err)
	}
	kinds := []struct {
		name   string
		tok    []byte
		reject byte   // what each client must be told
		metric string // the reason label it must be counted under
	}{
		{"garbage", garbage, hostile.RejectUnauthorized, "unauthorized"},
		{"unknown-key", mustMint(stranger, token.Claims{}), hostile.RejectUnauthorized, "unauthorized"},
		{"forged", forged, hostile.RejectUnauthorized, "unauthorized"},
		{"expired", mustMint(nil, token.Claims{Expires: time.Now().Add(-time.Minute)}), hostile.RejectExpired, "expired"},
		{"too-long", mustMint(nil, token.Claims{Expires: time.Now().Add(time.Hour)}), hostile.RejectUnauthorized, "unauthorized"},
		{"foreign", mustMint(nil, token.Claims{ServerKey: otherServer}), hostile.RejectUnauthorized, "unauthorized"},
		{"replayed", used, hostile.RejectUnauthorized, "unauthorized"},
	}
	// 24 sources at 35 handshakes a second each (70 hellos): under the
	// server's default per-source rate (100) and, together, its handshake
	// rate (2000 hellos a second).
	sources := make([]string, 24)
	for i := range sources {
		sources[i] = fmt.Sprintf("127.0.5.%d", i+1)
	}
	n := size(140, 1400)
	var rows []string
	underAttack(t, srv, expect{{loginRefused("unauthorized")}, {loginRefused("expired")}}, func(started func()) {
		started()
		for _, k := range kinds {
			before := srv.metrics(t)
			cpu0 := srv.procCPU(t)
			r := tokenFlood(srv, k.tok, n, sources, 35)
			cpu := srv.procCPU(t) - cpu0
			d := delta(before, srv.metrics(t))
			refused := 0.0
			for key, v := range d {
				if strings.HasPrefix(key, "skein_login_refused_total{") {
					refused += v
				}
			}
			rate := "–"
			if cpu > 0 {
				rate = fmt.Sprintf("%.0f", refused/cpu.Seconds())
			}
			rows = append(rows, fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %.0f | %.0f | %v | %s |", k.name, n, r.rejects[k.reject],
				r.rejects[hostile.RejectBusy], r.noAnswer, r.welcomed, d[loginRefused(k.metric)], d["skein_busy_rejects_total"], cpu, rate))
			if r.welcomed > 0 {
				t.Errorf("%s: %d flood handshakes were admitted", k.name, r.welcomed)
			}
			if len(r.other) > 0 {
				t.Errorf("%s: handshakes failed otherwise: %q", k.name, r.other)
			}
			for reason, c := range r.rejects {
				if reason != k.reject && reason != hostile.RejectBusy {
					t.Errorf("%s: %d handshakes got reject %d, want %d", k.name, c, reason, k.reject)
				}
			}
			if r.rejects[k.reject] == 0 {
				t.Errorf("%s: no handshake was refused with reject %d", k.name, k.reject)
			}
			if got := d[loginRefused(k.metric)]; got < float64(r.rejects[k.reject]) {
				t.Errorf("%s: the clients got %d rejects %d, the server counted %v as %s", k.name, r.rejects[k.reject], k.reject, got, k.metric)
			}
		}
	})
	t.Logf("token flood, %d handshakes a kind from %d sources:\n"+
		"| token | handshakes | refused as sent | busy | no answer | admitted | counted (its reason) | busy rejects counted | server CPU | refused / CPU-s |\n"+
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n%s", n, len(sources), strings.Join(rows, "\n"))
}
