package netplay

import (
	"slices"
	"testing"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
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
