//go:build unix

package net_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/token"
)

// BenchmarkServerHandshake measures the server's side of a handshake, on
// the calling goroutine (run it with -cpu 1 for one core): a client's
// second hello in (cookie checked, key agreement, link created, welcome
// sealed and written), with and without a connect token verified inline
// (one more X25519 to open the credentials, unless it is shared with the
// link keys, and one Ed25519 verification), and with the same token check
// handed to the Authenticate workers. The hellos, with their cookies and
// tokens, are made outside the timer; so is the removal of the links.
// Reported as hs/s (wall clock) and hs/cpu-s (handshakes per second of the
// process's CPU time, which a loaded machine does not distort).
func BenchmarkServerHandshake(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		token, workers bool
	}{{"open", false, false}, {"token-inline", true, false}, {"token-workers", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := net.Config{Accept: true, MaxLinks: 1 << 20, MaxPending: -1, HandshakeRate: 1 << 30,
				SourceHandshakeRate: -1, SourceLinks: -1, SourcePending: -1, PendingTimeout: time.Hour}
			v, err := token.NewVerifier(token.VerifierConfig{Keys: []ed25519.PublicKey{pub}, ReplayCache: 1 << 22})
			if err != nil {
				b.Fatal(err)
			}
			if tc.token {
				cfg.Authenticate = v.Authenticate
				cfg.AuthInline = !tc.workers
				if tc.workers {
					cfg.AuthWorkers = 1
					cfg.AuthQueue = 1 << 16
				}
			}
			conn, err := net.ListenUDP("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv, err := net.NewHost(conn, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			sink, err := net.ListenUDP("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			from := sink.LocalAddr()
			var creds func(int) []byte
			if tc.token {
				creds = func(i int) []byte {
					t, err := token.Mint(priv, token.Claims{User: "user" + strconv.Itoa(i), Expires: time.Now().Add(time.Minute), ServerKey: srv.Identity().Current()})
					if err != nil {
						b.Fatal(err)
					}
					return t
				}
			}
			const batch = 256
			start := srv.Stats().Handshakes
			b.ResetTimer()
			var elapsed, cpu time.Duration
			for n := 0; n < b.N; n += batch {
				b.StopTimer()
				srv.DropLinks()
				k := min(batch, b.N-n)
				hellos, err := net.MakeHellos(srv, from, k, creds)
				if err != nil {
					b.Fatal(err)
				}
				before := srv.Stats().Admission.Pending
				t0, c0 := time.Now(), cpuTime()
				b.StartTimer()
				for _, h := range hellos {
					srv.ServeHello(h, from, conn)
				}
				if tc.workers {
					for i := 0; srv.Stats().Admission.Pending < before+k; i++ {
						if i == 20000 {
							b.Fatalf("stuck: %+v", srv.Stats())
						}
						waitBriefly()
					}
				}
				elapsed += time.Since(t0)
				cpu += cpuTime() - c0
			}
			b.StopTimer()
			if p := srv.Stats().Admission.Pending; p == 0 && b.N > 0 {
				b.Fatalf("no link made (handshakes %d)", srv.Stats().Handshakes-start)
			}
			if a := srv.Stats().Auth; tc.token && a.Logins != uint64(b.N) {
				b.Fatalf("%d logins for %d hellos: %+v", a.Logins, b.N, a)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "hs/s")
			// The process's CPU time over the timed sections (every
			// goroutine of the server: on a loaded machine, wall time
			// counts other jobs' turns too).
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "hs/cpu-s")
			srv.DropLinks()
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitBriefly yields to the Authenticate workers.
func waitBriefly() { time.Sleep(50 * time.Microsecond) }
