package matchserver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/server/lobby"
)

// captured returns the frame a lobby proxy call sends.
func captured(call func(p *lobby.LobbyProxy) error) []byte {
	var frame []byte
	p := lobby.NewLobbyProxy(rmi.SenderFunc(func(_ net.HostID, _ net.Delivery, data []byte) error {
		frame = append([]byte(nil), data...)
		return nil
	}))
	if err := call(p); err != nil {
		panic(err)
	}
	return frame
}

// request returns the frame of a lobby request with sequence number seq.
func request(seq uint32, call func(p *lobby.LobbyProxy) (rmi.Pending, error)) []byte {
	var frame []byte
	p := lobby.NewLobbyProxy(rmi.NewRequests(rmi.SenderFunc(func(_ net.HostID, _ net.Delivery, data []byte) error {
		frame = append([]byte(nil), data...)
		return nil
	}), rmi.RequestConfig{}))
	if _, err := call(p); err != nil {
		panic(err)
	}
	binary.BigEndian.PutUint32(frame[2:], seq)
	return frame
}

// check verifies the registry's invariants: the ID index and the map hold
// the same matches in order, and each match's seats are the claims on it,
// never over its size.
func (r *registry) check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.byID) != len(r.matches) || !slices.IsSortedFunc(r.byID, func(a, b *match) int { return int(a.id) - int(b.id) }) {
		return fmt.Errorf("%d matches, %d in the index (sorted: %v)", len(r.matches), len(r.byID), slices.IsSortedFunc(r.byID, func(a, b *match) int { return int(a.id) - int(b.id) }))
	}
	claims := map[net.HostID]int{}
	for c, id := range r.inMatch {
		if id == net.NoHost {
			return fmt.Errorf("client %v holds a claim on no match", c)
		}
		claims[id]++
	}
	for _, m := range r.byID {
		if r.matches[m.id] != m {
			return fmt.Errorf("match %v indexed but not in the map", m.id)
		}
		if m.seats != claims[m.id] || m.seats > m.max {
			return fmt.Errorf("match %v: %d seats of %d, %d claims", m.id, m.seats, m.max, claims[m.id])
		}
	}
	return nil
}

// FuzzLobbyCall feeds any frame to the lobby's handler, as a call from one
// of a few clients, on a server that is not serving (its answers go
// nowhere): no panic, and the registry stays consistent.
func FuzzLobbyCall(f *testing.F) {
	for _, frame := range [][]byte{
		request(1, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.ListMatches(net.ServerID, rmi.Reliable, 0, 0, nil)
		}),
		request(2, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.ListMatches(net.ServerID, rmi.Reliable, 5000, 3, nil)
		}),
		request(3, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.CreateMatch(net.ServerID, rmi.Reliable, "duel\x1b]0;x\x07", 4, []byte("map=arena"), nil)
		}),
		request(4, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.CreateMatch(net.ServerID, rmi.Reliable, "big", 16, make([]byte, lobby.MaxOptions+1), nil)
		}),
		request(5, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
			return p.JoinMatch(net.ServerID, rmi.Reliable, 1000, nil)
		}),
		request(6, func(p *lobby.LobbyProxy) (rmi.Pending, error) { return p.JoinMatch(net.ServerID, rmi.Reliable, 0, nil) }),
		request(7, func(p *lobby.LobbyProxy) (rmi.Pending, error) { return p.QuickJoin(net.ServerID, rmi.Reliable, nil) }),
		request(8, func(p *lobby.LobbyProxy) (rmi.Pending, error) { return p.LeaveMatch(net.ServerID, rmi.Reliable, nil) }),
		captured(func(p *lobby.LobbyProxy) error { return p.Chat(net.ServerID, rmi.Reliable, "hi \u202eall") }),
		captured(func(p *lobby.LobbyProxy) error { return p.SetName(net.ServerID, rmi.Reliable, "\x00Ana") }),
	} {
		f.Add(byte(0), frame)
		f.Add(byte(3), frame)
	}
	s, err := New(Config{Listen: "127.0.0.1:0", Lobby: LobbyConfig{CallRate: 1000, CallBurst: 1000}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		s.sync.Close()
		s.stopMatches()
	})
	now := time.Now()
	f.Fuzz(func(t *testing.T, client byte, frame []byte) {
		now = now.Add(10 * time.Millisecond)
		from := net.HostID(1000 + int(client%4))
		info := rmi.CallInfo{From: from, Context: rmi.Reliable, Received: now}
		s.disp.Dispatch(info, frame) // a frame that does not decode is an error, counted by the server
		if err := s.reg.check(); err != nil {
			t.Fatalf("after %x from %v: %v", frame, from, err)
		}
	})
}

// FuzzLobbyPage builds a registry of matches whose names and options have
// the sizes the input says, and checks every page: within MaxPageBytes
// once encoded, in ID order above the cursor, at most the limit, never
// empty while matches remain, and the pages together list every match
// once.
func FuzzLobbyPage(f *testing.F) {
	f.Add([]byte{32, 0x10, 0x00, 8, 0x00, 0x10}, uint8(0))
	f.Add(bytes.Repeat([]byte{96, 0x10, 0x00}, 70), uint8(0))
	f.Add(bytes.Repeat([]byte{5, 0x00, 0x20}, 70), uint8(3))
	f.Add([]byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, sizes []byte, limit uint8) {
		r := newRegistry()
		for k := 0; k+2 < len(sizes) && k/3 < 300; k += 3 {
			name := string(bytes.Repeat([]byte{'n'}, int(sizes[k])%(MaxNameLen+1)))
			opts := make([]byte, (int(sizes[k+1])<<8|int(sizes[k+2]))%(lobby.MaxOptions+1))
			m := newMatch(net.HostID(10+7*k), name, MaxPlayers, opts)
			r.addClaimed(m, net.HostID(100000+k))
		}
		// The pages are answered by a real stub, whose response frames
		// are measured.
		var answer struct {
			page        []lobby.MatchInfo
			next, total uint32
		}
		reqs := rmi.NewRequests(rmi.SenderFunc(func(_ net.HostID, _ net.Delivery, data []byte) error {
			if len(data) > lobby.MaxPageBytes {
				return fmt.Errorf("a page of %d bytes", len(data))
			}
			return nil
		}), rmi.RequestConfig{})
		d := rmi.NewDispatcher()
		d.SetRequests(reqs)
		if err := d.Attach(&lobby.LobbyStub{ListMatches: func(rmi.CallInfo, uint32, uint8) (lobby.Result, []lobby.MatchInfo, uint32, uint32, error) {
			return lobby.ResultOK, answer.page, answer.next, answer.total, nil
		}}); err != nil {
			t.Fatal(err)
		}
		seq := uint32(0)
		hostOf := func(id net.HostID) net.HostID { return id + 1<<31 }
		want := limit
		if want == 0 || want > lobby.MaxPageMatches {
			want = lobby.MaxPageMatches
		}
		var seen []uint32
		for after := net.HostID(0); ; {
			page, next, total := r.page(after, int(limit), hostOf)
			if total != len(r.byID) || len(page) > int(want) {
				t.Fatalf("page after %v: %d matches (limit %d), total %d of %d", after, len(page), limit, total, len(r.byID))
			}
			answer.page, answer.next, answer.total = page, uint32(next), uint32(total)
			seq++
			list := request(seq, func(p *lobby.LobbyProxy) (rmi.Pending, error) {
				return p.ListMatches(net.ServerID, rmi.Reliable, 0, 0, nil)
			})
			if err := d.Dispatch(rmi.CallInfo{From: 1, Context: rmi.Reliable}, list); err != nil {
				t.Fatalf("page after %v, %d matches: %v", after, len(page), err)
			}
			for _, m := range page {
				if net.HostID(m.ID) <= after || m.Host != uint32(hostOf(net.HostID(m.ID))) || m.Players != 1 {
					t.Fatalf("page after %v holds %+v", after, m)
				}
				after = net.HostID(m.ID)
				seen = append(seen, m.ID)
			}
			if next == 0 {
				break
			}
			if len(page) == 0 || next != after {
				t.Fatalf("next %v after a page of %d ending at %v", next, len(page), after)
			}
		}
		if len(seen) != len(r.byID) {
			t.Fatalf("the pages listed %d of %d matches", len(seen), len(r.byID))
		}
		for i, m := range r.byID {
			if seen[i] != uint32(m.id) {
				t.Fatalf("the pages listed %v", seen)
			}
		}
	})
}

// BenchmarkRegistryPage is the cost of one ListMatches page among 4096
// matches (the most clients a default server takes, each in its own
// match): the page's length, not the matches'.
func BenchmarkRegistryPage(b *testing.B) {
	r := newRegistry()
	for i := range 4096 {
		r.addClaimed(newMatch(net.HostID(10+i), fmt.Sprintf("match %d", i), MaxPlayers, []byte("map=Foundry")), net.HostID(100000+i))
	}
	hostOf := func(id net.HostID) net.HostID { return id }
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.page(net.HostID(10+(i*64)%4096), 0, hostOf)
	}
}
