package matchserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/internal/lobbytest"
	"github.com/skein-dev/skein/server/lobby"
	"github.com/skein-dev/skein/server/matchserver"
)

func start(t *testing.T) (*matchserver.Server, func() []*lobbytest.Client) {
	t.Helper()
	srv, err := matchserver.New(matchserver.Config{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", ShutdownTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var clients []*lobbytest.Client
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	dial := func() []*lobbytest.Client {
		c, err := lobbytest.Dial(t.Context(), srv.UDPAddr(), sync.ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		return clients
	}
	return srv, dial
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, want lobby.Result) func(lobby.Result, net.HostID, error) net.HostID {
	return func(r lobby.Result, m net.HostID, err error) net.HostID {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if r != want {
			t.Fatalf("result %v, want %v", r, want)
		}
		return m
	}
}

func TestLobby(t *testing.T) {
	srv, dial := start(t)
	dial()
	dial()
	cs := dial()
	a, b, c := cs[0], cs[1], cs[2]

	if ms, err := a.List(ctx(t)); err != nil || len(ms) != 0 {
		t.Fatalf("list: %v %v", ms, err)
	}
	m := must(t, lobby.ResultOK)(a.Create(ctx(t), "duel", 2, []byte("map=arena")))
	must(t, lobby.ResultAlreadyInMatch)(a.Create(ctx(t), "again", 2, nil))
	must(t, lobby.ResultBadRequest)(b.Create(ctx(t), "huge", 200, nil))
	must(t, lobby.ResultNotFound)(b.Join(ctx(t), m+1000))

	ms, err := b.List(ctx(t))
	if err != nil || len(ms) != 1 || ms[0].ID != uint32(m) || ms[0].Players != 1 || string(ms[0].Options) != "map=arena" || ms[0].Host != uint32(a.ID()) {
		t.Fatalf("list: %+v %v", ms, err)
	}
	if got := must(t, lobby.ResultOK)(b.Join(ctx(t), m)); got != m {
		t.Fatalf("joined %v, want %v", got, m)
	}
	// A repeated request gets the same answer, and is not joined twice.
	if got := must(t, lobby.ResultOK)(b.RepeatJoin(ctx(t))); got != m {
		t.Fatalf("repeat joined %v", got)
	}
	must(t, lobby.ResultFull)(c.Join(ctx(t), m))

	// The match is a P2P group with the server as member: a and b meet.
	members := srv.Sync().Members(m)
	if len(members) != 3 || members[0] != net.ServerID || members[1] != a.ID() || members[2] != b.ID() {
		t.Fatalf("group members %v", members)
	}
	// a's own view of the group must include b (its join event) first.
	for deadline := time.Now().Add(5 * time.Second); !slices.Contains(a.Members(m), b.ID()); {
		if time.Now().After(deadline) {
			t.Fatalf("a never saw b join: %v", a.Members(m))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Send(m, net.Reliable, []byte("gg")); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(5 * time.Second)
wait:
	for {
		select {
		case e := <-b.Events:
			if e.Kind == sync.EventMessage && e.Peer == a.ID() {
				if string(e.Data) != "gg" || e.Group != m {
					t.Fatalf("got %+v", e)
				}
				break wait
			}
		case <-timeout:
			t.Fatal("b never got a's message")
		}
	}

	// Quick-join picks an open match, or makes one.
	q := must(t, lobby.ResultOK)(c.QuickJoin(ctx(t)))
	if q == m {
		t.Fatal("quick-joined a full match")
	}
	if r, err := c.Leave(ctx(t)); err != nil || r != lobby.ResultOK {
		t.Fatalf("leave: %v %v", r, err)
	}
	if r, _ := c.Leave(ctx(t)); r != lobby.ResultNotInMatch {
		t.Fatalf("second leave: %v", r)
	}
	// c's quick match is empty now, and gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ms, _ := c.List(ctx(t))
		if len(ms) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("matches %+v", ms)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A player who disconnects frees its seat.
	b.Close()
	deadline = time.Now().Add(5 * time.Second)
	for {
		ms, _ := a.List(ctx(t))
		if len(ms) == 1 && ms[0].Players == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after disconnect: %+v", ms)
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, lobby.ResultOK)(c.Join(ctx(t), m))
}

func TestAdminEndpoint(t *testing.T) {
	srv, dial := start(t)
	dial()
	res, err := http.Get("http://" + srv.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status  string
		Clients int
	}
	json.NewDecoder(res.Body).Decode(&health)
	res.Body.Close()
	if res.StatusCode != 200 || health.Status != "ok" || health.Clients != 1 {
		t.Fatalf("healthz %d %+v", res.StatusCode, health)
	}
	res, err = http.Get("http://" + srv.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"skein_clients 1", "skein_matches 0", `skein_drops_total{reason="bad_seal"}`, "skein_relayed_datagrams_total", "skein_fanout_copies_total", `skein_admission_refused_total{reason="source_rate"}`, "skein_pending_clients", "skein_suspended_clients 0", "skein_resumed_sessions_total 0", "skein_suspensions_expired_total 0", "skein_client_rtt_seconds_bucket", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestLobbyChat(t *testing.T) {
	_, dial := start(t)
	dial()
	cs := dial()
	a, b := cs[0], cs[1]
	// A name goes with the lines, cleaned (a name is untrusted text too).
	if err := a.SetName("Ana\x1b[31m"); err != nil {
		t.Fatal(err)
	}
	// Control characters are stripped; every client in the lobby hears it.
	if err := a.Say("hello\x1b[2J lobby\x07"); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		select {
		case l := <-c.Chat:
			if l.From != a.ID() || l.Name != "Ana[31m" || l.Text != "hello[2J lobby" {
				t.Fatalf("got %+v", l)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no chat line")
		}
	}
	// Too long: refused. A flood: a burst gets through, the rest is dropped.
	b.Say(strings.Repeat("x", 1000))
	for i := range 50 {
		b.Say(fmt.Sprintf("spam %d", i))
	}
	time.Sleep(500 * time.Millisecond)
	got := 0
	for len(a.Chat) > 0 {
		l := <-a.Chat
		if strings.HasPrefix(l.Text, "x") {
			t.Fatal("an over-long line was relayed")
		}
		got++
	}
	if got < 1 || got > 6 {
		t.Fatalf("%d of 50 flooded lines relayed, want the burst (5) at most and a little more", got)
	}
	// A player in a match is not in the lobby: it neither hears lobby lines
	// nor stops hearing its own.
	c := dial()[2]
	must(t, lobby.ResultOK)(c.Create(ctx(t), "duel", 2, nil))
	if err := c.Say("from a match"); err != nil {
		t.Fatal(err)
	}
	if err := a.Say("lobby only"); err != nil {
		t.Fatal(err)
	}
	// Two clients, two links: the server may take either line first.
	want := map[string]bool{"from a match": true, "lobby only": true}
	for len(want) > 0 {
		select {
		case l := <-a.Chat:
			if !want[l.Text] {
				t.Fatalf("the lobby heard %q, want one of %v", l.Text, want)
			}
			delete(want, l.Text)
		case <-time.After(5 * time.Second):
			t.Fatalf("the lobby did not hear %v", want)
		}
	}
	select {
	case l := <-c.Chat:
		if l.Text != "from a match" {
			t.Fatalf("a player in a match heard %+v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sender in a match did not get its line back")
	}
	time.Sleep(200 * time.Millisecond)
	if len(c.Chat) != 0 {
		t.Fatalf("a player in a match heard the lobby: %+v", <-c.Chat)
	}
}

// The clients' NAT types are counted in /metrics: a client on loopback
// sees its own address, so it is public.
func TestNATTypeMetrics(t *testing.T) {
	srv, dial := start(t)
	dial()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://" + srv.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), `skein_clients_nat{type="public"} 1`) && strings.Contains(string(body), `skein_clients_nat{type="symmetric"} 0`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no public client:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
