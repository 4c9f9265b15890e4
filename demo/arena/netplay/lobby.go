package netplay

import (
	"errors"
	"time"

	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/server/lobby"
)

// MatchEntry is a match in the server's list.
type MatchEntry struct {
	lobby.MatchInfo
	// Map is the match's map, from its options.
	Map string
	// Joinable is false for another game's matches, other versions, and
	// full matches; Why says why.
	Joinable bool
	Why      string
}

// DefaultOptions are the options of a match this demo creates.
func DefaultOptions() proto.MatchOptions {
	return proto.MatchOptions{Game: proto.GameName, Version: proto.Version, Map: "Foundry", RoundSeconds: sim.DefaultRoundTicks / sim.TickRate}
}

// Matches returns the last page of the match list and when it arrived
// (zero before the first).
func (s *Session) Matches() ([]MatchEntry, time.Time) {
	out := make([]MatchEntry, 0, len(s.matches))
	for _, m := range s.matches {
		e := MatchEntry{MatchInfo: m, Joinable: true, Map: DefaultOptions().Map}
		if len(m.Options) > 0 {
			o, err := proto.DecodeOptions(m.Options)
			if err != nil {
				e.Joinable, e.Why, e.Map = false, "another game or version", "?"
			} else {
				e.Map = sim.MapByName(o.Map).Name
			}
		}
		e.Name = CleanName(e.Name)
		if e.Joinable && m.Players >= m.MaxPlayers {
			e.Joinable, e.Why = false, "full"
		}
		out = append(out, e)
	}
	return out, s.listedAt
}

// Busy reports whether a create, join or leave request is waiting for its
// answer.
func (s *Session) Busy() bool { return s.joining || s.leaving }

// LobbyError returns the last lobby failure ("" when none) and forgets it.
func (s *Session) LobbyError() string {
	e := s.lobbyErr
	s.lobbyErr = ""
	return e
}

// CreateMatch asks the server to create a match with the arena's options
// and join it. The session is in the match once InMatch says so.
func (s *Session) CreateMatch(name string, maxPlayers int, opts proto.MatchOptions) {
	if s.Busy() || s.match != net.NoHost {
		return
	}
	maxPlayers = min(max(maxPlayers, 2), sim.MaxPlayers)
	_, err := s.lob.CreateMatch(net.ServerID, rmi.Reliable, name, uint8(maxPlayers), proto.EncodeOptions(opts), s.onJoined)
	s.requested(&s.joining, err)
}

// JoinMatch asks to join match id.
func (s *Session) JoinMatch(id net.HostID) {
	if s.Busy() || s.match != net.NoHost {
		return
	}
	_, err := s.lob.JoinMatch(net.ServerID, rmi.Reliable, uint32(id), s.onJoined)
	s.requested(&s.joining, err)
}

// QuickJoin asks to join the fullest open match, or a new one.
func (s *Session) QuickJoin() {
	if s.Busy() || s.match != net.NoHost {
		return
	}
	_, err := s.lob.QuickJoin(net.ServerID, rmi.Reliable, s.onJoined)
	s.requested(&s.joining, err)
}

// LeaveMatch asks to leave the current match.
func (s *Session) LeaveMatch() {
	if s.match == net.NoHost || s.leaving {
		return
	}
	_, err := s.lob.LeaveMatch(net.ServerID, rmi.Reliable, s.onLeft)
	s.requested(&s.leaving, err)
}

// Map returns the current match's map (nil outside a match).
func (s *Session) Map() *sim.Map { return s.m }

// InMatch returns the match the session plays in (NoHost when none).
func (s *Session) InMatch() net.HostID { return s.match }

// MatchOptions returns the current match's options.
func (s *Session) MatchOptions() proto.MatchOptions { return s.opts }

var errNotServer = errors.New("lobby call from a peer")

// requested records a request sent (busy) or why it could not be.
func (s *Session) requested(busy *bool, err error) {
	*busy = err == nil
	if err != nil {
		s.lobbyErr = err.Error()
	}
}

// onJoined is the answer to a create, join or quick join (from the server:
// the runtime matches responses to the host asked).
func (s *Session) onJoined(result lobby.Result, match uint32, err error) {
	s.joining = false
	switch {
	case err != nil:
		s.lobbyErr = "Could not join: " + lobbyFailure(err)
	case result != lobby.ResultOK:
		s.lobbyErr = "Could not join: " + result.Text()
	default:
		s.enterMatch(net.HostID(match))
	}
}

func (s *Session) onLeft(result lobby.Result, err error) {
	s.leaving = false
	if errors.Is(err, rmi.ErrRateLimited) {
		s.lobbyErr = "Could not leave: " + lobbyFailure(err) // still in the match: try again
		return
	}
	s.leftMatch()
}

// lobbyFailure says why a lobby request failed, for a player.
func lobbyFailure(err error) string {
	switch {
	case errors.Is(err, rmi.ErrRateLimited):
		return lobby.ResultRateLimited.Text()
	case errors.Is(err, rmi.ErrTimeout), errors.Is(err, rmi.ErrLinkLost):
		return "no answer from the server"
	}
	return err.Error()
}

// enterMatch starts playing in match id. The engine has already processed
// the member and host events that came before the lobby's answer, so its
// view of the group is complete.
func (s *Session) enterMatch(id net.HostID) {
	opts := DefaultOptions()
	if c := s.client.Custom(id); len(c) > 0 {
		o, err := proto.DecodeOptions(c)
		if err != nil {
			s.lobbyErr = "That match is not an arena match of this version"
			_, err := s.lob.LeaveMatch(net.ServerID, rmi.Reliable, s.onLeft)
			if s.requested(&s.leaving, err); err != nil {
				s.log.Debug("leave request not sent", "error", err)
			}
			return
		}
		opts = o
	}
	s.match = id
	s.opts = opts
	s.m = sim.MapByName(opts.Map)
	s.rules = opts.Rules()
	s.members = s.client.Members(id)
	s.joined = true
	s.host = s.client.GroupHost(id)
	s.seq, s.pending, s.predOK, s.haveLatest = 0, s.pending[:0], false, false
	s.ring = s.ring[:0]
	s.chat = nil // lines of the lobby or an earlier match
	s.log.Info("joined match", "match", id, "members", len(s.members), "host", s.host)
	if err := s.arena.Player_Hello(id, proto.EventCtx, s.cfg.Name, proto.Version); err != nil {
		s.log.Debug("hello", "error", err)
	}
	if s.host == s.me {
		s.becomeHost()
	}
}

// leftMatch forgets the match.
func (s *Session) leftMatch() {
	if s.match == net.NoHost {
		return
	}
	s.log.Info("left match", "match", s.match)
	s.match, s.host, s.members, s.joined = net.NoHost, net.NoHost, nil, false
	s.world, s.queues = nil, nil
	s.haveLatest, s.predOK = false, false
	s.ring, s.bullets, s.pending, s.waiting = s.ring[:0], nil, s.pending[:0], nil
	for id := range s.names {
		if id != s.me {
			delete(s.names, id)
		}
	}
	clear(s.relayed)
}

func (s *Session) memberJoined(m net.HostID) {
	if !s.joined {
		return
	}
	s.members = s.client.Members(s.match)
	if m == net.ServerID || m == s.me {
		return
	}
	// A newcomer: tell it who we are.
	if err := s.arena.Player_Hello(m, proto.EventCtx, s.cfg.Name, proto.Version); err != nil {
		s.log.Debug("hello", "to", m, "error", err)
	}
	if s.world != nil {
		if _, err := s.world.AddPlayer(sim.PlayerID(m)); err != nil {
			s.log.Warn("no room for a new player", "player", m, "error", err)
		}
		s.queueFor(sim.PlayerID(m))
	}
}

func (s *Session) memberLeft(m net.HostID) {
	if m == s.me {
		s.leftMatch()
		return
	}
	s.members = s.client.Members(s.match)
	if m == net.ServerID {
		return
	}
	if _, ok := s.names[m]; ok {
		s.notice(Info, "%s left", s.PlayerName(m))
	}
	delete(s.names, m)
	delete(s.users, m)
	delete(s.relayed, m)
	s.chatLimit.Forget(m)
	if s.world != nil {
		s.world.RemovePlayer(sim.PlayerID(m))
		delete(s.queues, sim.PlayerID(m))
	}
}

func (s *Session) onHello(info rmi.CallInfo, name string, version uint8) error {
	if info.From == net.ServerID || s.match == net.NoHost {
		return nil
	}
	_, known := s.names[info.From]
	s.names[info.From] = CleanName(name)
	if !known {
		s.notice(Info, "%s joined", s.names[info.From])
		// Our hello to it may have come before it entered the match
		// (the peer's memberJoined hello can beat the lobby's answer to
		// its join), and it dropped it: answer its first hello with
		// ours, so that whichever hello gets through, both learn.
		if err := s.arena.Player_Hello(info.From, proto.EventCtx, s.cfg.Name, proto.Version); err != nil {
			s.log.Debug("hello back", "to", info.From, "error", err)
		}
	}
	if version != proto.Version {
		s.notice(Warn, "%s runs another version of the arena", s.names[info.From])
	}
	return nil
}
