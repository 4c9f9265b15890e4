package matchserver

import (
	"context"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/lobby"
)

// lobbyEventSeeds are real lobby calls, encoded by the generated proxy
// (captured), and a few broken ones.
func lobbyEventSeeds() [][]byte {
	return [][]byte{
		captured(func(p *lobby.LobbyProxy) error { return p.ListMatches(net.ServerID, rmi.Reliable, 1, 0, 0) }),
		captured(func(p *lobby.LobbyProxy) error {
			return p.CreateMatch(net.ServerID, rmi.Reliable, 2, "duel", 2, []byte("map=arena"))
		}),
		captured(func(p *lobby.LobbyProxy) error {
			return p.CreateMatch(net.ServerID, rmi.Reliable, 3, "too many", 200, nil)
		}),
		captured(func(p *lobby.LobbyProxy) error { return p.JoinMatch(net.ServerID, rmi.Reliable, 4, 5000) }),
		captured(func(p *lobby.LobbyProxy) error { return p.QuickJoin(net.ServerID, rmi.Reliable, 5) }),
		captured(func(p *lobby.LobbyProxy) error { return p.Chat(net.ServerID, rmi.Reliable, "hello lobby") }),
		captured(func(p *lobby.LobbyProxy) error { return p.SetName(net.ServerID, rmi.Reliable, "bob") }),
		nil, {0}, {0, 100}, {0, 101, 0x91},
	}
}

// leaveCall is a LeaveMatch call with the given request ID.
func leaveCall(request uint32) []byte {
	return captured(func(p *lobby.LobbyProxy) error { return p.LeaveMatch(net.ServerID, rmi.Reliable, request) })
}

// lobbyRig is a match server that is not running (the test's goroutine is
// its event goroutine) and one client connected to it.
type lobbyRig struct {
	s      *Server
	c      *sync.Client
	settle func()
	now    time.Time // the calls' receive times: a second apart, under the call rate
}

// call hands the handler a lobby call from client, as Run would.
func (r *lobbyRig) call(client net.HostID, frame []byte) {
	r.now = r.now.Add(time.Second)
	r.s.handle(sync.Event{Kind: sync.EventMessage, Peer: client, Delivery: net.Reliable, Data: frame, Received: r.now})
}

func newLobbyRig(tb testing.TB) *lobbyRig {
	r := &lobbyRig{now: time.Now()}
	s, err := New(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.sync.Shutdown(ctx)
		s.stopMatches()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sync.DialClient(ctx, "127.0.0.1:0", s.UDPAddr(), sync.ClientConfig{NoTCPFallback: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	for connected := false; !connected; {
		e, err := s.sync.Next(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		connected = e.Kind == sync.EventConnected && e.Peer == c.ID()
		s.handle(e)
	}
	// settle waits until every match has run what was posted to it and
	// hands the server's own events to the handler.
	r.settle = func() {
		for range 3 {
			s.reg.mu.Lock()
			ms := make([]*match, 0, len(s.reg.matches))
			for _, m := range s.reg.matches {
				ms = append(ms, m)
			}
			s.reg.mu.Unlock()
			for _, m := range ms {
				done := make(chan struct{})
				if m.post(func() { close(done) }) {
					<-done
				}
			}
			for e, ok := s.sync.Poll(); ok; e, ok = s.sync.Poll() {
				s.handle(e)
			}
		}
		for _, ok := c.Poll(); ok; _, ok = c.Poll() {
		}
	}
	r.s, r.c = s, c
	return r
}

// FuzzLobbyEvent feeds arbitrary bytes to the match server's event handler
// as a lobby call from a client connected over the network, as Run would
// (this goroutine is the event goroutine; the server's own events go
// through the same handler), then has the client leave. (FuzzLobbyCall
// dispatches calls of clients the group server does not know; here the
// joins succeed.) The server never panics, and no
// match outlives its players: whatever the call did, once the client has
// left, no match is open and the client holds no claim.
func FuzzLobbyEvent(f *testing.F) {
	for _, s := range lobbyEventSeeds() {
		f.Add(s)
	}
	r := newLobbyRig(f)
	s, c := r.s, r.c
	leave, leave2 := leaveCall(6), leaveCall(7) // one of the two is a new request
	f.Fuzz(func(t *testing.T, frame []byte) {
		r.call(c.ID(), append([]byte(nil), frame...))
		r.settle()
		r.call(c.ID(), leave)
		r.call(c.ID(), leave2)
		r.settle()
		if n := s.reg.count(); n != 0 {
			t.Fatalf("%x: %d matches open after the only client left", frame, n)
		}
		s.reg.mu.Lock()
		_, claimed := s.reg.inMatch[c.ID()]
		s.reg.mu.Unlock()
		if claimed {
			t.Fatalf("%x: the client still claims a match after leaving", frame)
		}
	})
}

// TestJoinFailureEndsMatch: a client that creates a match and is gone
// from the group server by the time its join runs (it disconnected in
// between: its disconnection reaches the lobby later) must not leave the
// match it created open and empty for ever, with its goroutine.
func TestJoinFailureEndsMatch(t *testing.T) {
	r := newLobbyRig(t)
	const gone net.HostID = 4242 // not a client of the group server
	r.call(gone, lobbyEventSeeds()[1])
	r.settle()
	if n := r.s.reg.count(); n != 0 {
		t.Fatalf("%d matches open after their creator could not join", n)
	}
	if g := r.s.sync.Groups(); len(g) != 0 {
		t.Fatalf("groups %v left after the match ended", g)
	}
	r.s.reg.mu.Lock()
	_, claimed := r.s.reg.inMatch[gone]
	r.s.reg.mu.Unlock()
	if claimed {
		t.Fatal("the creator still claims the match")
	}
}
