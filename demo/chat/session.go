package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/lan"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
)

// How long a line naming a member waits for that member's Hello before it
// is shown with the member's number instead, and how many lines may wait.
const (
	nameWait   = 2 * time.Second
	maxPending = 256
	quitWait   = 3 * time.Second
)

// Why a session ended.
type endReason int

const (
	endQuit endReason = iota // the player quit
	endLost                  // the chat host (or server) went away
	endMove                  // a lone host found an older chat to join
)

type sessionEnd struct {
	why  endReason
	err  error      // endLost: what happened
	move *lan.Entry // endMove: the chat to join
}

// session is one membership of a chat group, seen from one player: it
// turns member events and chat calls into lines on the screen, and typed
// lines into calls. Everything runs on the goroutine that calls run.
type session struct {
	me    string
	cl    *sync.Client
	proxy *ChatProxy
	calls *rmi.Dispatcher
	out   io.Writer
	log   hclog.Logger

	group   net.HostID            // the chat's group, once joined
	joined  bool                  // our own join event has come
	names   map[net.HostID]string // members' names, from their Hello
	limit   *chat.Limiter[net.HostID]
	ownPace *chat.Limiter[net.HostID] // warns when we type faster than others show
	pending []line                    // lines to show, in order

	leave   func() error // asks to leave the group (LAN host or match server)
	leaving time.Time    // when the player asked to quit
	moveTo  *lan.Entry   // where to go once we left
	end     *sessionEnd
}

// line is one line to show. A line that names a member waits (and the
// lines after it) until the member's name is known or nameWait passed.
type line struct {
	who    net.HostID // the member named, or NoHost
	name   string     // the member's name, if known when queued
	at     time.Time
	format string // the member's name (if who is set) is its first argument
	args   []any
}

func newSession(me string, cl *sync.Client, out io.Writer, log hclog.Logger) (*session, error) {
	s := &session{
		me:      me,
		cl:      cl,
		proxy:   NewChatProxy(cl), // a *sync.Client is an rmi.Sender
		calls:   rmi.NewDispatcher(),
		out:     out,
		log:     log.Named("session"),
		names:   map[net.HostID]string{net.ServerID: "the match server"},
		limit:   chat.NewLimiter[net.HostID](chat.LimiterConfig{}),
		ownPace: chat.NewLimiter[net.HostID](chat.LimiterConfig{}),
	}
	// The calls this program answers; Leave is for the host only.
	if err := s.calls.Attach(&ChatStub{Hello: s.onHello, Say: s.onSay}); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	return s, nil
}

// run is the game loop of the chat: it waits for typed lines, network
// events and timers, and handles each on this goroutine.
func (s *session) run(ctx context.Context, in <-chan string, h *host, br *lan.Browser) sessionEnd {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var hostReady <-chan struct{} // events of the embedded server, if we host
	if h != nil {
		hostReady = h.srv.Ready()
	}
	done := ctx.Done()
	for s.end == nil {
		select {
		case <-done: // Ctrl-C: leave as with /quit
			done = nil
			s.quit()
		case text, ok := <-in:
			if !ok {
				in = nil // end of input: leave as with /quit
				s.quit()
				break
			}
			s.command(text)
		case <-s.cl.Ready():
			s.cl.FrameMove(s.handle)
		case <-hostReady:
			h.srv.FrameMove(h.handle)
		case <-tick.C:
			if h != nil {
				s.maybeMove(h, br)
			}
			if !s.leaving.IsZero() && time.Since(s.leaving) > quitWait {
				s.finish(sessionEnd{why: endQuit})
			}
		}
		s.flush(time.Now(), false)
	}
	s.flush(time.Now(), true)
	return *s.end
}

// handle takes one event of the client.
func (s *session) handle(e sync.Event) {
	switch e.Kind {
	case sync.EventMemberJoin:
		if s.group != net.NoHost && e.Group != s.group {
			return // not the chat's group
		}
		s.group = e.Group
		switch {
		case e.Member == s.cl.ID():
			// Our own join comes last, after one for each member already in.
			s.joined = true
			s.names[e.Member] = s.me
			s.show(net.NoHost, "* you joined as %s (%d in chat)", s.me, e.Count)
			s.send(s.proxy.Hello(s.group, rmi.Reliable, s.me))
		case !s.joined:
			s.show(e.Member, "* %s is here")
		default:
			s.show(e.Member, "* %s joined (%d in chat)", e.Count)
			if e.Member != net.ServerID {
				s.send(s.proxy.Hello(e.Member, rmi.Reliable, s.me)) // tell the newcomer who we are
			}
		}
	case sync.EventMemberLeave:
		if e.Group != s.group {
			return
		}
		switch {
		case e.Member == s.cl.ID():
			// Our own leave comes last, after one for each member still in.
			s.show(net.NoHost, "* you left the chat")
			s.finish(sessionEnd{why: endQuit})
		case !s.leaving.IsZero():
			s.show(e.Member, "* parted from %s")
		default:
			s.show(e.Member, "* %s left (%d in chat)", e.Count)
		}
		// The line above holds the name: forget the member.
		s.limit.Forget(e.Member)
		if e.Member != net.ServerID {
			delete(s.names, e.Member)
		}
	case sync.EventMessage:
		if _, err := s.calls.DispatchSyncEvent(e); err != nil {
			// A peer's bad call costs it nothing but this log line.
			s.log.Debug("call dropped", "from", e.Peer, "error", err)
		}
	case sync.EventDisconnected:
		if !s.leaving.IsZero() {
			s.finish(sessionEnd{why: endQuit})
			return
		}
		s.finish(sessionEnd{why: endLost, err: lostReason(e.Err)})
	case sync.EventMemberAway:
		if e.Group == s.group {
			s.show(e.Member, "* %s lost the connection; waiting for them")
		}
	case sync.EventMemberBack:
		if e.Group == s.group {
			s.show(e.Member, "* %s is back")
		}
	case sync.EventAway:
		s.show(net.NoHost, "* connection to the server lost; reconnecting")
	case sync.EventBack:
		s.show(net.NoHost, "* reconnected")
	case sync.EventConnected, sync.EventHostChange, sync.EventRelayStateChange, sync.EventNATType:
		// The chat has no host and shows no path or NAT type: dial
		// already waited for the server.
	}
}

// onHello learns a member's name. The first name counts; a name already
// taken gets the member's number. It may arrive before the member's join
// event (it comes straight from the member, the event from the server).
func (s *session) onHello(info rmi.CallInfo, name string) error {
	if _, known := s.names[info.From]; known || !s.isPeer(info.From) {
		return nil
	}
	name = chat.CleanName(name)
	for id, n := range s.names {
		if n == name && id != info.From {
			name += "#" + info.From.String()
			break
		}
	}
	if name == "" {
		name = "#" + info.From.String()
	}
	s.names[info.From] = name
	return nil
}

// onSay shows a line from a member, after the text rules and the sender's
// rate limit.
func (s *session) onSay(info rmi.CallInfo, text string) error {
	if !s.isPeer(info.From) {
		return nil
	}
	text, err := chat.Clean(text)
	if err != nil {
		return err // too long or empty: only a modified client sends that
	}
	v := s.limit.Allow(info.From, info.Received)
	if v.FirstDrop {
		s.show(info.From, "! %s is sending too fast: hiding their lines for a moment")
	}
	if !v.Allow {
		return nil
	}
	if v.Dropped > 0 {
		s.show(info.From, "! %[2]d lines from %[1]s were hidden", v.Dropped)
	}
	s.show(info.From, "<%s> %s", text)
	return nil
}

// isPeer reports whether id is a peer: the server links two clients only
// when they share a group. (The client may learn of a member from the
// member's own calls before the server's join event arrives.)
func (s *session) isPeer(id net.HostID) bool {
	_, linked := s.cl.Host().LinkStats(id)
	return id != net.ServerID && linked
}

// command handles one typed line.
func (s *session) command(text string) {
	switch strings.TrimSpace(text) {
	case "/quit":
		s.quit()
		return
	case "/who":
		s.who()
		return
	case "/help":
		s.show(net.NoHost, "* commands: /who lists who is here, /quit leaves; anything else is said to everyone")
		return
	}
	if strings.HasPrefix(text, "/") {
		s.show(net.NoHost, "! unknown command %s (try /help)", strings.Fields(text)[0])
		return
	}
	text, err := chat.Clean(text)
	switch {
	case errors.Is(err, chat.ErrEmpty):
		return
	case err != nil:
		s.show(net.NoHost, "! not sent: %v", err)
		return
	case !s.joined || !s.leaving.IsZero():
		s.show(net.NoHost, "! not sent: you are not in the chat")
		return
	}
	if v := s.ownPace.Allow(s.cl.ID(), time.Now()); v.FirstDrop {
		s.show(net.NoHost, "! you are typing faster than the others will show (5 lines, then 1 a second)")
	}
	// One call reaches every other member of the group.
	s.send(s.proxy.Say(s.group, rmi.Reliable, text))
}

// who lists the members, with the path to each and its round-trip time.
func (s *session) who() {
	members := s.cl.Members(s.group)
	s.show(net.NoHost, "* %d in chat:", len(members))
	for _, m := range members {
		var state string
		switch st, ok := s.cl.Host().LinkStats(m); {
		case m == s.cl.ID():
			state = "(you)"
		case m == net.ServerID:
			state = ""
		case !ok:
			state = "connecting"
		case st.Relayed:
			state = "relayed, rtt " + ms(st.RTT)
		default:
			state = "direct, rtt " + ms(st.RTT)
		}
		s.show(m, "*   %s %s", state)
	}
}

func ms(d time.Duration) string {
	if d <= 0 {
		return "not measured yet"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// quit asks to leave the group; the session ends with our own leave event
// (or after quitWait, or when the connection goes).
func (s *session) quit() {
	if !s.leaving.IsZero() {
		return
	}
	s.leaving = time.Now()
	if !s.joined || s.leave == nil {
		s.finish(sessionEnd{why: endQuit})
		return
	}
	if err := s.leave(); err != nil {
		s.finish(sessionEnd{why: endQuit})
	}
}

// maybeMove: a host alone in its chat leaves it for an older one (two
// people who started at the same moment both became hosts).
func (s *session) maybeMove(h *host, br *lan.Browser) {
	if !s.leaving.IsZero() || len(s.cl.Members(s.group)) != 1 {
		return
	}
	for _, e := range br.Entries() {
		if e.Protocol == chatProtocol && e.Instance < h.instance() && e.Players > 0 && e.Players < e.Capacity {
			s.show(net.NoHost, "* %s's chat is on the LAN too: moving there", e.Name)
			s.moveTo = &e
			s.quit()
			return
		}
	}
}

// finish ends the session (the first reason counts).
func (s *session) finish(e sessionEnd) {
	if e.why == endQuit && s.moveTo != nil {
		e = sessionEnd{why: endMove, move: s.moveTo}
	}
	if s.end == nil {
		s.end = &e
	}
}

func (s *session) send(err error) {
	if err != nil {
		s.show(net.NoHost, "! not sent: %v", err)
	}
}

// show queues a line. When who is a member, the member's name, filled in
// when it is known, is the format's first argument.
func (s *session) show(who net.HostID, format string, args ...any) {
	s.pending = append(s.pending, line{who: who, name: s.names[who], at: time.Now(), format: format, args: args})
}

// flush prints the lines that can be printed, in order. With all (or a
// queue over maxPending), lines still waiting for a name get a number.
func (s *session) flush(now time.Time, all bool) {
	for len(s.pending) > 0 {
		l := s.pending[0]
		args := l.args
		if l.who != net.NoHost {
			if l.name == "" {
				l.name = s.names[l.who]
			}
			if l.name == "" {
				if !all && len(s.pending) <= maxPending && now.Sub(l.at) < nameWait {
					return
				}
				l.name = "#" + l.who.String()
			}
			args = append([]any{l.name}, args...)
		}
		fmt.Fprintln(s.out, strings.TrimRight(fmt.Sprintf(l.format, args...), " "))
		s.pending = s.pending[1:]
	}
}

// lostReason says in words why the connection to the host ended.
func lostReason(err error) error {
	var ce *net.CloseError
	switch {
	case errors.Is(err, net.ErrShutdown):
		return errors.New("the chat host closed the chat")
	case errors.Is(err, net.ErrTimeout):
		return errors.New("the chat host stopped answering")
	case errors.As(err, &ce) && errors.Is(err, net.ErrKicked):
		return fmt.Errorf("the chat host removed you: %s", chat.Sanitize(ce.Message))
	}
	return fmt.Errorf("the connection to the chat host ended (%v)", err)
}
