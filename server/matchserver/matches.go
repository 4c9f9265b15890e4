package matchserver

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/server/lobby"
)

// match is one match: a P2P group with the server as member. Its changes
// run one at a time on its own goroutine (jobs), so matches never wait for
// each other and no lock is held while anything is sent.
type match struct {
	id      net.HostID
	name    string
	max     int
	options []byte
	jobs    chan func()
	done    chan struct{}
	players atomic.Int32

	mu      sync.Mutex // guards stopped; post holds it while queueing
	stopped bool

	// Owned by the match goroutine.
	members []net.HostID
	closed  bool
}

// matchJobQueue bounds the work waiting on one match; beyond it, requests
// are refused as Unavailable rather than queued without end.
const matchJobQueue = 64

func newMatch(id net.HostID, name string, max int, options []byte) *match {
	return &match{id: id, name: name, max: max, options: options, jobs: make(chan func(), matchJobQueue), done: make(chan struct{})}
}

func (m *match) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case job := <-m.jobs:
			job()
		case <-m.done:
			// Take no more work, and finish what is queued (the jobs see
			// closed and answer accordingly).
			m.mu.Lock()
			m.stopped = true
			m.mu.Unlock()
			for {
				select {
				case job := <-m.jobs:
					job()
				default:
					return
				}
			}
		}
	}
}

// post queues job on the match; false if the match has stopped or its
// queue is full.
func (m *match) post(job func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return false
	}
	select {
	case m.jobs <- job:
		return true
	default:
		return false
	}
}

// registry knows the matches and which match each client is in (or
// joining). Its lock guards only these maps and is never held while
// sending or while a match works.
type registry struct {
	mu      sync.Mutex
	matches map[net.HostID]*match
	inMatch map[net.HostID]net.HostID // client → match, claimed before the join runs
}

func newRegistry() *registry {
	return &registry{matches: make(map[net.HostID]*match), inMatch: make(map[net.HostID]net.HostID)}
}

func (r *registry) add(m *match) {
	r.mu.Lock()
	r.matches[m.id] = m
	r.mu.Unlock()
}

func (r *registry) remove(id net.HostID) {
	r.mu.Lock()
	delete(r.matches, id)
	r.mu.Unlock()
}

func (r *registry) get(id net.HostID) *match {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.matches[id]
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.matches)
}

// claim records that client is joining match id; false if it is already in
// (or joining) a match.
func (r *registry) claim(client, id net.HostID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, busy := r.inMatch[client]; busy {
		return false
	}
	r.inMatch[client] = id
	return true
}

// setClaim points an existing claim at another match (quick-join and
// create pick the match after claiming).
func (r *registry) setClaim(client, id net.HostID) {
	r.mu.Lock()
	r.inMatch[client] = id
	r.mu.Unlock()
}

// release forgets client's match and returns it.
func (r *registry) release(client net.HostID) (net.HostID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.inMatch[client]
	delete(r.inMatch, client)
	return id, ok
}

// inLobby filters clients in place down to those in no match (nor joining
// one), and keep, and returns them.
func (r *registry) inLobby(clients []net.HostID, keep net.HostID) []net.HostID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.DeleteFunc(clients, func(id net.HostID) bool {
		_, inMatch := r.inMatch[id]
		return inMatch && id != keep
	})
}

// list returns the open matches, fullest first (quick-join's order).
func (r *registry) list(hostOf func(net.HostID) net.HostID) []lobby.MatchInfo {
	r.mu.Lock()
	ms := make([]*match, 0, len(r.matches))
	for _, m := range r.matches {
		ms = append(ms, m)
	}
	r.mu.Unlock()
	out := make([]lobby.MatchInfo, 0, len(ms))
	for _, m := range ms {
		out = append(out, lobby.MatchInfo{
			ID: uint32(m.id), Name: m.name, Players: uint8(m.players.Load()), MaxPlayers: uint8(m.max),
			Options: m.options, Host: uint32(hostOf(m.id)),
		})
	}
	slices.SortFunc(out, func(a, b lobby.MatchInfo) int {
		if c := cmp.Compare(b.Players, a.Players); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}
