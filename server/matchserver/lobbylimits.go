package matchserver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/server/lobby"
)

// LobbyConfig bounds what one client may ask of the lobby. Zero values
// take the documented defaults.
type LobbyConfig struct {
	// CallRate is how many lobby calls a second one client may keep
	// making (a token bucket per client). Zero means 5.
	CallRate float64
	// CallBurst is how many lobby calls a quiet client may make at once.
	// Zero means 20.
	CallBurst int
	// ChatRoom is the most clients in one lobby chat room: a lobby line
	// reaches the sender's room only. Zero means 64.
	ChatRoom int
}

// lobbyReplyCache bounds the memory of the answers kept per client for
// retried requests: two pages of the match list. The lobby's requests are
// reliable, so the runtime never retries them; the cache serves a client
// that asks again with the same sequence number, and an older answer
// dropped from it is answered rmi.StatusStale.
const lobbyReplyCache = 2 * lobby.MaxPageBytes

// Defaults of LobbyConfig.
const (
	DefaultCallRate  = 5
	DefaultCallBurst = 20
	DefaultChatRoom  = 64
)

func (c *LobbyConfig) setDefaults() {
	if c.CallRate <= 0 {
		c.CallRate = DefaultCallRate
	}
	if c.CallBurst <= 0 {
		c.CallBurst = DefaultCallBurst
	}
	if c.ChatRoom <= 0 {
		c.ChatRoom = DefaultChatRoom
	}
}

// newHandler returns the lobby's handler with cfg's limits.
func newHandler(s *Server, cfg LobbyConfig, maxClients int) *handler {
	cfg.setDefaults()
	return &handler{
		s:     s,
		names: make(map[net.HostID]string),
		// Every connected client has a bucket: the limiter never turns one
		// away for want of room (buckets go when clients do; twice the
		// clients leaves room for a new client seen before an old one's
		// disconnection).
		calls: chat.NewLimiter[net.HostID](chat.LimiterConfig{Rate: cfg.CallRate, Burst: cfg.CallBurst, MaxSenders: 2 * maxClients}),
		rooms: newChatRooms(cfg.ChatRoom),
	}
}

// allow takes a token from the client's call bucket; a call over the limit
// is counted (skein_lobby_rate_limited_total{call}) and false returned.
func (h *handler) allow(info rmi.CallInfo, call string) bool {
	if h.calls.Allow(info.From, info.Received).Allow {
		return true
	}
	h.s.metrics.lobbyLimits.rateLimited.WithLabelValues(call).Inc()
	return false
}

// allowRequest is allow for the requests: a call over the limit fails
// with rmi.StatusRateLimited, which the reply cache does not keep (asked
// again once the bucket has refilled, it is served).
func (h *handler) allowRequest(info rmi.CallInfo, call string) error {
	if h.allow(info, call) {
		return nil
	}
	h.s.result(lobby.ResultRateLimited)
	return rmi.Fail(rmi.StatusRateLimited)
}

// connected puts a new client in a lobby chat room.
func (h *handler) connected(client net.HostID) { h.rooms.join(client) }

// disconnected forgets what the lobby knew of a client.
func (h *handler) disconnected(client net.HostID) {
	h.calls.Forget(client)
	h.rooms.leave(client)
	delete(h.names, client)
}

// say sends a cleaned lobby line to the sender's chat room: the members
// not in a match, and the sender. The work is bounded by the room's size,
// whatever the number of clients, so a burst from everyone costs the
// server linear work, not quadratic.
func (h *handler) say(from net.HostID, line string) {
	s := h.s
	room := h.rooms.of(from)
	if room == nil {
		// Not seen connecting (it cannot happen for a connected client):
		// place it now rather than lose its line.
		room = h.rooms.join(from)
	}
	h.scratch = append(h.scratch[:0], room.members...)
	to := s.reg.inLobby(h.scratch, from)
	name := h.names[from]
	for _, id := range to {
		if err := s.reply.ChatLine(id, rmi.Reliable, uint32(from), name, line); err != nil {
			s.lobLog.Debug("chat line not sent", "to", id, "error", err)
		}
	}
	s.metrics.lobbyLimits.chatCopies.Add(float64(len(to)))
}

// chatRooms splits the lobby chat into rooms of at most size clients, each
// client in one room from its connection on. Only the event goroutine uses
// it.
type chatRooms struct {
	size int
	in   map[net.HostID]*chatRoom
	// open lists the rooms with a free place, so that joining costs O(1)
	// amortized.
	open []*chatRoom
}

type chatRoom struct {
	members []net.HostID
	at      map[net.HostID]int // member → its index in members
	listed  bool               // in chatRooms.open
}

func newChatRooms(size int) *chatRooms {
	return &chatRooms{size: size, in: make(map[net.HostID]*chatRoom)}
}

// join puts client in the first open room (a new one if none is) and
// returns its room.
func (c *chatRooms) join(client net.HostID) *chatRoom {
	if r := c.in[client]; r != nil {
		return r
	}
	for len(c.open) > 0 && len(c.open[0].members) >= c.size {
		c.open[0].listed = false
		c.open = c.open[1:]
	}
	var r *chatRoom
	if len(c.open) > 0 {
		r = c.open[0]
	} else {
		r = &chatRoom{at: make(map[net.HostID]int), listed: true}
		c.open = append(c.open, r)
	}
	r.at[client] = len(r.members)
	r.members = append(r.members, client)
	c.in[client] = r
	return r
}

// leave takes client out of its room.
func (c *chatRooms) leave(client net.HostID) {
	r := c.in[client]
	if r == nil {
		return
	}
	delete(c.in, client)
	i := r.at[client]
	delete(r.at, client)
	last := len(r.members) - 1
	if i != last {
		r.members[i] = r.members[last]
		r.at[r.members[i]] = i
	}
	r.members = r.members[:last]
	if !r.listed {
		r.listed = true
		c.open = append(c.open, r)
	}
}

// of returns client's room (nil if it has none).
func (c *chatRooms) of(client net.HostID) *chatRoom { return c.in[client] }

// lobbyLimitMetrics counts what the lobby's limits refused.
type lobbyLimitMetrics struct {
	rateLimited *prometheus.CounterVec
	chatCopies  prometheus.Counter
}

func (m *lobbyLimitMetrics) register(reg *prometheus.Registry) {
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skein_lobby_rate_limited_total", Help: "Lobby calls refused because the client was over its call rate, by call."}, []string{"call"})
	m.chatCopies = prometheus.NewCounter(prometheus.CounterOpts{Name: "skein_lobby_chat_copies_total", Help: "Lobby chat lines sent to clients (one per recipient)."})
	reg.MustRegister(m.rateLimited, m.chatCopies)
}
