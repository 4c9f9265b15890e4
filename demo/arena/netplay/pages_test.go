package netplay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

// TestMatchPages pages through the server's match list the way the
// browser does: a page of the size asked, next and previous, the total.
func TestMatchPages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the embedded server")
	}
	log := testLogger(t)
	local, err := StartLocal("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	dial := func(name string) *Session {
		s, err := Dial(ctx, local.Addr(), Config{Name: name, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	var all []*Session
	until := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting until %s", what)
			}
			for _, s := range all {
				s.Tick(sim.Input{})
				if e := s.LobbyError(); e != "" {
					t.Fatal(e)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := range 5 {
		s := dial(fmt.Sprintf("Host%d", i))
		all = append(all, s)
		s.CreateMatch(fmt.Sprintf("match %d", i), 4, DefaultOptions())
		until("the match is created", func() bool { return s.InMatch() != net.NoHost })
	}
	b := dial("Browser")
	all = append(all, b)
	b.SetPageSize(2)

	var seen []net.HostID
	show := func(want MatchPage, n int) {
		t.Helper()
		var ms []MatchEntry
		until("the page arrives", func() bool {
			var at time.Time
			ms, at = b.Matches()
			return !at.IsZero() && b.MatchPage() == want && len(ms) == n
		})
		for _, m := range ms {
			if !m.Joinable || m.Players != 1 {
				t.Fatalf("page %d: %+v", want.Index, m)
			}
			seen = append(seen, net.HostID(m.ID))
		}
	}
	b.RefreshMatches()
	show(MatchPage{Index: 0, Total: 5, More: true}, 2)
	if !b.NextPage() {
		t.Fatal("no second page")
	}
	show(MatchPage{Index: 1, Total: 5, More: true}, 2)
	b.NextPage()
	show(MatchPage{Index: 2, Total: 5, More: false}, 1)
	if b.NextPage() {
		t.Fatal("a page after the last")
	}
	for i, s := range all[:5] {
		if seen[i] != s.InMatch() {
			t.Fatalf("pages listed %v, the matches are %v, %v, …", seen, all[0].InMatch(), all[1].InMatch())
		}
	}
	if !b.PrevPage() {
		t.Fatal("no page before the last")
	}
	seen = seen[:0]
	show(MatchPage{Index: 1, Total: 5, More: true}, 2)
	if seen[0] != all[2].InMatch() {
		t.Fatalf("back on page 2: %v", seen)
	}
}
