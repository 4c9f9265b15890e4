package game

import (
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/hajimehoshi/ebiten/v2"

	"github.com/skein-dev/skein/demo/arena/sim"
)

// script is a keyboard for one tick at a time: the keys held, the keys
// pressed this tick, and the characters typed.
type script struct {
	held, just map[ebiten.Key]bool
	typed      string
	click      bool
}

func (s *script) set(typed string, just []ebiten.Key, held ...ebiten.Key) {
	s.typed, s.just, s.held = typed, map[ebiten.Key]bool{}, map[ebiten.Key]bool{}
	for _, k := range just {
		s.just[k], s.held[k] = true, true
	}
	for _, k := range held {
		s.held[k] = true
	}
}

func (s *script) pressed(k ebiten.Key) bool              { return s.held[k] }
func (s *script) justPressed(k ebiten.Key) bool          { return s.just[k] }
func (s *script) repeat(k ebiten.Key) bool               { return s.just[k] }
func (s *script) chars(dst []rune) []rune                { return append(dst, []rune(s.typed)...) }
func (s *script) mousePressed(b ebiten.MouseButton) bool { return s.click }

// TestChatKeys drives the match's keys without a window: while the chat
// line is open, typing (WASD included) and clicking move and shoot
// nothing, Escape closes the chat without opening the menu, and the keys
// are the game's again afterwards.
func TestChatKeys(t *testing.T) {
	kb := &script{}
	p := &playScene{kb: kb}
	g := &Game{}
	// tick is a match tick's input handling. The game's own keys need a
	// session: they are only reached (p.keys) while the chat is open,
	// when they must return before touching it.
	tick := func() sim.Input {
		if p.chat.open {
			p.keys(g)
		} else {
			p.chatKeys(g)
		}
		return p.input(g)
	}
	moving := sim.Up | sim.Down | sim.Left | sim.Right | sim.Fire

	kb.set("", nil, ebiten.KeyW)
	if in := tick(); in.Buttons != sim.Up {
		t.Fatalf("W with the chat closed: %v", in.Buttons)
	}
	// Alt+Enter is full screen, not chat.
	kb.set("", []ebiten.Key{ebiten.KeyEnter}, ebiten.KeyAlt)
	if tick(); p.chat.open {
		t.Fatal("Alt+Enter opened the chat")
	}
	kb.set("", []ebiten.Key{ebiten.KeyEnter}, ebiten.KeyW)
	if in := tick(); !p.chat.open || in.Buttons&moving != 0 {
		t.Fatalf("Enter: open %v, buttons %v", p.chat.open, in.Buttons)
	}
	for _, k := range []struct {
		key ebiten.Key
		ch  string
	}{{ebiten.KeyW, "w"}, {ebiten.KeyA, "a"}, {ebiten.KeyS, "s"}, {ebiten.KeyD, "d"}, {ebiten.KeySpace, " "}} {
		kb.set(k.ch, []ebiten.Key{k.key}, ebiten.KeyW, ebiten.KeyD)
		kb.click = true
		if in := tick(); in.Buttons&moving != 0 {
			t.Errorf("typing %q moved or shot: %v", k.ch, in.Buttons)
		}
	}
	kb.click = false
	if got := string(p.chat.text); got != "wasd " {
		t.Errorf("typed %q, want %q", got, "wasd ")
	}
	// Control characters never reach the line.
	kb.set("x\x1b\x7f\ty", nil)
	tick()
	if got := string(p.chat.text); got != "wasd xy" {
		t.Errorf("line %q after control characters", got)
	}
	kb.set("", []ebiten.Key{ebiten.KeyBackspace})
	tick()
	if got := string(p.chat.text); got != "wasd x" {
		t.Errorf("Backspace: %q", got)
	}
	// Keys that are the game's do nothing while typing.
	kb.set("n", []ebiten.Key{ebiten.KeyN, ebiten.KeyL, ebiten.KeyTab})
	tick()
	if p.showNet || p.scores || p.lossIdx != 0 {
		t.Error("N, L or Tab reached the game while typing")
	}
	if got := string(p.chat.text); got != "wasd xn" {
		t.Errorf("line %q", got)
	}
	// Escape cancels: no menu, line gone, the keys are the game's again.
	kb.set("", []ebiten.Key{ebiten.KeyEscape}, ebiten.KeyW)
	if tick(); p.chat.open || p.paused || len(p.chat.text) != 0 {
		t.Errorf("Escape: open %v, paused %v, line %q", p.chat.open, p.paused, string(p.chat.text))
	}
	kb.set("", nil, ebiten.KeyW)
	if in := tick(); in.Buttons != sim.Up {
		t.Errorf("W after the chat closed: %v", in.Buttons)
	}
	// Enter on a typed line asks to send it; a long line is kept whole
	// (Say refuses it with the reason, the box does not cut it).
	var c chatBox
	kb.set("", []ebiten.Key{ebiten.KeyEnter})
	c.update(kb)
	long := make([]rune, 300)
	for i := range long {
		long[i] = 'z'
	}
	kb.set(string(long), nil)
	c.update(kb)
	kb.set("", []ebiten.Key{ebiten.KeyNumpadEnter})
	if a := c.update(kb); a != chatSend || len(c.text) != 300 {
		t.Errorf("Enter on a 300-character line: action %v, %d characters", a, len(c.text))
	}
}

func TestWrap(t *testing.T) {
	measure := func(s string) float64 { return 10 * float64(utf8.RuneCountInString(s)) }
	for _, tc := range []struct {
		in            string
		width, indent float64
		want          []string
	}{
		{"short", 100, 0, []string{"short"}},
		{"hello world foo", 60, 0, []string{"hello", "world", "foo"}},
		{"hello world foo", 120, 0, []string{"hello world", "foo"}},
		{"aaaaaaaaaaaaaaa", 60, 0, []string{"aaaaaa", "aaaaaa", "aaa"}},
		{"ab cd ef", 60, 30, []string{"ab", "cd ef"}},
		{"日本語のテキスト", 40, 0, []string{"日本語の", "テキスト"}},
		{"x", 5, 0, []string{"x"}}, // narrower than one character: still progresses
	} {
		if got := wrap(tc.in, tc.width, tc.indent, measure); !slices.Equal(got, tc.want) {
			t.Errorf("wrap(%q, %v, %v) = %q, want %q", tc.in, tc.width, tc.indent, got, tc.want)
		}
	}
}
