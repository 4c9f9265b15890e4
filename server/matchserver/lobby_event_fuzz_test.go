package matchserver

import (
	"context"
	"encoding/binary"
	"slices"
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
		request(1, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.ListMatches(net.ServerID, rmi.Reliable, 0, 0, nil)
		}),
		request(2, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.CreateMatch(net.ServerID, rmi.Reliable, "duel", 2, []byte("map=arena"), nil)
		}),
		request(3, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.CreateMatch(net.ServerID, rmi.Reliable, "too many", 200, nil, nil)
		}),
		request(4, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.JoinMatch(net.ServerID, rmi.Reliable, 5000, nil)
		}),
		request(5, func(p *lobby.LobbyProxy) (rmi.Pending, error) { return p.QuickJoin(net.ServerID, rmi.Reliable, nil) }),
		captured(func(p *lobby.LobbyProxy) error { return p.Chat(net.ServerID, rmi.Reliable, "hello lobby") }),
		captured(func(p *lobby.LobbyProxy) error { return p.SetName(net.ServerID, rmi.Reliable, "bob") }),
		nil, {0}, {0, 100}, {0, 101, 0x91},
	}
}

// leaveCall is a LeaveMatch request with sequence number seq.
func leaveCall(seq uint32) []byte {
	return request(seq, func(p *lobby.LobbyProxy) (rmi.Pending, error) { return p.LeaveMatch(net.ServerID, rmi.Reliable, nil) })
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
	leave := leaveCall(1)
	f.Fuzz(func(t *testing.T, frame []byte) {
		r.call(c.ID(), append([]byte(nil), frame...))
		r.settle()
		// Each input starts from a fresh reply window (as after a
		// reconnection): the leave, always sequence number 1, is new to
		// the server whatever numbers the input used.
		s.reqs.LinkDown(c.ID())
		r.call(c.ID(), leave)
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

// TestLobbyRateLimitedRetry: a request over the client's call rate is
// answered RateLimited, and that answer is not kept in the reply cache: the
// same request asked again (same sequence number) while the bucket is
// empty is refused again, and once it has refilled is served; a retry of
// the served request then gets the cached answer without running it.
func TestLobbyRateLimitedRetry(t *testing.T) {
	r := newLobbyRig(t)
	at := r.now.Add(time.Hour)
	send := func(seq uint32, when time.Time) {
		frame := request(seq, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.ListMatches(net.ServerID, rmi.Reliable, 0, 0, nil)
		})
		r.s.handle(sync.Event{Kind: sync.EventMessage, Peer: r.c.ID(), Delivery: net.Reliable, Data: frame, Received: when})
	}
	for seq := uint32(1); seq <= DefaultCallBurst; seq++ {
		send(seq, at) // the burst: served
	}
	const limited = DefaultCallBurst + 1
	send(limited, at)
	send(limited, at)
	send(limited, at.Add(time.Second)) // a token back
	send(limited, at.Add(time.Second))
	// The client gets every answer; those to the limited one, in order.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []rmi.Status
	for len(got) < 4 {
		e, err := r.c.Next(ctx)
		if err != nil {
			t.Fatalf("answers to request %d: %v, then %v", limited, got, err)
		}
		if e.Kind == sync.EventMessage && len(e.Data) >= rmi.ResponseHeaderSize && e.Data[0] == 0 && e.Data[1] == 0 &&
			binary.BigEndian.Uint32(e.Data[2:]) == limited {
			got = append(got, rmi.Status(e.Data[6]))
		}
	}
	want := []rmi.Status{rmi.StatusRateLimited, rmi.StatusRateLimited, rmi.StatusOK, rmi.StatusOK}
	if !slices.Equal(got, want) {
		t.Fatalf("answers to request %d: %v, want %v", limited, got, want)
	}
	if st := r.s.reqs.Stats(); st.Served != DefaultCallBurst+3 || st.Replayed != 1 {
		t.Errorf("reply cache %+v: want %d served (the refused ones too) and 1 replayed", st, DefaultCallBurst+3)
	}
}
