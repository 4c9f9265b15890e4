package matchserver

import (
	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/server/lobby"
)

// handler implements the lobby calls. Its methods run on the event
// goroutine; work on a match is posted to that match's goroutine.
type handler struct {
	lobby.UnimplementedLobbyHandler
	s *Server
	// names holds the names clients set for the lobby chat. Only the event
	// goroutine touches it (lobby calls and disconnections).
	names map[net.HostID]string
	// calls limits each client's lobby calls (safe for concurrent use).
	calls *chat.Limiter[net.HostID]
	// rooms splits the lobby chat (event goroutine only).
	rooms *chatRooms
	// scratch is the chat's recipient buffer (event goroutine only).
	scratch []net.HostID
}

func (h *handler) ListMatches(info rmi.CallInfo, request uint32, after uint32, limit uint8) error {
	s := h.s
	s.metrics.requests.WithLabelValues("list").Inc()
	if !h.allow(info, "list") {
		s.metrics.results.WithLabelValues(lobby.RateLimited.String()).Inc()
		s.sendAnswer(info.From, func() error {
			return s.reply.MatchList(info.From, rmi.Reliable, request, uint8(lobby.RateLimited), nil, 0, 0)
		})
		return nil
	}
	list, next, total := s.reg.page(net.HostID(after), int(limit), s.sync.GroupHost)
	s.answer(info.From, request, func() error {
		return s.reply.MatchList(info.From, rmi.Reliable, request, uint8(lobby.OK), list, uint32(next), uint32(total))
	})
	return nil
}

func (h *handler) CreateMatch(info rmi.CallInfo, request uint32, name string, maxPlayers uint8, options []byte) error {
	s := h.s
	s.metrics.requests.WithLabelValues("create").Inc()
	if !h.allowJoin(info, request, "create") || s.repeated(info.From, request) {
		return nil
	}
	if len(options) > lobby.MaxOptions {
		s.joined(info.From, request, lobby.TooLarge, net.NoHost)
		return nil
	}
	if len(name) > MaxNameLen {
		s.joined(info.From, request, lobby.BadRequest, net.NoHost)
		return nil
	}
	name = chat.CleanName(name)
	if int(maxPlayers) < MinPlayers || int(maxPlayers) > MaxPlayers || name == "" {
		s.joined(info.From, request, lobby.BadRequest, net.NoHost)
		return nil
	}
	s.createAndJoin(info.From, request, name, int(maxPlayers), options)
	return nil
}

func (h *handler) JoinMatch(info rmi.CallInfo, request uint32, id uint32) error {
	s := h.s
	s.metrics.requests.WithLabelValues("join").Inc()
	if !h.allowJoin(info, request, "join") || s.repeated(info.From, request) {
		return nil
	}
	if net.HostID(id) == net.NoHost {
		s.joined(info.From, request, lobby.NotFound, net.NoHost)
		return nil
	}
	if r := s.reg.claim(info.From, net.HostID(id)); r != lobby.OK {
		s.joined(info.From, request, r, net.NoHost)
		return nil
	}
	m := s.reg.get(net.HostID(id))
	if m == nil { // ended between the claim and now: its seat went with it
		s.reg.release(info.From)
		s.joined(info.From, request, lobby.NotFound, net.NoHost)
		return nil
	}
	s.joinMatch(m, info.From, request)
	return nil
}

func (h *handler) QuickJoin(info rmi.CallInfo, request uint32) error {
	s := h.s
	s.metrics.requests.WithLabelValues("quick_join").Inc()
	if !h.allowJoin(info, request, "quick_join") || s.repeated(info.From, request) {
		return nil
	}
	m, r := s.reg.claimQuick(info.From)
	switch {
	case r != lobby.OK:
		s.joined(info.From, request, r, net.NoHost)
	case m != nil:
		s.joinMatch(m, info.From, request)
	default:
		s.createAndJoin(info.From, request, "Quick match", quickMatchSz, nil)
	}
	return nil
}

func (h *handler) LeaveMatch(info rmi.CallInfo, request uint32) error {
	s := h.s
	s.metrics.requests.WithLabelValues("leave").Inc()
	if !h.allow(info, "leave") {
		s.metrics.results.WithLabelValues(lobby.RateLimited.String()).Inc()
		s.sendAnswer(info.From, func() error {
			return s.reply.Left(info.From, rmi.Reliable, request, uint8(lobby.RateLimited))
		})
		return nil
	}
	if s.repeated(info.From, request) {
		return nil
	}
	id, ok := s.reg.release(info.From)
	m := s.reg.get(id)
	if !ok || m == nil {
		s.left(info.From, request, lobby.NotInMatch)
		return nil
	}
	if !s.post(m, func() {
		s.dropPlayer(m, info.From)
		s.left(info.From, request, lobby.OK)
	}) {
		s.left(info.From, request, lobby.Unavailable)
	}
	return nil
}

func (h *handler) Chat(info rmi.CallInfo, text string) error {
	s := h.s
	s.metrics.requests.WithLabelValues("chat").Inc()
	if !h.allow(info, "chat") {
		return nil
	}
	clean, err := chat.Clean(text)
	if err != nil {
		s.metrics.chatDropped.WithLabelValues("refused").Inc()
		return nil
	}
	if v := s.chatLimit.Allow(info.From, info.Received); !v.Allow {
		s.metrics.chatDropped.WithLabelValues("rate_limited").Inc()
		return nil
	}
	h.say(info.From, clean)
	return nil
}

func (h *handler) SetName(info rmi.CallInfo, name string) error {
	h.s.metrics.requests.WithLabelValues("set_name").Inc()
	if !h.allow(info, "set_name") {
		return nil
	}
	if clean := chat.CleanName(name); clean != "" {
		h.names[info.From] = clean
	} else {
		delete(h.names, info.From)
	}
	return nil
}

func (s *Server) joined(client net.HostID, request uint32, r lobby.Result, match net.HostID) {
	s.metrics.results.WithLabelValues(r.String()).Inc()
	s.answer(client, request, func() error {
		return s.reply.Joined(client, rmi.Reliable, request, uint8(r), uint32(match))
	})
}

func (s *Server) left(client net.HostID, request uint32, r lobby.Result) {
	s.metrics.results.WithLabelValues(r.String()).Inc()
	s.answer(client, request, func() error { return s.reply.Left(client, rmi.Reliable, request, uint8(r)) })
}

// createAndJoin creates a match (a group with the server as member) and
// joins client to it.
func (s *Server) createAndJoin(client net.HostID, request uint32, name string, max int, options []byte) {
	if s.closing.Load() {
		s.joined(client, request, lobby.Unavailable, net.NoHost)
		return
	}
	if r := s.reg.claim(client, net.NoHost); r != lobby.OK {
		s.joined(client, request, r, net.NoHost)
		return
	}
	id, err := s.sync.CreateGroup([]net.HostID{net.ServerID}, options)
	if err != nil {
		s.reg.release(client)
		s.joined(client, request, lobby.Unavailable, net.NoHost)
		return
	}
	m := newMatch(id, name, max, append([]byte(nil), options...))
	s.reg.addClaimed(m, client)
	s.matchWG.Add(1)
	go m.run(&s.matchWG)
	s.lobLog.Info("match created", "match", id, "name", name, "max", max, "by", client)
	s.joinMatch(m, client, request)
}

// joinMatch adds a client that claimed a seat in m, on m's goroutine. The
// seat was counted when claimed, so the match has room; the check of the
// members here only guards against a leave whose job was never queued.
func (s *Server) joinMatch(m *match, client net.HostID, request uint32) {
	ok := s.post(m, func() {
		switch {
		case m.closed:
			s.reg.releaseIf(client, m.id)
			s.joined(client, request, lobby.NotFound, net.NoHost)
		case len(m.members) >= m.max:
			s.reg.releaseIf(client, m.id)
			s.joined(client, request, lobby.Full, net.NoHost)
		default:
			if err := s.sync.JoinGroup(m.id, client); err != nil {
				s.reg.releaseIf(client, m.id)
				s.endIfEmpty(m)
				s.joined(client, request, lobby.Unavailable, net.NoHost)
				return
			}
			m.members = append(m.members, client)
			s.joined(client, request, lobby.OK, m.id)
		}
	})
	if !ok {
		s.reg.releaseIf(client, m.id)
		s.joined(client, request, lobby.Unavailable, net.NoHost)
	}
}

// dropPlayer removes a client from m (on m's goroutine) and ends the match
// when nobody is left.
func (s *Server) dropPlayer(m *match, client net.HostID) {
	for i, p := range m.members {
		if p == client {
			m.members = append(m.members[:i], m.members[i+1:]...)
			if err := s.sync.LeaveGroup(m.id, client); err != nil {
				// Already gone if it disconnected: that took it out.
				s.lobLog.Debug("leave group", "match", m.id, "client", client, "error", err)
			}
			break
		}
	}
	s.endIfEmpty(m)
}

// endIfEmpty ends m (on m's goroutine) when it has no player and nobody is
// joining it.
func (s *Server) endIfEmpty(m *match) {
	if len(m.members) == 0 && !m.closed && s.reg.removeIfEmpty(m) {
		m.closed = true
		if err := s.sync.DestroyGroup(m.id); err != nil {
			s.lobLog.Warn("destroy group", "match", m.id, "error", err)
		}
		s.lobLog.Info("match ended", "match", m.id)
		close(m.done)
	}
}

// post queues work on a match; false (and counted) when its queue is full.
func (s *Server) post(m *match, job func()) bool {
	if m.post(job) {
		return true
	}
	s.metrics.overloaded.Inc()
	return false
}

// stopMatches ends every match goroutine (at shutdown).
func (s *Server) stopMatches() {
	s.reg.mu.Lock()
	ms := make([]*match, 0, len(s.reg.matches))
	for _, m := range s.reg.matches {
		ms = append(ms, m)
	}
	clear(s.reg.matches)
	s.reg.byID = nil
	s.reg.mu.Unlock()
	for _, m := range ms {
		done := make(chan struct{})
		if m.post(func() {
			if !m.closed {
				m.closed = true
				close(m.done)
			}
			close(done)
		}) {
			<-done
		}
	}
	s.matchWG.Wait()
}
