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

func (h *handler) ListMatches(info rmi.CallInfo, after uint32, limit uint8) (lobby.Result, []lobby.MatchInfo, uint32, uint32, error) {
	s := h.s
	s.metrics.requests.WithLabelValues("list").Inc()
	if err := h.allowRequest(info, "list"); err != nil {
		return 0, nil, 0, 0, err
	}
	list, next, total := s.reg.page(net.HostID(after), int(limit), s.sync.GroupHost)
	s.metrics.results.WithLabelValues(lobby.ResultOK.Text()).Inc()
	return lobby.ResultOK, list, uint32(next), uint32(total), nil
}

func (h *handler) CreateMatch(info rmi.CallInfo, name string, maxPlayers uint8, options []byte) (lobby.Result, uint32, error) {
	s := h.s
	s.metrics.requests.WithLabelValues("create").Inc()
	if err := h.allowRequest(info, "create"); err != nil {
		return 0, 0, err
	}
	switch {
	case len(options) > lobby.MaxOptions:
		return s.result(lobby.ResultTooLarge), 0, nil
	case len(name) > MaxNameLen:
		return s.result(lobby.ResultBadRequest), 0, nil
	}
	name = chat.CleanName(name)
	if int(maxPlayers) < MinPlayers || int(maxPlayers) > MaxPlayers || name == "" {
		return s.result(lobby.ResultBadRequest), 0, nil
	}
	s.createAndJoin(info.From, info.Defer(), name, int(maxPlayers), options)
	return 0, 0, rmi.ErrDeferred
}

func (h *handler) JoinMatch(info rmi.CallInfo, id uint32) (lobby.Result, uint32, error) {
	s := h.s
	s.metrics.requests.WithLabelValues("join").Inc()
	if err := h.allowRequest(info, "join"); err != nil {
		return 0, 0, err
	}
	if net.HostID(id) == net.NoHost {
		return s.result(lobby.ResultNotFound), 0, nil
	}
	if r := s.reg.claim(info.From, net.HostID(id)); r != lobby.ResultOK {
		return s.result(r), 0, nil
	}
	m := s.reg.get(net.HostID(id))
	if m == nil { // ended between the claim and now: its seat went with it
		s.reg.release(info.From)
		return s.result(lobby.ResultNotFound), 0, nil
	}
	s.joinMatch(m, info.From, info.Defer())
	return 0, 0, rmi.ErrDeferred
}

func (h *handler) QuickJoin(info rmi.CallInfo) (lobby.Result, uint32, error) {
	s := h.s
	s.metrics.requests.WithLabelValues("quick_join").Inc()
	if err := h.allowRequest(info, "quick_join"); err != nil {
		return 0, 0, err
	}
	m, r := s.reg.claimQuick(info.From)
	switch {
	case r != lobby.ResultOK:
		return s.result(r), 0, nil
	case m != nil:
		s.joinMatch(m, info.From, info.Defer())
	default:
		s.createAndJoin(info.From, info.Defer(), "Quick match", quickMatchSz, nil)
	}
	return 0, 0, rmi.ErrDeferred
}

func (h *handler) LeaveMatch(info rmi.CallInfo) (lobby.Result, error) {
	s := h.s
	s.metrics.requests.WithLabelValues("leave").Inc()
	if err := h.allowRequest(info, "leave"); err != nil {
		return 0, err
	}
	id, ok := s.reg.release(info.From)
	m := s.reg.get(id)
	if !ok || m == nil {
		return s.result(lobby.ResultNotInMatch), nil
	}
	later := info.Defer()
	if !s.post(m, func() {
		s.dropPlayer(m, info.From)
		s.left(later, lobby.ResultOK)
	}) {
		return s.result(lobby.ResultUnavailable), nil
	}
	return 0, rmi.ErrDeferred
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

// result counts an answer's result (skein_lobby_results_total) and returns
// it.
func (s *Server) result(r lobby.Result) lobby.Result {
	s.metrics.results.WithLabelValues(r.Text()).Inc()
	return r
}

// joined answers a deferred CreateMatch, JoinMatch or QuickJoin (their
// results are the same), from any goroutine.
func (s *Server) joined(later *rmi.Later, r lobby.Result, match net.HostID) {
	answer := lobby.AnswerLobbyJoinMatch
	if id := later.ID(); id == lobby.Lobby_CreateMatch {
		answer = lobby.AnswerLobbyCreateMatch
	} else if id == lobby.Lobby_QuickJoin {
		answer = lobby.AnswerLobbyQuickJoin
	}
	if err := answer(later, s.result(r), uint32(match)); err != nil {
		s.lobLog.Debug("answer not sent", "call", later.ID(), "error", err)
	}
}

// left answers a deferred LeaveMatch.
func (s *Server) left(later *rmi.Later, r lobby.Result) {
	if err := lobby.AnswerLobbyLeaveMatch(later, s.result(r)); err != nil {
		s.lobLog.Debug("answer not sent", "call", later.ID(), "error", err)
	}
}

// createAndJoin creates a match (a group with the server as member) and
// joins client to it.
func (s *Server) createAndJoin(client net.HostID, later *rmi.Later, name string, max int, options []byte) {
	if s.closing.Load() {
		s.joined(later, lobby.ResultUnavailable, net.NoHost)
		return
	}
	if r := s.reg.claim(client, net.NoHost); r != lobby.ResultOK {
		s.joined(later, r, net.NoHost)
		return
	}
	id, err := s.sync.CreateGroup([]net.HostID{net.ServerID}, options)
	if err != nil {
		s.reg.release(client)
		s.joined(later, lobby.ResultUnavailable, net.NoHost)
		return
	}
	m := newMatch(id, name, max, append([]byte(nil), options...))
	s.reg.addClaimed(m, client)
	s.matchWG.Add(1)
	go m.run(&s.matchWG)
	s.lobLog.Info("match created", "match", id, "name", name, "max", max, "by", client)
	s.joinMatch(m, client, later)
}

// joinMatch adds a client that claimed a seat in m, on m's goroutine. The
// seat was counted when claimed, so the match has room; the check of the
// members here only guards against a leave whose job was never queued.
func (s *Server) joinMatch(m *match, client net.HostID, later *rmi.Later) {
	ok := s.post(m, func() {
		switch {
		case m.closed:
			s.reg.releaseIf(client, m.id)
			s.joined(later, lobby.ResultNotFound, net.NoHost)
		case len(m.members) >= m.max:
			s.reg.releaseIf(client, m.id)
			s.joined(later, lobby.ResultFull, net.NoHost)
		default:
			if err := s.sync.JoinGroup(m.id, client); err != nil {
				s.reg.releaseIf(client, m.id)
				s.endIfEmpty(m)
				s.joined(later, lobby.ResultUnavailable, net.NoHost)
				return
			}
			m.members = append(m.members, client)
			s.joined(later, lobby.ResultOK, m.id)
		}
	})
	if !ok {
		s.reg.releaseIf(client, m.id)
		s.joined(later, lobby.ResultUnavailable, net.NoHost)
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
