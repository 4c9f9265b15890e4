package netplay

import (
	"errors"
	"fmt"
	"time"

	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
)

// The match chat: a member multicasts Player_Chat to the group, so a line
// reaches every other member whoever is host. Every line is untrusted:
// receivers clean it (engine/chat.Clean) and rate-limit each sender
// (engine/chat.Limiter); the sender cleans it too, so that a refused line
// is refused at once with a reason instead of vanishing on the way.

// ChatLine is one line of the chat box: a player's line, or a note from
// the session about the chat (a refused or hidden line).
type ChatLine struct {
	// From is the sender (the session's own ID for own lines and notes).
	From net.HostID
	// Name is the sender's name, cleaned ("" for notes).
	Name string
	// Slot is the sender's slot in the match when the line arrived (its
	// colour), or -1 when the sender has no player.
	Slot int
	// Text is the line, cleaned.
	Text string
	// Own: the player's own line. Note: a note from the session, not a
	// player's line.
	Own, Note bool
	// Lobby: a line of the match server's lobby chat (the match list's
	// chat box), not of the match.
	Lobby bool
}

// Errors of Say (besides engine/chat's ErrEmpty and *TooLongError).
var (
	// ErrNotInMatch: there is no match to talk to.
	ErrNotInMatch = errors.New("not in a match")
	// ErrTooFast: the player is typing faster than the others would show
	// the lines (ownBurst lines, then one a second).
	ErrTooFast = errors.New("too fast: the others would hide that line, wait a moment")
)

// ownBurst is how many lines a player may send at once: one less than the
// receivers' burst (chat.LimiterConfig's default, 5), so that a line
// delayed on the way and arriving together with the next still shows.
const ownBurst = 4

// maxChatLines bounds the lines waiting for Chat.
const maxChatLines = 64

// Say sends a line to the match chat. The line is cleaned first
// (engine/chat.Clean): a line that is empty, too long or too fast is not
// sent and Say returns why (chat.ErrEmpty, a *chat.TooLongError with the
// figures, ErrTooFast), ErrNotInMatch outside a match. A line sent is
// also added to Chat as the player's own.
func (s *Session) Say(text string) error {
	clean, err := s.ownLine(text, true)
	if err != nil {
		return err
	}
	if err := s.arena.Player_Chat(s.match, proto.ChatCtx, clean); err != nil {
		return err
	}
	s.counts.ChatSent++
	s.addChat(ChatLine{From: s.me, Name: s.cfg.Name, Slot: s.slotOf(s.me), Text: clean, Own: true})
	return nil
}

// Chat returns and forgets the chat lines since the last call, oldest
// first.
func (s *Session) Chat() []ChatLine {
	c := s.chat
	s.chat = nil
	return c
}

func (s *Session) addChat(l ChatLine) {
	if len(s.chat) >= maxChatLines {
		copy(s.chat, s.chat[1:])
		s.chat = s.chat[:maxChatLines-1]
	}
	s.chat = append(s.chat, l)
}

func (s *Session) chatNote(format string, args ...any) {
	s.addChat(ChatLine{From: s.me, Slot: -1, Text: fmt.Sprintf(format, args...), Note: true})
}

// slotOf returns id's slot in the match, or -1.
func (s *Session) slotOf(id net.HostID) int {
	var p *sim.Player
	switch {
	case s.world != nil:
		p = s.world.Player(sim.PlayerID(id))
	case s.haveLatest:
		p = s.latest.Player(sim.PlayerID(id))
	}
	if p == nil {
		return -1
	}
	return int(p.Slot)
}

// isMember reports whether id is another player of the match.
func (s *Session) isMember(id net.HostID) bool {
	if id == net.ServerID || id == s.me || s.match == net.NoHost {
		return false
	}
	for _, m := range s.members {
		if m == id {
			return true
		}
	}
	// A member's calls may come before the server's news of its join.
	_, named := s.names[id]
	return named
}

// onChat shows a line from another member, after engine/chat's text rules
// and the sender's rate limit.
func (s *Session) onChat(info rmi.CallInfo, text string) error {
	if !s.isMember(info.From) {
		return nil // not from a player of this match
	}
	clean, err := chat.Clean(text)
	if err != nil {
		s.counts.ChatRefused++
		return nil // empty or too long: only a modified client sends that
	}
	at := info.Received
	if at.IsZero() {
		at = time.Now()
	}
	v := s.chatLimit.Allow(info.From, at)
	if !v.Allow {
		s.counts.ChatDropped++
		if v.FirstDrop {
			s.chatNote("%s is sending too fast: hiding their lines for a moment", s.PlayerName(info.From))
		}
		return nil
	}
	if v.Dropped > 0 {
		s.chatNote("%d lines from %s were hidden", v.Dropped, s.PlayerName(info.From))
	}
	s.counts.ChatReceived++
	s.addChat(ChatLine{From: info.From, Name: s.PlayerName(info.From), Slot: s.slotOf(info.From), Text: clean})
	return nil
}

// SayLobby sends a line to the match server's lobby chat: everyone
// connected to the server gets it, this player too (the line comes back
// as a ChatLine with Lobby set, and Own). Lines show the name each player
// gave the server (their ID when there is none). The rules are Say's; the
// server applies them again.
func (s *Session) SayLobby(text string) error {
	clean, err := s.ownLine(text, false)
	if err != nil {
		return err
	}
	return s.lob.Chat(net.ServerID, rmi.Reliable, clean)
}

// ownLine applies the rules of Say and SayLobby to a line of the player's:
// engine/chat's Clean, a match when inMatch, then the player's own pace.
func (s *Session) ownLine(text string, inMatch bool) (string, error) {
	clean, err := chat.Clean(text)
	switch {
	case err != nil:
		return "", err
	case inMatch && s.match == net.NoHost:
		return "", ErrNotInMatch
	case !s.ownPace.Allow(s.me, time.Now()).Allow:
		return "", ErrTooFast
	}
	return clean, nil
}

// onLobbyChat shows a lobby line, outside a match only (the match has its
// own chat).
func (s *Session) onLobbyChat(info rmi.CallInfo, from uint32, name, text string) error {
	if info.From != net.ServerID {
		return errNotServer
	}
	if s.match != net.NoHost {
		return nil
	}
	clean, err := chat.Clean(text)
	if err != nil {
		s.counts.ChatRefused++
		return nil
	}
	id := net.HostID(from)
	l := ChatLine{From: id, Name: chat.CleanName(name), Slot: -1, Text: clean, Lobby: true}
	switch {
	case id == s.me:
		l.Name, l.Own = s.cfg.Name, true
	case l.Name == "":
		l.Name = fmt.Sprintf("#%d", from)
	}
	s.addChat(l)
	return nil
}
