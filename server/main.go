// Command server is Skein's match server: clients connect over UDP, use the
// lobby to list, create and join matches (each a P2P group with the server
// as member, relaying for peers that cannot reach each other directly), and
// an operator watches /healthz and /metrics.
//
//	go run ./server -listen :7777 -admin 127.0.0.1:7778
//
// The server's identity is a long-term key in -key-file (created on first
// start, mode 0600); clients pin its public key, printed at start and by
// -print-key. Rotate it with -key-next (publish the next key printed),
// then -key-rotate once clients know it (docs/PROTOCOL.md, "Handshake").
// For a fleet, an operator signs each server's keys with -operator-key
// FILE -sign DURATION; clients that trust the operator's public key accept
// every server it signed.
//
// Every flag has an environment variable (shown in -help). The -lobby-*
// flags bound what one client may ask of the lobby (see the matchserver
// package). SIGINT or
// SIGTERM shuts down gracefully: clients are told why and disconnected
// within -shutdown-timeout.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/server/matchserver"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// env returns the environment variable's value, or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", env("SKEIN_LISTEN", ":7777"), "UDP `address` clients connect to ($SKEIN_LISTEN)")
	natProbe := fs.String("nat-probe", env("SKEIN_NAT_PROBE", ""), "comma-separated UDP `addresses` (up to 3: a second port, a second IP on both ports) for clients' NAT-type checks, e.g. :7779,203.0.113.11:7777,203.0.113.11:7779 ($SKEIN_NAT_PROBE)")
	admin := fs.String("admin", env("SKEIN_ADMIN", "127.0.0.1:7778"), "HTTP `address` of /healthz and /metrics, empty for none ($SKEIN_ADMIN)")
	maxClients := fs.Int("max-clients", net.DefaultMaxLinks, "most clients connected at once ($SKEIN_MAX_CLIENTS)")
	logLevel := fs.String("log-level", env("SKEIN_LOG_LEVEL", "info"), "trace, debug, info, warn or error ($SKEIN_LOG_LEVEL)")
	logJSON := fs.Bool("log-json", false, "log JSON lines ($SKEIN_LOG_JSON)")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take ($SKEIN_SHUTDOWN_TIMEOUT)")
	tcpPerIP := fs.Int("tcp-per-ip", 16, "most TCP fallback connections from one IPv4 address or IPv6 /64 ($SKEIN_TCP_PER_IP)")
	callRate := fs.Float64("lobby-call-rate", matchserver.DefaultCallRate, "lobby calls a second one client may keep making; more are answered RateLimited ($SKEIN_LOBBY_CALL_RATE)")
	callBurst := fs.Int("lobby-call-burst", matchserver.DefaultCallBurst, "lobby calls a quiet client may make at once ($SKEIN_LOBBY_CALL_BURST)")
	chatRoom := fs.Int("lobby-chat-room", matchserver.DefaultChatRoom, "most clients in one lobby chat room; a line reaches its sender's room ($SKEIN_LOBBY_CHAT_ROOM)")
	// Admission (docs/PROTOCOL.md, "Admission"). A source is an IPv4
	// address or an IPv6 /64.
	hsRate := fs.Int("handshake-rate", 2000, "hellos per second taken on each of the UDP socket and the TCP fallback ($SKEIN_HANDSHAKE_RATE)")
	srcRate := fs.Int("source-handshake-rate", 100, "hellos per second from one source, after a burst of 4 s worth, -1 for no limit ($SKEIN_SOURCE_HANDSHAKE_RATE)")
	srcLinks := fs.Int("source-links", 0, "clients from one source; 0: max-clients/4, at most 256; -1: no limit ($SKEIN_SOURCE_LINKS)")
	srcPending := fs.Int("source-pending", 32, "unconfirmed clients from one source, -1 for no limit ($SKEIN_SOURCE_PENDING)")
	maxPending := fs.Int("max-pending", 0, "unconfirmed clients at once; 0: max-clients/8, at least 64; -1: only -max-clients ($SKEIN_MAX_PENDING)")
	keyFile := fs.String("key-file", env("SKEIN_KEY_FILE", defaultKeyFile()), "the server's secret key `file`, created on first start with mode 0600 ($SKEIN_KEY_FILE)")
	printKey := fs.Bool("print-key", false, "print the server's public key and fingerprint (creating the key if needed) and exit")
	keyNext := fs.Bool("key-next", false, "add a fresh next key to -key-file (replacing any next key), print it and exit: publish it, then -key-rotate")
	operatorKey := fs.String("operator-key", "", "with -sign: the operator's signing key `file` (created with mode 0600 if missing; keep it off the servers)")
	sign := fs.Duration("sign", 0, "sign -key-file's keys (current and next) with -operator-key, valid for this `duration`, store the certificates in -key-file and exit: clients trusting the operator accept them")
	keyRotate := fs.Bool("key-rotate", false, "make the next key the current one (the old key is dropped), print it and exit")
	pendingTimeout := fs.Duration("pending-timeout", 3*time.Second, "how long a client may take to confirm its handshake ($SKEIN_PENDING_TIMEOUT)")
	linkTimeout := fs.Duration("link-timeout", 0, "how long a client may stay silent before its link times out: with -resume-grace it is suspended and its match mates see it away, without it is removed; 0: 4 s with resume on, 10 s with it off ($SKEIN_LINK_TIMEOUT)")
	resumeGrace := fs.Duration("resume-grace", net.DefaultResumeGrace, "how long a client whose link timed out keeps its session (ID, groups, reliable messages) to resume it; 0 turns resume off ($SKEIN_RESUME_GRACE)")
	// Who may connect (docs/PROTOCOL.md, "Credentials"; README, "Auth").
	var af authFlags
	fs.StringVar(&af.mode, "auth", env("SKEIN_AUTH", "open"), "who may connect: open (everyone; a client's profile names it) or token (a connect token signed with -token-key) ($SKEIN_AUTH)")
	fs.StringVar(&af.tokenKey, "token-key", env("SKEIN_TOKEN_KEY", ""), "with -auth token: the token signing public `key` (skein-token -print-public), several comma-separated during a rotation, or a file of them one a line ($SKEIN_TOKEN_KEY)")
	fs.DurationVar(&af.maxLifetime, "token-max-lifetime", 5*time.Minute, "with -auth token: refuse tokens that expire further ahead than this ($SKEIN_TOKEN_MAX_LIFETIME)")
	fs.StringVar(&af.publicAddr, "public-addr", env("SKEIN_PUBLIC_ADDR", ""), "the server's public `addresses` (ip:port, comma-separated): a token naming addresses must name one ($SKEIN_PUBLIC_ADDR)")
	fs.StringVar(&af.duplicate, "duplicate-login", env("SKEIN_DUPLICATE_LOGIN", "replace"), "with -auth token, a second login of a user: replace (kick the first session) or refuse ($SKEIN_DUPLICATE_LOGIN)")
	shareUsers := fs.Bool("share-users", true, "match members learn each other's user IDs ($SKEIN_SHARE_USERS)")
	// Receive memory budgets (docs/PROTOCOL.md, "Receive memory budgets").
	linkBudget := fs.Int("link-receive-budget", 0, "bytes of out-of-order reliable data one client may hold; 0: 400 KiB, its receive window ($SKEIN_LINK_RECEIVE_BUDGET)")
	hostBudget := fs.Int("host-receive-budget", 0, "bytes of received reliable data all clients hold together before the largest holder is disconnected; 0: 32 MiB ($SKEIN_HOST_RECEIVE_BUDGET)")
	// Environment defaults for the typed flags; a bad value is an error,
	// not silently ignored.
	for name, variable := range map[string]string{ //nolint:gosec // G101: the names of environment variables, no credential in them
		"max-clients": "SKEIN_MAX_CLIENTS", "log-json": "SKEIN_LOG_JSON", "shutdown-timeout": "SKEIN_SHUTDOWN_TIMEOUT",
		"handshake-rate": "SKEIN_HANDSHAKE_RATE", "source-handshake-rate": "SKEIN_SOURCE_HANDSHAKE_RATE", "source-links": "SKEIN_SOURCE_LINKS",
		"source-pending": "SKEIN_SOURCE_PENDING", "max-pending": "SKEIN_MAX_PENDING", "pending-timeout": "SKEIN_PENDING_TIMEOUT",
		"resume-grace": "SKEIN_RESUME_GRACE", "link-timeout": "SKEIN_LINK_TIMEOUT",
		"link-receive-budget": "SKEIN_LINK_RECEIVE_BUDGET", "host-receive-budget": "SKEIN_HOST_RECEIVE_BUDGET",
		"tcp-per-ip": "SKEIN_TCP_PER_IP", "token-max-lifetime": "SKEIN_TOKEN_MAX_LIFETIME", "share-users": "SKEIN_SHARE_USERS", "lobby-call-rate": "SKEIN_LOBBY_CALL_RATE", "lobby-call-burst": "SKEIN_LOBBY_CALL_BURST", "lobby-chat-room": "SKEIN_LOBBY_CHAT_ROOM",
	} {
		if v, ok := os.LookupEnv(variable); ok {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("$%s=%q: %w", variable, v, err)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	level := hclog.LevelFromString(*logLevel)
	if level == hclog.NoLevel {
		return fmt.Errorf("-log-level %q: want trace, debug, info, warn or error", *logLevel)
	}
	if *maxClients <= 0 {
		return fmt.Errorf("-max-clients %d: must be positive", *maxClients)
	}
	if *tcpPerIP <= 0 {
		return fmt.Errorf("-tcp-per-ip %d: must be positive", *tcpPerIP)
	}
	if !(*callRate > 0) || *callBurst <= 0 || *chatRoom <= 0 {
		return fmt.Errorf("-lobby-call-rate %v, -lobby-call-burst %d, -lobby-chat-room %d: must be positive", *callRate, *callBurst, *chatRoom)
	}
	if *hsRate <= 0 {
		return fmt.Errorf("-handshake-rate %d: must be positive", *hsRate)
	}
	for name, v := range map[string]int{"source-handshake-rate": *srcRate, "source-pending": *srcPending} {
		if v == 0 || v < -1 {
			return fmt.Errorf("-%s %d: must be positive, or -1", name, v)
		}
	}
	if *srcLinks < -1 {
		return fmt.Errorf("-source-links %d: must be positive, 0 or -1", *srcLinks)
	}
	if *maxPending < -1 {
		return fmt.Errorf("-max-pending %d: must be positive, 0 or -1", *maxPending)
	}
	if *pendingTimeout <= 0 {
		return fmt.Errorf("-pending-timeout %v: must be positive", *pendingTimeout)
	}
	if *resumeGrace < 0 {
		return fmt.Errorf("-resume-grace %v: must be 0 (off) or positive", *resumeGrace)
	}
	if *linkTimeout < 0 {
		return fmt.Errorf("-link-timeout %v: must be positive, or 0 for the default", *linkTimeout)
	}
	if *linkBudget < 0 || *hostBudget < 0 {
		return fmt.Errorf("-link-receive-budget %d, -host-receive-budget %d: must be positive, or 0 for the default", *linkBudget, *hostBudget)
	}
	var auth net.Config // checked before any file is touched
	if err := configureAuth(&auth, af); err != nil {
		return err
	}
	ident, created, err := net.LoadIdentity(*keyFile)
	if err != nil {
		return err
	}
	switch {
	case *sign != 0:
		if *operatorKey == "" || *sign < 0 {
			return errors.New("-sign needs -operator-key and a positive duration")
		}
		op, created, err := net.LoadOperatorKey(*operatorKey)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(os.Stdout, "created operator key file %s\n", *operatorKey)
		}
		expires := time.Now().Add(*sign)
		keys := []net.ServerKey{ident.Current()}
		if next, ok := ident.Next(); ok {
			keys = append(keys, next)
		}
		for _, k := range keys {
			if ident, err = ident.WithCert(net.SignServerKey(op, k, expires)); err != nil {
				return err
			}
		}
		if err := net.SaveIdentity(*keyFile, ident); err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "operator key: %s (clients trust it in net.Config.ServerCAs)\n", net.OperatorPublicKeyString(op.Public().(ed25519.PublicKey)))
		printIdentity(os.Stdout, *keyFile, ident)
		return nil
	case *keyNext && *keyRotate:
		return errors.New("-key-next and -key-rotate: one at a time (publish the next key between them)")
	case *keyNext:
		if ident, err = ident.WithNext(); err != nil {
			return err
		}
		if err := net.SaveIdentity(*keyFile, ident); err != nil {
			return err
		}
		printIdentity(os.Stdout, *keyFile, ident)
		return nil
	case *keyRotate:
		if ident, err = ident.Rotate(); err != nil {
			return fmt.Errorf("%w (make one with -key-next)", err)
		}
		if err := net.SaveIdentity(*keyFile, ident); err != nil {
			return err
		}
		printIdentity(os.Stdout, *keyFile, ident)
		return nil
	case *printKey:
		printIdentity(os.Stdout, *keyFile, ident)
		return nil
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "skein", Level: level, JSONFormat: *logJSON, Output: os.Stderr})

	ncfg := net.Config{
		Identity:            ident,
		HandshakeRate:       *hsRate,
		SourceHandshakeRate: *srcRate,
		SourceLinks:         *srcLinks,
		SourcePending:       *srcPending,
		MaxPending:          *maxPending,
		PendingTimeout:      *pendingTimeout,
		ResumeGrace:         *resumeGrace,
		Timeout:             *linkTimeout, // 0: matchserver.DefaultAwayAfter with resume, the engine's 10 s without
		LinkReceiveBudget:   *linkBudget,
		HostReceiveBudget:   *hostBudget,
	}
	ncfg.Authenticate, ncfg.AuthInline, ncfg.DuplicateLogin = auth.Authenticate, auth.AuthInline, auth.DuplicateLogin
	srv, err := matchserver.New(matchserver.Config{
		Listen:          *listen,
		NATProbe:        splitList(*natProbe),
		Admin:           *admin,
		MaxClients:      *maxClients,
		ShutdownTimeout: *shutdown,
		Logger:          logger,
		TCP:             net.TCPConfig{MaxConnsPerIP: *tcpPerIP},
		Lobby:           matchserver.LobbyConfig{CallRate: *callRate, CallBurst: *callBurst, ChatRoom: *chatRoom},
		Net:             ncfg,
		ShareUsers:      *shareUsers,
	})
	if err != nil {
		return err
	}
	if created {
		logger.Info("created a new server key", "file", *keyFile)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Run(ctx)
}

// defaultKeyFile is where the server keeps its key unless told: the user's
// configuration directory (skein/server.key), else the working directory.
func defaultKeyFile() string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "skein", "server.key")
	}
	return "skein-server.key"
}

// printIdentity prints the public half of the identity (never the secret).
func printIdentity(w io.Writer, file string, id *net.Identity) {
	cur := id.Current()
	fmt.Fprintf(w, "key file:    %s\n", file)
	fmt.Fprintf(w, "key:         %s\n", cur)
	fmt.Fprintf(w, "fingerprint: %s\n", cur.Fingerprint())
	if c, ok := id.Cert(); ok {
		fmt.Fprintf(w, "certificate: signed by an operator, expires %s\n", c.Expires.UTC().Format(time.RFC3339))
	}
	if next, ok := id.Next(); ok {
		fmt.Fprintf(w, "next key:    %s\n", next)
		fmt.Fprintf(w, "next fingerprint: %s\n", next.Fingerprint())
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
