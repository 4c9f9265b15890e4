package matchserver_test

import (
	"context"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/internal/lobbytest"
	"github.com/skein-dev/skein/server/lobby"
	"github.com/skein-dev/skein/server/matchserver"
)

// TestMemberAwaySoonerThanTheLinkTimeout: a player whose network is cut
// is reported away (sync.EventMemberAway) to its match mates once the
// server's link has been silent for matchserver.DefaultAwayAfter, before
// the cut player's own link, on the engine's default timeout (10 s: the
// match server's default before), even notices. Run on vnet in a synctest
// bubble: the times logged are those of the virtual clock.
func TestMemberAwaySoonerThanTheLinkTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(1)
		defer nw.Close()
		srvAddr := netip.MustParseAddrPort("10.0.0.1:7777")
		sconn, err := nw.Listen(srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		// The match server's configuration (server/main.go) with its
		// default link timeout: resume on, Timeout left zero.
		srv, err := matchserver.New(matchserver.Config{Conn: sconn, ShutdownTimeout: 2 * time.Second,
			Net: net.Config{ResumeGrace: net.DefaultResumeGrace}})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(runCtx) }()
		defer func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}()

		var clients []*lobbytest.Client
		defer func() {
			for _, c := range clients {
				c.Close()
			}
		}()
		addrs := []netip.AddrPort{
			netip.MustParseAddrPort("10.0.1.1:5000"), netip.MustParseAddrPort("10.0.1.2:5000"), netip.MustParseAddrPort("10.0.1.3:5000"),
		}
		for _, addr := range addrs {
			conn, err := nw.Listen(addr)
			if err != nil {
				t.Fatal(err)
			}
			// The arena's client: resume on, the engine's own timeout.
			sc, err := sync.NewClient(conn, sync.ClientConfig{Net: net.Config{ResumeGrace: net.DefaultResumeGrace}})
			if err != nil {
				t.Fatal(err)
			}
			if err := sc.Connect(t.Context(), srvAddr); err != nil {
				sc.Close()
				t.Fatal(err)
			}
			c, err := lobbytest.Wrap(sc)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
		}
		a, b, c := clients[0], clients[1], clients[2]
		m := must(t, lobby.ResultOK)(a.Create(t.Context(), "away", 4, nil))
		must(t, lobby.ResultOK)(b.Join(t.Context(), m))
		must(t, lobby.ResultOK)(c.Join(t.Context(), m))
		for _, p := range []*lobbytest.Client{a, b} {
			for !slices.Contains(p.Members(m), c.ID()) {
				time.Sleep(10 * time.Millisecond)
			}
		}
		synctest.Wait()

		var cut atomic.Bool
		nw.SetFilter(func(from, to netip.AddrPort, _ []byte) bool {
			return cut.Load() && (from == addrs[2] || to == addrs[2])
		})
		cut.Store(true)
		start := time.Now()

		told := map[*lobbytest.Client]time.Duration{}
		giveUp := time.After(net.DefaultResumeGrace)
		for len(told) < 2 {
			select {
			case e := <-a.Events:
				if e.Kind == sync.EventMemberAway && e.Group == m && e.Member == c.ID() {
					told[a] = time.Since(start)
				}
			case e := <-b.Events:
				if e.Kind == sync.EventMemberAway && e.Group == m && e.Member == c.ID() {
					told[b] = time.Since(start)
				}
			case e := <-c.Events:
				if e.Kind == sync.EventAway && e.Peer == net.ServerID {
					t.Fatalf("the cut player's own link (the engine's default timeout) timed out %v after the cut, before its mates were told it is away (told: %v)",
						time.Since(start), told)
				}
			case <-giveUp:
				t.Fatalf("mates not told the cut player is away within the grace window (told: %v)", told)
			}
		}
		// The server cannot call a link away before it has been silent
		// for the threshold.
		for p, d := range told {
			if d < matchserver.DefaultAwayAfter {
				t.Errorf("player %v told after %v, before the %v of silence", p.ID(), d, matchserver.DefaultAwayAfter)
			}
		}
		t.Logf("mates told the cut player is away %v and %v after the cut (virtual clock; link timeout %v)",
			told[a], told[b], matchserver.DefaultAwayAfter)
		cut.Store(false)
	})
}
