package main

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/skein-dev/skein/server/matchserver"
)

// runServer runs a match server on listen (a fresh key each time) until
// the returned stop.
func runServer(t *testing.T, listen string) (*matchserver.Server, func()) {
	t.Helper()
	srv, err := matchserver.New(matchserver.Config{Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("match server: %v", err)
		}
	}
	t.Cleanup(stop)
	return srv, stop
}

// -server without -server-key trusts the match server on first use and
// remembers its key (-known-servers): the next run recognises it, and a
// server at that address with another key is refused, naming both
// fingerprints, before the chat sends it anything.
func TestChatMatchServerRemembersKey(t *testing.T) {
	t.Parallel()
	srv, stop := runServer(t, "127.0.0.1:0")
	addr := srv.UDPAddr().String()
	fp := regexp.QuoteMeta(srv.Sync().Host().Identity().Current().Fingerprint())
	known := filepath.Join(t.TempDir(), "skein", "known_servers")

	ana := start(t, "Ana", "-server", addr, "-known-servers", known)
	ana.expect(`\* match server key ` + fp + ` \(new server: remembered; compare it with the server's -print-key\)`)
	ana.expect(`\* you joined as Ana \(2 in chat\)`)
	ana.send("/quit")
	ana.waitExit()

	ana = start(t, "Ana", "-server", addr, "-known-servers", known)
	ana.expect(`\* match server key ` + fp + ` \(the one remembered for it\)`)
	ana.expect(`\* you joined as Ana \(2 in chat\)`)
	ana.send("/quit")
	ana.waitExit()

	stop()
	other, _ := runServer(t, addr)
	ofp := regexp.QuoteMeta(other.Sync().Host().Identity().Current().Fingerprint())
	ana = start(t, "Ana", "-server", addr, "-known-servers", known)
	ana.expect(`! REFUSED the match server at ` + regexp.QuoteMeta(addr) + `: its key changed: ` + fp + ` is remembered, it proved ` + ofp + `; .*` + regexp.QuoteMeta(known))
	select {
	case <-ana.exited:
		if ana.err == nil {
			t.Error("a refused chat exited with status 0")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a refused chat did not exit")
	}
	if n := ana.count(`\* connected .*`); n != 0 {
		t.Error("the chat connected to a server whose key changed")
	}
}
