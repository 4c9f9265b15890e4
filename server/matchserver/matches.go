package matchserver

import (
	"cmp"
	"slices"
	stdsync "sync"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
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
	// seats counts the clients that claimed a seat (players and those
	// joining); guarded by the registry's lock, so that joins are decided
	// on exact counts however many arrive at once.
	seats int

	mu      stdsync.Mutex // guards stopped; post holds it while queueing
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

func (m *match) run(wg *stdsync.WaitGroup) {
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
// joining), and counts each match's seats. Its lock guards only these and
// is never held while sending or while a match works.
type registry struct {
	mu      stdsync.Mutex
	matches map[net.HostID]*match
	byID    []*match                  // the matches in ID order, for paged lists
	inMatch map[net.HostID]net.HostID // client → match, claimed before the join runs
}

func newRegistry() *registry {
	return &registry{matches: make(map[net.HostID]*match), inMatch: make(map[net.HostID]net.HostID)}
}

// addClaimed adds a new match with client's seat in it (client claimed
// no match yet: see claim with NoHost).
func (r *registry) addClaimed(m *match, client net.HostID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.matches[m.id] = m
	i, _ := slices.BinarySearchFunc(r.byID, m.id, byID)
	r.byID = slices.Insert(r.byID, i, m)
	m.seats = 1
	r.inMatch[client] = m.id
}

// removeIfEmpty forgets m if no seat of it is taken (nobody is joining
// it) and reports whether it did: an empty match ends, unless a join is
// on its way.
func (r *registry) removeIfEmpty(m *match) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.seats > 0 {
		return false
	}
	r.removeLocked(m.id)
	return true
}

func (r *registry) removeLocked(id net.HostID) {
	delete(r.matches, id)
	if i, ok := slices.BinarySearchFunc(r.byID, id, byID); ok {
		r.byID = slices.Delete(r.byID, i, i+1)
	}
}

func byID(m *match, id net.HostID) int { return cmp.Compare(m.id, id) }

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

// claim records that client is joining match id (NoHost: a match it is
// about to create) and takes a seat in it. It answers OK, AlreadyInMatch
// if client is in (or joining) a match, NotFound if the match is gone, or
// Full if every seat is taken.
func (r *registry) claim(client, id net.HostID) lobby.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, busy := r.inMatch[client]; busy {
		return lobby.ResultAlreadyInMatch
	}
	if id != net.NoHost {
		m := r.matches[id]
		switch {
		case m == nil:
			return lobby.ResultNotFound
		case m.seats >= m.max:
			return lobby.ResultFull
		}
		m.seats++
	}
	r.inMatch[client] = id
	return lobby.ResultOK
}

// claimQuick claims a seat for client in the fullest match with a free
// seat (the lowest ID among equals), deciding on the exact seat counts:
// simultaneous quick joins fill a match to its last seat, and none is told
// it is full while it had room. It returns the match, or nil and OK when
// none has room (create one), or nil and AlreadyInMatch.
func (r *registry) claimQuick(client net.HostID) (*match, lobby.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, busy := r.inMatch[client]; busy {
		return nil, lobby.ResultAlreadyInMatch
	}
	var best *match
	for _, m := range r.byID {
		// A match with no seat taken is ending: its last player left.
		if m.seats > 0 && m.seats < m.max && (best == nil || m.seats > best.seats) {
			best = m
		}
	}
	if best == nil {
		return nil, lobby.ResultOK
	}
	best.seats++
	r.inMatch[client] = best.id
	return best, lobby.ResultOK
}

// release forgets client's match, frees its seat there, and returns it.
func (r *registry) release(client net.HostID) (net.HostID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.inMatch[client]
	if !ok {
		return net.NoHost, false
	}
	r.releaseLocked(client, id)
	return id, true
}

// releaseIf is release when client's claim is on match id still (a join
// that failed must not free a claim the client has made since).
func (r *registry) releaseIf(client, id net.HostID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.inMatch[client]; ok && cur == id {
		r.releaseLocked(client, id)
	}
}

func (r *registry) releaseLocked(client, id net.HostID) {
	delete(r.inMatch, client)
	if m := r.matches[id]; m != nil && m.seats > 0 {
		m.seats--
	}
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

// page returns the open matches whose ID is above after, in ID order: at
// most limit of them (0 or over lobby.MaxPageMatches: that many), as many
// as fit in a MatchList call of lobby.MaxPageBytes, and at least one. next
// is the after of the following page (0 after the last); total counts the
// open matches. It costs the page's length, not the number of matches.
func (r *registry) page(after net.HostID, limit int, hostOf func(net.HostID) net.HostID) (out []lobby.MatchInfo, next net.HostID, total int) {
	if limit <= 0 || limit > lobby.MaxPageMatches {
		limit = lobby.MaxPageMatches
	}
	r.mu.Lock()
	total = len(r.byID)
	i, found := slices.BinarySearchFunc(r.byID, after, byID)
	if found {
		i++
	}
	n := min(limit, total-i)
	out = make([]lobby.MatchInfo, 0, n)
	for _, m := range r.byID[i : i+n] {
		out = append(out, lobby.MatchInfo{ID: uint32(m.id), Name: m.name, Players: uint8(m.seats), MaxPlayers: uint8(m.max), Options: m.options})
	}
	more := i+n < total
	r.mu.Unlock()

	// Measure each entry as it is encoded; stop before the budget.
	e := rmi.GetEncoder()
	defer rmi.PutEncoder(e)
	size := pageOverhead
	for k := range out {
		out[k].Host = uint32(hostOf(net.HostID(out[k].ID)))
		e.Reset()
		out[k].EncodeRMI(e)
		if size+e.Len() > lobby.MaxPageBytes && k > 0 {
			out, more = out[:k], true
			break
		}
		size += e.Len()
	}
	if more && len(out) > 0 {
		next = net.HostID(out[len(out)-1].ID)
	}
	return out, next, total
}

// pageOverhead bounds a MatchList call's bytes besides its entries: the
// frame header, the argument array, request, result, the list's array
// header, next and total (each at most 5 bytes in msgpack), with room to
// spare.
const pageOverhead = 64
