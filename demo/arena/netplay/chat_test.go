package netplay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/demo/arena/proto"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/net"
)

// chatRig is a match of sessions the test ticks itself, collecting every
// chat line each one shows.
type chatRig struct {
	t     *testing.T
	ctx   context.Context
	local *Local
	all   []*Session
	got   map[net.HostID][]ChatLine
}

func newChatRig(t *testing.T, names ...string) *chatRig {
	t.Helper()
	return newRig(t, func(int) Config { return Config{} }, names...)
}

// newRig is newChatRig with each player's Config from cfg(i) (Name and
// Logger are set here).
func newRig(t *testing.T, cfg func(i int) Config, names ...string) *chatRig {
	t.Helper()
	log := testLogger(t)
	local, err := StartLocal("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	r := &chatRig{t: t, ctx: ctx, local: local, got: map[net.HostID][]ChatLine{}}
	for i, name := range names {
		c := cfg(i)
		c.Name, c.Logger = name, log
		s, err := Dial(ctx, local.Addr(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		r.all = append(r.all, s)
	}
	opts := DefaultOptions()
	opts.Map = "Pit"
	host := r.all[0]
	host.CreateMatch("chat", 8, opts)
	r.until("the match is created", func() bool { return host.InMatch() != net.NoHost })
	for _, s := range r.all[1:] {
		s.JoinMatch(host.InMatch())
	}
	// Everyone is in, knows every name and has a snapshot (so slots are
	// known).
	r.until("everyone knows everyone", func() bool {
		for _, s := range r.all {
			if s.InMatch() == net.NoHost || len(s.names) != len(r.all) || s.slotOf(s.me) < 0 {
				return false
			}
		}
		return true
	})
	for _, s := range r.all {
		s.Chat() // joins made no lines; start clean
	}
	clear(r.got)
	return r
}

// tick runs one tick of every session and collects their chat lines.
func (r *chatRig) tick() {
	for _, s := range r.all {
		s.Tick(sim.Input{})
		r.got[s.ID()] = append(r.got[s.ID()], s.Chat()...)
	}
	time.Sleep(5 * time.Millisecond)
}

// until ticks until cond holds.
func (r *chatRig) until(what string, cond func() bool) {
	r.t.Helper()
	for !cond() {
		if r.ctx.Err() != nil {
			r.t.Fatalf("timed out waiting until %s", what)
		}
		for _, s := range r.all {
			if e := s.LobbyError(); e != "" {
				r.t.Fatal(e)
			}
		}
		r.tick()
	}
}

// settle ticks for d, so that duplicates or late lines would show.
func (r *chatRig) settle(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		r.tick()
	}
}

// take returns every line s showed and forgets them.
func (r *chatRig) take(s *Session) []ChatLine {
	l := r.got[s.ID()]
	delete(r.got, s.ID())
	return l
}

func from(lines []ChatLine, sender net.HostID) []ChatLine {
	var out []ChatLine
	for _, l := range lines {
		if l.From == sender && !l.Note {
			out = append(out, l)
		}
	}
	return out
}

func notes(lines []ChatLine) []string {
	var out []string
	for _, l := range lines {
		if l.Note {
			out = append(out, l.Text)
		}
	}
	return out
}

// slot is id's slot in the host's world.
func (r *chatRig) slot(id net.HostID) int {
	for _, s := range r.all {
		if s.world != nil {
			if p := s.world.Player(sim.PlayerID(id)); p != nil {
				return int(p.Slot)
			}
		}
	}
	r.t.Fatalf("no host has player %d", id)
	return -1
}

// expectOnce checks that every session but sender showed text from sender
// exactly once, with its name and colour, and that sender showed it as its
// own.
func (r *chatRig) expectOnce(sender *Session, text string) {
	r.t.Helper()
	r.expect(sender, text, true)
}

// expect is expectOnce, for a line sent with Say (own) or not (the
// sender's session did not see it go: a modified client's call).
func (r *chatRig) expect(sender *Session, text string, own bool) {
	r.t.Helper()
	r.until(fmt.Sprintf("everyone shows %q", text), func() bool {
		for _, s := range r.all {
			if (own || s != sender) && len(from(r.got[s.ID()], sender.ID())) == 0 {
				return false
			}
		}
		return true
	})
	r.settle(300 * time.Millisecond)
	want := r.slot(sender.ID())
	for _, s := range r.all {
		ls := from(r.take(s), sender.ID())
		if !own && s == sender {
			if len(ls) != 0 {
				r.t.Errorf("%s showed its raw call: %+v", s.Name(), ls)
			}
			continue
		}
		if len(ls) != 1 {
			r.t.Errorf("%s showed %d lines from %s, want 1: %+v", s.Name(), len(ls), sender.Name(), ls)
			continue
		}
		l := ls[0]
		if l.Text != text || l.Name != sender.Name() || l.Slot != want || l.Own != (s == sender) {
			r.t.Errorf("%s showed %+v; want %q from %s, slot %d, own %v", s.Name(), l, text, sender.Name(), want, s == sender)
		}
	}
}

// TestChat sends match chat lines between a host and members over
// loopback: each line reaches every other member once, with the sender's
// name and slot (its colour); bad lines are refused at the sender, cleaned
// or refused at receivers; a flooding sender is limited at every receiver
// while the others' lines still arrive; and the chat carries on through a
// host handover.
func TestChat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a match over loopback")
	}
	r := newChatRig(t, "Host", "Ann", "Bob", "Cleo")
	host, ann, bob, cleo := r.all[0], r.all[1], r.all[2], r.all[3]

	// A member's line, and the host's.
	if err := ann.Say("  hello from Ann  "); err != nil {
		t.Fatal(err)
	}
	r.expectOnce(ann, "hello from Ann")
	if err := host.Say("welcome"); err != nil {
		t.Fatal(err)
	}
	r.expectOnce(host, "welcome")

	// Refused at the sender, with the reason: nothing goes out.
	sent := ann.Counters().ChatSent
	err := ann.Say(strings.Repeat("x", chat.MaxRunes+1))
	var long *chat.TooLongError
	if !errors.As(err, &long) || long.Runes != chat.MaxRunes+1 || long.Limit != chat.MaxRunes {
		t.Errorf("overlong line: %v, want a *chat.TooLongError with the figures", err)
	}
	if err := ann.Say(" \t\x00 "); !errors.Is(err, chat.ErrEmpty) {
		t.Errorf("empty line: %v, want chat.ErrEmpty", err)
	}
	if ann.Counters().ChatSent != sent {
		t.Error("a refused line was sent")
	}

	// Control characters are stripped by the sender's Clean...
	if err := ann.Say("red\x1b[31m\x00 text\u202e!"); err != nil {
		t.Fatal(err)
	}
	r.expectOnce(ann, "red[31m text!")
	// ...and by every receiver's, whatever a modified client sends.
	if err := bob.arena.Player_Chat(bob.match, proto.ChatCtx, "\x07bell\r\nand\x7fdel"); err != nil {
		t.Fatal(err)
	}
	r.expect(bob, "bell  anddel", false)

	// Junk from a modified client: refused (and counted) at receivers.
	refused := host.Counters().ChatRefused
	for _, junk := range []string{"", "\x00\x01", strings.Repeat("y", chat.MaxBytes+1), strings.Repeat("z", chat.MaxRunes+1), "\xff\xfe"} {
		if err := bob.arena.Player_Chat(bob.match, proto.ChatCtx, junk); err != nil {
			t.Fatal(err)
		}
	}
	// So is a name no one should see.
	if err := bob.arena.Player_Hello(bob.match, proto.EventCtx, "\u202e\x1b[2J"+strings.Repeat("Bob", 2000), proto.Version); err != nil {
		t.Fatal(err)
	}
	r.until("the junk is refused", func() bool { return host.Counters().ChatRefused >= refused+5 })
	r.settle(200 * time.Millisecond)
	for _, s := range []*Session{host, ann, cleo} {
		if ls := from(r.take(s), bob.ID()); len(ls) != 0 {
			t.Errorf("%s showed junk: %+v", s.Name(), ls)
		}
		if n := s.PlayerName(bob.ID()); n != "[2JBobBobBobBobB" {
			t.Errorf("%s calls Bob %q", s.Name(), n)
		}
	}
	if err := bob.arena.Player_Hello(bob.match, proto.EventCtx, "Bob", proto.Version); err != nil {
		t.Fatal(err)
	}
	r.until("Bob is Bob again", func() bool { return host.PlayerName(bob.ID()) == "Bob" && cleo.PlayerName(bob.ID()) == "Bob" })

	// Cleo floods (a modified client: Say would refuse). Every receiver
	// shows her first lines, hides the rest and says so once; Ann's line
	// in the middle of it arrives everywhere.
	const flood = 40
	for i := range flood {
		if err := cleo.arena.Player_Chat(cleo.match, proto.ChatCtx, fmt.Sprintf("spam %d", i)); err != nil {
			t.Fatal(err)
		}
		if i == flood/2 {
			if err := ann.Say("still here"); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.until("Cleo's flood is over", func() bool {
		for _, s := range []*Session{host, ann, bob} {
			if len(from(r.got[s.ID()], ann.ID())) == 0 || s.Counters().ChatDropped+uint64(len(from(r.got[s.ID()], cleo.ID()))) < flood {
				return false
			}
		}
		return true
	})
	r.settle(300 * time.Millisecond)
	for _, s := range []*Session{host, ann, bob} {
		got := r.take(s)
		shown := len(from(got, cleo.ID()))
		if shown < 5 || shown > 7 || s.Counters().ChatDropped < flood-7 {
			t.Errorf("%s showed %d of Cleo's %d lines and dropped %d; want the burst of 5 (give or take a refill)", s.Name(), shown, flood, s.Counters().ChatDropped)
		}
		if ns := notes(got); len(ns) != 1 || !strings.Contains(ns[0], "Cleo is sending too fast") {
			t.Errorf("%s noted %q, want one note that Cleo is too fast", s.Name(), ns)
		}
		if ls := from(got, ann.ID()); len(ls) != 1 || ls[0].Text != "still here" {
			t.Errorf("%s showed %+v from Ann during the flood", s.Name(), ls)
		}
	}
	if ls := from(r.take(cleo), ann.ID()); len(ls) != 1 {
		t.Errorf("Cleo showed %d lines from Ann", len(ls))
	}

	// The host leaves: the chat goes on among the others.
	if err := host.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	r.all = r.all[1:]
	r.until("a new host", func() bool {
		for _, s := range r.all {
			if s.world != nil {
				return true
			}
		}
		return false
	})
	if err := bob.Say("gg"); err != nil {
		t.Fatal(err)
	}
	r.expectOnce(bob, "gg")

	// Typing faster than receivers show is refused at once.
	var fast error
	for i := 0; i < 10 && fast == nil; i++ {
		fast = ann.Say(fmt.Sprintf("quick %d", i))
	}
	if !errors.Is(fast, ErrTooFast) {
		t.Errorf("ten lines at once: %v, want ErrTooFast", fast)
	}
}

// TestSayOutsideMatch refuses a line when there is no match.
func TestSayOutsideMatch(t *testing.T) {
	local, err := StartLocal("127.0.0.1:0", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	s, err := Dial(t.Context(), local.Addr(), Config{Name: "Solo"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Say("anyone?"); !errors.Is(err, ErrNotInMatch) {
		t.Errorf("Say outside a match: %v", err)
	}
	if len(s.Chat()) != 0 {
		t.Error("a refused line shows")
	}
}

// TestLobbyChat talks in the match server's lobby: a line reaches everyone
// outside a match (the sender too, as its own), not the players in one.
func TestLobbyChat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the embedded server")
	}
	r := newChatRig(t, "Host", "Guest")
	lob, err := Dial(r.ctx, r.local.Addr(), Config{Name: "Lurker"})
	if err != nil {
		t.Fatal(err)
	}
	defer lob.Close()
	other, err := Dial(r.ctx, r.local.Addr(), Config{Name: "Browser"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	r.all = append(r.all, lob, other)
	if err := lob.SayLobby(strings.Repeat("x", chat.MaxRunes+1)); !errors.Is(err, chat.ErrTooLong) {
		t.Errorf("overlong lobby line: %v", err)
	}
	if err := lob.SayLobby("anyone up for\x1b a match?"); err != nil {
		t.Fatal(err)
	}
	r.until("the lobby line arrives", func() bool {
		return len(r.got[lob.ID()]) > 0 && len(r.got[other.ID()]) > 0
	})
	r.settle(300 * time.Millisecond)
	want := ChatLine{From: lob.ID(), Name: "Lurker", Slot: -1, Text: "anyone up for a match?", Lobby: true}
	if got := r.take(other); len(got) != 1 || got[0] != want {
		t.Errorf("Browser showed %+v, want %+v", got, want)
	}
	want.Own = true
	if got := r.take(lob); len(got) != 1 || got[0] != want {
		t.Errorf("Lurker showed %+v, want %+v", got, want)
	}
	for _, s := range r.all[:2] {
		if got := r.take(s); len(got) != 0 {
			t.Errorf("%s in a match showed lobby lines: %+v", s.Name(), got)
		}
	}
}
