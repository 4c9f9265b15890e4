package netplay

import (
	"context"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/server/matchserver"
)

// Local is a match server running in this process: what "play now" plays
// on.
type Local struct {
	srv    *matchserver.Server
	cancel context.CancelFunc
	done   chan error
}

// StartLocal starts a match server on listen ("127.0.0.1:0" for this
// machine only, ":7777" to let the LAN join).
func StartLocal(listen string, log hclog.Logger) (*Local, error) {
	// Open mode: players are named by the profile they send; members see
	// each other's user names. A player whose network drops keeps its
	// place for net.DefaultResumeGrace, told within AwayAfter.
	srv, err := matchserver.New(matchserver.Config{Listen: listen, Logger: log, ShutdownTimeout: 2 * time.Second, ShareUsers: true,
		Net: net.Config{Authenticate: matchserver.OpenAuth, AuthInline: true, DuplicateLogin: net.SessionMany,
			ResumeGrace: net.DefaultResumeGrace, Timeout: AwayAfter}})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Local{srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- srv.Run(ctx) }()
	return l, nil
}

// Addr returns the address clients connect to: loopback when the server
// listens on every interface.
func (l *Local) Addr() netip.AddrPort {
	a := l.srv.UDPAddr()
	if a.Addr().IsUnspecified() {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), a.Port())
	}
	return a
}

// Key returns the server's public key: a local player pins it, and a LAN
// beacon names it.
func (l *Local) Key() net.ServerKey { return l.srv.Sync().Host().Identity().Current() }

// Server returns the match server.
func (l *Local) Server() *matchserver.Server { return l.srv }

// Close shuts the server down and waits for it.
func (l *Local) Close() error {
	l.cancel()
	return <-l.done
}
