package matchserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/internal/lobbytest"
	"github.com/skein-dev/skein/server/lobby"
	"github.com/skein-dev/skein/server/matchserver"
)

// startWith starts a server with cfg (on loopback, with an admin
// endpoint) and returns it and a function that connects n more clients.
func startWith(t *testing.T, cfg matchserver.Config) (*matchserver.Server, func(n int) []*lobbytest.Client) {
	t.Helper()
	cfg.Listen, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0"
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 2 * time.Second
	}
	srv, err := matchserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	var clients []*lobbytest.Client
	t.Cleanup(func() {
		var wg stdsync.WaitGroup
		for _, c := range clients {
			wg.Go(func() { c.Close() })
		}
		wg.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	dial := func(n int) []*lobbytest.Client {
		t.Helper()
		out := make([]*lobbytest.Client, 0, n)
		for range n { // one after another: the server sees them connect in this order
			c, err := lobbytest.Dial(t.Context(), srv.UDPAddr(), sync.ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
			out = append(out, c)
		}
		return out
	}
	return srv, dial
}

// metric returns the value of the sample of /metrics whose line starts
// with series (name and labels, as exposed), or 0 when there is none.
func metric(t *testing.T, srv *matchserver.Server, series string) float64 {
	t.Helper()
	res, err := http.Get("http://" + srv.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// waitMetric waits until series reaches at least want.
func waitMetric(t *testing.T, srv *matchserver.Server, series string, want float64) float64 {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if v := metric(t, srv, series); v >= want {
			return v
		} else if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want at least %v", series, v, want)
		}
	}
}

// page asks for a page until it is not refused as RateLimited.
func page(t *testing.T, c *lobbytest.Client, after uint32, limit uint8) lobbytest.Page {
	t.Helper()
	for {
		p, err := c.ListPage(ctx(t), after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if p.Result != lobby.ResultRateLimited {
			return p
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestLobbyListOversize: 64 matches each with MaxOptions bytes of options
// (about 262 KB together, over engine/net's MaxReliable) used to make the
// one list answer unsendable, for everybody. Now the list comes in pages,
// each within MaxPageBytes, and a client reads all of it.
func TestLobbyListOversize(t *testing.T) {
	// The reader asks for a few dozen pages: a burst that covers them, as
	// the call rate is not what this test is about.
	_, dial := startWith(t, matchserver.Config{Lobby: matchserver.LobbyConfig{CallBurst: 100}})
	cs := dial(65)
	reader := cs[64]
	var wg stdsync.WaitGroup
	for i, c := range cs[:64] {
		wg.Go(func() {
			opts := bytes.Repeat([]byte{byte('a' + i%26)}, lobby.MaxOptions)
			if r, _, err := c.Create(ctx(t), fmt.Sprintf("big %d", i), 16, opts); err != nil || r != lobby.ResultOK {
				t.Errorf("create %d: %v %v", i, r, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Over MaxOptions: refused, with its own result.
	if r, _, err := reader.Create(ctx(t), "bigger", 4, make([]byte, lobby.MaxOptions+1)); err != nil || r != lobby.ResultTooLarge {
		t.Fatalf("oversize options: %v %v", r, err)
	}

	// Page by page, by hand: every answer within the budget.
	var got []lobby.MatchInfo
	pages := 0
	for after := uint32(0); ; pages++ {
		p := page(t, reader, after, 0)
		if p.Result != lobby.ResultOK || len(p.Matches) == 0 || p.Total != 64 || p.Bytes > lobby.MaxPageBytes {
			t.Fatalf("page after %d: %v, %d matches, total %d, %d bytes", after, p.Result, len(p.Matches), p.Total, p.Bytes)
		}
		for _, m := range p.Matches {
			if m.ID <= after || len(m.Options) != lobby.MaxOptions {
				t.Fatalf("page after %d holds match %d with %d bytes of options", after, m.ID, len(m.Options))
			}
			after = m.ID
		}
		got = append(got, p.Matches...)
		if p.Next == 0 {
			break
		}
		if p.Next != after {
			t.Fatalf("next %d, want the last ID %d", p.Next, after)
		}
	}
	if len(got) != 64 || !slices.IsSortedFunc(got, func(a, b lobby.MatchInfo) int { return int(a.ID) - int(b.ID) }) {
		t.Fatalf("%d matches over %d pages", len(got), pages)
	}
	// A limit is honoured; a page of small matches is not cut by bytes.
	p := page(t, reader, 0, 2)
	if p.Result != lobby.ResultOK || len(p.Matches) != 2 || p.Next != p.Matches[1].ID {
		t.Fatalf("limit 2: %+v", p)
	}
	// The helper that pages through everything agrees.
	all, err := reader.List(ctx(t))
	if err != nil || len(all) != 64 {
		t.Fatalf("List: %d %v", len(all), err)
	}
}

// TestLobbyCallFlood: one client floods the lobby with list calls (each
// answer once up to 261 KB for a 60-byte call). Its calls over the rate are
// answered RateLimited, cheaply, and counted; another client is served all
// along.
func TestLobbyCallFlood(t *testing.T) {
	srv, dial := startWith(t, matchserver.Config{})
	cs := dial(2)
	flooder, legit := cs[0], cs[1]
	must(t, lobby.ResultOK)(legit.Create(ctx(t), "legit", 4, []byte("x")))

	const flood = 2000
	// The flood's requests are sent as they are, each with its own
	// sequence number, not through an rmi.Requests (which would hold
	// the flooder to its outstanding limit).
	list := func(seq uint32) []byte {
		e := rmi.StartRequest(lobby.Lobby_ListMatches, 2)
		defer rmi.PutEncoder(e)
		e.EncodeUint32(0)
		e.EncodeUint8(0)
		frame := append([]byte(nil), e.Bytes()...)
		binary.BigEndian.PutUint32(frame[2:], seq)
		return frame
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range flood {
			// Sequence numbers up to 2^32-1: the flooder's own Requests
			// numbers from 1 after them (serial order), so its later
			// requests are new to the server, not stale.
			if err := flooder.Send(net.ServerID, net.Reliable, list(uint32(i)-flood)); err != nil {
				t.Errorf("flood %d: %v", i, err)
				return
			}
			if i%100 == 99 {
				time.Sleep(time.Millisecond) // let the flooder's queue drain, not overflow
			}
		}
	}()
	// The other client, asking within the call rate, keeps getting its
	// answers during the flood.
	served := 0
	for {
		p, err := legit.ListPage(ctx(t), 0, 0)
		if err != nil || p.Result != lobby.ResultOK || len(p.Matches) != 1 {
			t.Fatalf("legit client during the flood: %+v %v", p, err)
		}
		served++
		select {
		case <-done:
		case <-time.After(time.Second / (matchserver.DefaultCallRate - 1)):
			continue
		}
		break
	}
	lists := `skein_lobby_requests_total{call="list"}`
	waitMetric(t, srv, lists, float64(flood+served))
	elapsed := time.Since(start)
	limited := metric(t, srv, `skein_lobby_rate_limited_total{call="list"}`)
	// At most a burst and the rate over the time taken got through.
	if most := float64(flood) - (matchserver.DefaultCallBurst + matchserver.DefaultCallRate*(elapsed.Seconds()+1)); limited < most {
		t.Fatalf("%v of %d flooded calls rate-limited in %v, want at least %v", limited, flood, elapsed, most)
	}
	if r := metric(t, srv, `skein_lobby_results_total{result="too many requests"}`); r != limited {
		t.Fatalf("%v RateLimited answers for %v limited calls", r, limited)
	}
	// The flooder was told, and is still connected.
	sawLimited := false
	for deadline := time.After(5 * time.Second); !sawLimited; {
		p, err := flooder.ListPage(ctx(t), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		sawLimited = p.Result == lobby.ResultRateLimited
		select {
		case <-deadline:
			t.Fatal("the flooder never got RateLimited")
		default:
		}
	}
	// Calls without an answer are limited (and counted) too.
	for range 3 * matchserver.DefaultCallBurst {
		flooder.Say("spam")
	}
	waitMetric(t, srv, `skein_lobby_rate_limited_total{call="chat"}`, 1)
	if p, err := legit.ListPage(ctx(t), 0, 0); err != nil || p.Result != lobby.ResultOK {
		t.Fatalf("legit client after the flood: %+v %v", p, err)
	}
}

// TestLobbyQuickJoinRace: 64 quick joins at once used to read stale player
// counts (56 of 64 failed with "match full"). Seats are now counted as each
// join is decided: with room for all, all succeed, filling the fullest
// match first; over capacity, exactly the excess is told "full".
func TestLobbyQuickJoinRace(t *testing.T) {
	srv, dial := startWith(t, matchserver.Config{})
	cs := dial(66)
	owner, watcher, racers := cs[0], cs[1], cs[2:]
	big := must(t, lobby.ResultOK)(owner.Create(ctx(t), "sixteen", 16, nil))

	race := func(call func(c *lobbytest.Client) (lobby.Result, net.HostID, error)) (map[lobby.Result]int, map[net.HostID]int) {
		results := make([]lobby.Result, len(racers))
		matches := make([]net.HostID, len(racers))
		var wg stdsync.WaitGroup
		for i, c := range racers {
			wg.Go(func() {
				r, m, err := call(c)
				if err != nil {
					t.Errorf("racer %d: %v", i, err)
				}
				results[i], matches[i] = r, m
			})
		}
		// The watcher is answered meanwhile.
		if ms, err := watcher.List(ctx(t)); err != nil || len(ms) == 0 {
			t.Errorf("watcher: %v %v", ms, err)
		}
		wg.Wait()
		byResult, byMatch := map[lobby.Result]int{}, map[net.HostID]int{}
		for i, r := range results {
			byResult[r]++
			if r == lobby.ResultOK {
				byMatch[matches[i]]++
			}
		}
		return byResult, byMatch
	}

	// Over capacity: 64 joins for 15 free seats.
	byResult, byMatch := race(func(c *lobbytest.Client) (lobby.Result, net.HostID, error) { return c.Join(ctx(t), big) })
	if byResult[lobby.ResultOK] != 15 || byResult[lobby.ResultFull] != 49 || byMatch[big] != 15 {
		t.Fatalf("64 joins into 15 seats: %v", byResult)
	}
	if n := len(srv.Sync().Members(big)); n != 17 { // the server, the owner and 15
		t.Fatalf("the match has %d members", n)
	}
	var wg stdsync.WaitGroup
	for _, c := range racers {
		wg.Go(func() { c.Leave(ctx(t)) })
	}
	wg.Wait()

	// With room for all: 15 fill the open match (the fullest with room),
	// the other 49 fill quick matches of 8 one after another.
	byResult, byMatch = race(func(c *lobbytest.Client) (lobby.Result, net.HostID, error) { return c.QuickJoin(ctx(t)) })
	if byResult[lobby.ResultOK] != 64 {
		t.Fatalf("64 quick joins with room for all: %v", byResult)
	}
	sizes := []int{}
	for m, n := range byMatch {
		if m != big {
			sizes = append(sizes, n)
		}
	}
	slices.Sort(sizes)
	if byMatch[big] != 15 || !slices.Equal(sizes, []int{1, 8, 8, 8, 8, 8, 8}) {
		t.Fatalf("quick joins went %d into the open match, %v into new ones", byMatch[big], sizes)
	}
	ms, err := watcher.List(ctx(t))
	if err != nil || len(ms) != 8 {
		t.Fatalf("list: %v %v", ms, err)
	}
	for _, m := range ms {
		if want := byMatch[net.HostID(m.ID)]; net.HostID(m.ID) == big && m.Players != 16 || net.HostID(m.ID) != big && int(m.Players) != want {
			t.Fatalf("match %d lists %d players, %d joined", m.ID, m.Players, want)
		}
	}
}

// TestLobbyHostileNames: match names carried ESC, OSC, bidi overrides and
// NUL to every browser. They are cleaned with engine/chat's name rules; a
// name with nothing left, or too long before cleaning, is refused.
func TestLobbyHostileNames(t *testing.T) {
	_, dial := startWith(t, matchserver.Config{})
	cs := dial(3)
	evil := "\x1b]0;owned\x07Evil\u202egnam\x00\x1b[2J room\u200b"
	m := must(t, lobby.ResultOK)(cs[0].Create(ctx(t), evil, 4, nil))
	must(t, lobby.ResultBadRequest)(cs[1].Create(ctx(t), "\x1b\x00\u202e\u200b\t ", 4, nil))
	must(t, lobby.ResultBadRequest)(cs[1].Create(ctx(t), strings.Repeat("n", matchserver.MaxNameLen+1), 4, nil))
	// A long name of many-byte characters is accepted, cut to the rules'
	// length.
	long := strings.Repeat("한", chat.MaxNameRunes+4)
	m2 := must(t, lobby.ResultOK)(cs[1].Create(ctx(t), long, 4, nil))
	ms, err := cs[2].List(ctx(t))
	if err != nil || len(ms) != 2 {
		t.Fatalf("list: %v %v", ms, err)
	}
	want := map[uint32]string{uint32(m): chat.CleanName(evil), uint32(m2): strings.Repeat("한", chat.MaxNameRunes)}
	for _, mi := range ms {
		if mi.Name != want[mi.ID] || strings.ContainsAny(mi.Name, "\x1b\x07\x00\u202e\u200b") {
			t.Fatalf("match %d is named %q, want %q", mi.ID, mi.Name, want[mi.ID])
		}
	}
	if want[uint32(m)] != "]0;ownedEvilgnam[2J room" {
		t.Fatalf("cleaned to %q", want[uint32(m)])
	}
}

// TestLobbyChatBurst: every client bursting lines at once used to cost the
// server a copy per line per lobby client (O(N²)). Lines now reach the
// sender's room only (ChatRoom clients), each sender is limited, and the
// drops are counted.
func TestLobbyChatBurst(t *testing.T) {
	const room, clients, lines = 8, 24, 8
	srv, dial := startWith(t, matchserver.Config{Lobby: matchserver.LobbyConfig{ChatRoom: room}})
	cs := dial(clients)
	legit := dial(1)[0] // alone in a room of its own
	var wg stdsync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			for k := range lines {
				c.Say(fmt.Sprintf("%d says %d", i, k))
			}
		})
	}
	// A legit client is answered during the burst.
	if ms, err := legit.List(ctx(t)); err != nil || len(ms) != 0 {
		t.Fatalf("list during the burst: %v %v", ms, err)
	}
	wg.Wait()
	// Every line is accepted (and heard by the sender's room) or dropped.
	total := float64(clients * lines)
	waitMetric(t, srv, `skein_lobby_requests_total{call="chat"}`, total)
	index := map[net.HostID]int{}
	for i, c := range cs {
		index[c.ID()] = i
	}
	heard := make([]map[int]int, clients) // receiver → sender → lines
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		dropped := metric(t, srv, `skein_lobby_chat_dropped_total{reason="rate_limited"}`)
		copies := metric(t, srv, `skein_lobby_chat_copies_total`)
		if dropped+copies/room == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v dropped and %v copies (%v lines) for %v lines sent", dropped, copies, copies/room, total)
		}
	}
	// The rooms are the clients in the order they connected. Every copy
	// was sent: take what arrives until the clients are quiet.
	for r, c := range cs {
		heard[r] = map[int]int{}
		wg.Go(func() {
			for {
				select {
				case l := <-c.Chat:
					if s := index[l.From]; s/room != r/room {
						t.Errorf("client %d heard client %d of another room", r, s)
					} else {
						heard[r][s]++
					}
					continue
				case <-time.After(300 * time.Millisecond):
				}
				return
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Each sender was heard the same number of times by its whole room:
	// between its burst (5) and all its lines.
	for s := range clients {
		n := heard[s][s]
		if n < 5 || n > lines {
			t.Fatalf("client %d got %d of its own lines back", s, n)
		}
		for r := s / room * room; r < (s/room+1)*room; r++ {
			if heard[r][s] != n {
				t.Fatalf("client %d heard %d lines of client %d, which got %d back", r, heard[r][s], s, n)
			}
		}
	}
	if len(legit.Chat) != 0 {
		t.Fatalf("a client of another room heard %+v", <-legit.Chat)
	}
}
