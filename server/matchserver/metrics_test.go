package matchserver_test

import (
	"errors"
	"testing"

	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/server/lobby"
	"github.com/skein-dev/skein/server/matchserver"
)

// TestDuplicateAndStaleRequestsCounted: a retried request answered from
// the reply cache is a duplicate; a request older than the reply window,
// answered StatusStale, is stale and counted apart, not as a duplicate.
func TestDuplicateAndStaleRequestsCounted(t *testing.T) {
	// A call rate that does not get in the way of the requests that move
	// the reply window on.
	srv, dial := startWith(t, matchserver.Config{Lobby: matchserver.LobbyConfig{CallRate: 1e6, CallBurst: 1e6}})
	a := dial(1)[0]
	const dup, stale = "skein_lobby_duplicate_requests_total", "skein_lobby_stale_requests_total"

	m := must(t, lobby.ResultOK)(a.Create(ctx(t), "dup", 2, nil))
	create := a.LastRequest()
	if got := must(t, lobby.ResultOK)(a.RepeatJoin(ctx(t))); got != m {
		t.Fatalf("repeated create answered %v, want %v", got, m)
	}
	if d, s := metric(t, srv, dup), metric(t, srv, stale); d != 1 || s != 0 {
		t.Fatalf("after a repeat: %s %v, %s %v; want 1 and 0", dup, d, stale, s)
	}

	// rmi.ReplyWindow requests later, the create is older than the window.
	for range rmi.ReplyWindow {
		page(t, a, 0, 1)
	}
	if _, _, err := a.Resend(ctx(t), create); !errors.Is(err, rmi.ErrStale) {
		t.Fatalf("an old request answered %v, want %v", err, rmi.ErrStale)
	}
	if d, s := metric(t, srv, dup), metric(t, srv, stale); d != 1 || s != 1 {
		t.Fatalf("after a stale request: %s %v, %s %v; want 1 and 1", dup, d, stale, s)
	}
}
