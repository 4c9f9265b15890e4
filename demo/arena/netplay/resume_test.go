package netplay

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/matchserver"
)

// The player is told when the connection drops and when it is back, and
// when another player of the match loses theirs; nothing is said about
// another match's members or about the peer links' own away and back (the
// member events cover them).
func TestAwayAndBackToasts(t *testing.T) {
	const match, other, me, mate = net.HostID(900), net.HostID(901), net.HostID(1000), net.HostID(1001)
	s := &Session{me: me, match: match, names: map[net.HostID]string{mate: "Mate"}, relayed: map[net.HostID]bool{}}
	step := func(e sync.Event, want ...string) {
		t.Helper()
		s.handle(e)
		var got []string
		for _, n := range s.Notices() {
			got = append(got, n.Text)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%v (peer %v member %v): toasts %q, want %q", e.Kind, e.Peer, e.Member, got, want)
		}
	}
	step(sync.Event{Kind: sync.EventAway, Peer: net.ServerID, Err: net.ErrTimeout}, "Connection lost… reconnecting")
	if !s.Away() {
		t.Fatal("not away after the server link's EventAway")
	}
	step(sync.Event{Kind: sync.EventAway, Peer: mate})
	step(sync.Event{Kind: sync.EventBack, Peer: mate})
	step(sync.Event{Kind: sync.EventBack, Peer: net.ServerID}, "Back online")
	if s.Away() {
		t.Fatal("still away after EventBack")
	}
	step(sync.Event{Kind: sync.EventMemberAway, Group: match, Member: mate}, "Mate lost the connection… waiting for them")
	step(sync.Event{Kind: sync.EventMemberBack, Group: match, Member: mate}, "Mate is back")
	step(sync.Event{Kind: sync.EventMemberAway, Group: other, Member: mate})
}

// A player whose network drops mid-match (everything it sends lost for
// longer than the timeout) keeps its place: the host is told it lost the
// connection and that it is back, with no leave, and the guest is still in
// the match with the same ID afterwards, its peer link still there.
func TestNetworkDropMidMatchResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a timeout")
	}
	log := testLogger(t)
	ncfg := net.Config{Timeout: time.Second, PingInterval: 200 * time.Millisecond, ResumeGrace: 20 * time.Second}
	srv, err := matchserver.New(matchserver.Config{Listen: "127.0.0.1:0", Logger: log, ShutdownTimeout: 2 * time.Second, Net: ncfg})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	defer func() { stop(); <-done }()
	addr := srv.UDPAddr()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	host, err := Dial(ctx, addr, Config{Name: "Host", Logger: log, Net: ncfg})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	guest, err := Dial(ctx, addr, Config{Name: "Guest", Logger: log, Net: ncfg})
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	var notices []string
	tick := func(until func() bool, what string) {
		t.Helper()
		for !until() {
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s; host's toasts %q", what, notices)
			}
			host.Tick(sim.Input{})
			guest.Tick(sim.Input{})
			for _, n := range host.Notices() {
				notices = append(notices, n.Text)
			}
			guest.Notices()
			time.Sleep(5 * time.Millisecond)
		}
	}
	host.CreateMatch("resume", 2, DefaultOptions())
	tick(func() bool { return host.InMatch() != net.NoHost }, "the match")
	match := host.InMatch()
	guest.JoinMatch(match)
	tick(func() bool { return guest.InMatch() == match && host.PlayerName(guest.ID()) == "Guest" }, "the guest in the match")
	id := guest.ID()

	guest.Impair().SetConditions(1, 0, 0) // everything the guest sends is lost
	tick(func() bool { return containsText(notices, "Guest lost the connection") }, "the away toast")
	guest.Impair().SetConditions(0, 0, 0)
	tick(func() bool { return containsText(notices, "Guest is back") }, "the back toast")
	if containsText(notices, "left") {
		t.Fatalf("the guest left: %q", notices)
	}
	if guest.ID() != id || guest.InMatch() != match || !slices.Contains(srv.Sync().Members(match), id) {
		t.Fatalf("after: guest %v (was %v) in %v (match %v), members %v", guest.ID(), id, guest.InMatch(), match, srv.Sync().Members(match))
	}
	if st := srv.Sync().Host().Stats().Resume; st.Resumed != 1 || st.Suspended != 0 {
		t.Fatalf("server resume stats %+v", st)
	}
}
