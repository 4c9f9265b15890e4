package game

import (
	"errors"
	"fmt"
	"image/color"
	"strings"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/inpututil"
	"github.com/hajimehoshi/ebiten/v2/text/v2"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/chat"
)

// keyboard is what a match reads of the keyboard and mouse buttons:
// Ebitengine's (ebitenKeys), or a script in tests.
type keyboard interface {
	pressed(k ebiten.Key) bool
	justPressed(k ebiten.Key) bool
	// repeat reports a press, repeating while the key is held.
	repeat(k ebiten.Key) bool
	// chars appends the characters typed this tick.
	chars(dst []rune) []rune
	mousePressed(b ebiten.MouseButton) bool
}

type ebitenKeys struct{}

func (ebitenKeys) pressed(k ebiten.Key) bool     { return ebiten.IsKeyPressed(k) }
func (ebitenKeys) justPressed(k ebiten.Key) bool { return inpututil.IsKeyJustPressed(k) }
func (ebitenKeys) repeat(k ebiten.Key) bool      { return repeat(k) }
func (ebitenKeys) chars(dst []rune) []rune       { return ebiten.AppendInputChars(dst) }
func (ebitenKeys) mousePressed(b ebiten.MouseButton) bool {
	return ebiten.IsMouseButtonPressed(b)
}

// Chat box limits.
const (
	// chatShowTicks is how long a line stays when the chat line is
	// closed; it fades out over the last chatFadeTicks.
	chatShowTicks = 12 * sim.TickRate
	chatFadeTicks = 2 * sim.TickRate
	// chatKeep is how many lines the box remembers.
	chatKeep = 40
	// chatMaxTyped bounds the chat line being typed. It is longer than a
	// message may be: a longer line is refused with the reason when sent,
	// never cut without a word.
	chatMaxTyped = 2 * chat.MaxRunes
)

// chatBox is the match's chat: the lines received, fading, and the line
// the player types (Enter opens it, Enter sends, Escape cancels). While it
// is open every key is the chat's: the player does not move.
type chatBox struct {
	lines []chatEntry // oldest first
	open  bool
	text  []rune
	edits int // changes of text, for typed
	buf   []rune
	drawn []chatRow // drawChatBox's rows, kept between frames
	typed chatLineText
}

// chatLineText is what drawChatLine shows of text, made again only when
// text (edits) or the room for it changes. The zero value is right for the
// empty line.
type chatLineText struct {
	edits       int
	room        float64
	count       string  // "n/limit" near the limit, or ""
	countW      float64 // its width and the gap before it
	tail, caret string  // the end of text that fits, and it with the caret
}

type chatEntry struct {
	line  netplay.ChatLine
	frame int
	// rows is the line wrapped at width wrapW, after pre (its prefix,
	// preW wide).
	rows  []string
	wrapW float64
	pre   string
	preW  float64
}

// chatRow is a row drawChatBox draws.
type chatRow struct {
	e     *chatEntry
	first bool
	text  string
	alpha float64
}

// chatAction is what the chat did with a tick's keys.
type chatAction int

const (
	chatIdle   chatAction = iota // closed: the keys are the game's
	chatTyping                   // open (or just opened or closed): the keys were the chat's
	chatSend                     // Enter on a line: send it
)

func enterPressed(kb keyboard) bool {
	return kb.justPressed(ebiten.KeyEnter) || kb.justPressed(ebiten.KeyNumpadEnter)
}

// update takes a tick's keys. On chatSend the line is in c.text: the
// caller sends it and closes the chat (or keeps it open to fix the line).
func (c *chatBox) update(kb keyboard) chatAction {
	alt := kb.pressed(ebiten.KeyAlt) // Alt+Enter is full screen
	if !c.open {
		if enterPressed(kb) && !alt {
			c.open, c.text = true, c.text[:0]
			c.edits++
			c.buf = kb.chars(c.buf[:0]) // typed with Enter: not part of the line
			return chatTyping
		}
		return chatIdle
	}
	if kb.justPressed(ebiten.KeyEscape) {
		c.close()
		return chatTyping
	}
	if enterPressed(kb) && !alt {
		return chatSend
	}
	c.buf = kb.chars(c.buf[:0])
	for _, r := range c.buf {
		if r >= ' ' && r != 0x7f && len(c.text) < chatMaxTyped {
			c.text = append(c.text, r)
			c.edits++
		}
	}
	if kb.repeat(ebiten.KeyBackspace) && len(c.text) > 0 {
		c.text = c.text[:len(c.text)-1]
		c.edits++
	}
	return chatTyping
}

func (c *chatBox) close() {
	c.open, c.text = false, c.text[:0]
	c.edits++
}

// add remembers a line shown at frame.
func (c *chatBox) add(l netplay.ChatLine, frame int) {
	if len(c.lines) >= chatKeep {
		c.lines = append(c.lines[:0], c.lines[1:]...)
	}
	c.lines = append(c.lines, chatEntry{line: l, frame: frame})
}

// note adds a line from the game itself (a refused line).
func (c *chatBox) note(text string, frame int) {
	c.add(netplay.ChatLine{Slot: -1, Text: text, Note: true}, frame)
}

// chatKeys gives the tick's keys to the chat first. It reports whether
// they were the chat's (the game must then ignore them).
func (p *playScene) chatKeys(g *Game) bool {
	return !p.paused && p.chat.keys(p.kb, p.sess.Say, g.frame)
}

// keys takes a tick's keys and sends a line the player enters with say
// (see sent). It reports whether the keys were the chat's.
func (c *chatBox) keys(kb keyboard, say func(string) error, frame int) bool {
	switch c.update(kb) {
	case chatIdle:
		return false
	case chatSend:
		c.sent(say(string(c.text)), frame)
	case chatTyping:
		// The chat is open: the keys went into its line.
	}
	return true
}

// sent closes the chat line after a send, or keeps it with the reason
// the line was refused (err).
func (c *chatBox) sent(err error, frame int) {
	var long *chat.TooLongError
	switch {
	case err == nil, errors.Is(err, chat.ErrEmpty):
		c.close()
	case errors.As(err, &long):
		c.note(fmt.Sprintf("Not sent: %d characters, the limit is %d — shorten it", long.Runes, long.Limit), frame)
	default:
		c.note("Not sent: "+err.Error(), frame)
	}
}

// wrap cuts s into rows no wider than width (first row narrower by
// indent), at spaces when it can.
func wrap(s string, width, indent float64, measure func(string) float64) []string {
	var rows []string
	avail := width - indent
	for s != "" {
		if measure(s) <= avail {
			rows = append(rows, s)
			break
		}
		// The longest prefix that fits, at a space if there is one.
		rs := []rune(s)
		lo, hi := 1, len(rs) // rs[:lo] fits (or is one rune), rs[:hi] does not
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if measure(string(rs[:mid])) <= avail {
				lo = mid
			} else {
				hi = mid
			}
		}
		cut := lo
		if sp := strings.LastIndexByte(string(rs[:lo+1]), ' '); sp > 0 {
			cut = len([]rune(string(rs[:lo+1])[:sp]))
		}
		rows = append(rows, strings.TrimRight(string(rs[:cut]), " "))
		s = strings.TrimLeft(string(rs[cut:]), " ")
		avail = width
	}
	return rows
}

// chatRect is where the chat box goes: bottom left, above the network
// line, below the network panel (of peers rows) when it is open.
func (p *playScene) chatRect(g *Game, peers int) rect {
	w, h := float64(g.w), float64(g.h)
	top := 108.0 // under the health box
	if p.showNet {
		nb := netBox(g, peers)
		top = nb.y + nb.h + 8
	}
	bottom := h - 44
	return rect{16, top, min(480, w/2-32), max(bottom-top, 0)}
}

// drawChat draws the match's chat box, beside a network panel of peers
// rows.
func (p *playScene) drawChat(g *Game, dst *ebiten.Image, peers int) {
	drawChatBox(g, dst, &p.chat, p.chatRect(g, peers), false)
}

// drawChatBox draws a chat box at the bottom of area: recent lines fading
// out, or, while the player types (or always when fixed), the last lines
// on a panel and the chat line.
func drawChatBox(g *Game, dst *ebiten.Image, c *chatBox, area rect, fixed bool) {
	const rowH = 19.0
	panelled := c.open || fixed
	face := g.res.small
	measure := func(s string) float64 { return textWidth(s, face) }
	bottom := area.y + area.h
	if c.open {
		bottom -= 30 // the chat line
	}
	maxRows := int((bottom - area.y) / rowH)
	if fixed && !c.open {
		maxRows-- // the header
	}
	if !panelled {
		maxRows = min(maxRows, 7)
	}
	// Rows to draw, newest first.
	rows := c.drawn[:0]
	for i := len(c.lines) - 1; i >= 0 && len(rows) < maxRows; i-- {
		e := &c.lines[i]
		age := g.frame - e.frame
		alpha := 1.0
		if !panelled {
			if age > chatShowTicks {
				break
			}
			alpha = min(1, float64(chatShowTicks-age)/chatFadeTicks)
		}
		if e.rows == nil || e.wrapW != area.w {
			e.pre = prefix(e.line)
			e.preW = 0
			if e.pre != "" {
				e.preW = measure(e.pre)
			}
			e.wrapW = area.w
			e.rows = wrap(e.line.Text, area.w-20, e.preW, measure)
		}
		for j := len(e.rows) - 1; j >= 0 && len(rows) < maxRows; j-- {
			rows = append(rows, chatRow{e: e, first: j == 0, text: e.rows[j], alpha: alpha})
		}
	}
	c.drawn = rows
	if len(rows) == 0 && !panelled {
		return
	}
	if fixed {
		panel(dst, area)
		if !c.open {
			drawText(dst, "LOBBY CHAT · Enter to talk to everyone on this server", face, area.x+10, area.y+6, colDim, left)
		}
	} else if c.open {
		top := bottom - rowH*float64(len(rows)) - 8
		panel(dst, rect{area.x, top, area.w, area.y + area.h - top})
	}
	y := bottom - rowH
	if fixed && !c.open {
		y -= 4
	}
	for _, r := range rows {
		x := area.x + 10
		if !panelled {
			tw := textWidth(r.text, face) + 20
			if r.first {
				tw += r.e.preW
			}
			fillRect(dst, rect{area.x, y - 1, min(tw, area.w), rowH}, color.RGBA{10, 12, 18, uint8(170 * r.alpha)})
		}
		l := r.e.line
		textCol := withAlpha(colText, r.alpha)
		if l.Note {
			textCol = withAlpha(colWarn, r.alpha)
		}
		if r.first {
			if pre := r.e.pre; pre != "" {
				nc := colText
				switch {
				case l.Slot >= 0:
					nc = slotColor(uint8(l.Slot))
				case l.Own:
					nc = colAccent
				case l.Lobby:
					nc = colNet
				}
				drawText(dst, pre, face, x, y, withAlpha(nc, r.alpha), left)
				x += r.e.preW
			}
		} else {
			x += 12
		}
		drawText(dst, r.text, face, x, y, textCol, left)
		y -= rowH
	}
	if c.open {
		drawChatLine(g, dst, c, rect{area.x + 6, bottom + 2, area.w - 12, 24})
	}
}

// drawChatLine draws the line being typed, its tail when it is long, and
// the count when it nears the limit.
func drawChatLine(g *Game, dst *ebiten.Image, c *chatBox, r rect) {
	fillRect(dst, r, color.RGBA{8, 10, 16, 245})
	strokeRect(dst, r, 1.5, colNet)
	face := g.res.small
	n := len(c.text)
	label := "Say:"
	x := r.x + 16 + textWidth(label, face)
	l := c.lineText(face, r.x+r.w-8-x)
	if l.count != "" {
		countCol := colDim
		if n > chat.MaxRunes {
			countCol = colWarn
		}
		drawText(dst, l.count, face, r.x+r.w-8, r.y+4, countCol, right)
	}
	drawText(dst, label, face, r.x+8, r.y+4, colNet, left)
	s := l.tail
	if (g.frame/30)%2 == 0 {
		s = l.caret
	}
	drawText(dst, s, face, x, r.y+4, colText, left)
	if n == 0 {
		drawText(dst, "Enter send · Esc cancel", face, r.x+r.w-8, r.y+4, colDim, right)
	}
}

// lineText returns what drawChatLine shows of the line typed, in room
// pixels (the count's included): made again only when the line or the room
// changes.
func (c *chatBox) lineText(face text.Face, room float64) *chatLineText {
	l := &c.typed
	if l.edits == c.edits && l.room == room {
		return l
	}
	*l = chatLineText{edits: c.edits, room: room}
	if n := len(c.text); n > chat.MaxRunes-40 {
		l.count = fmt.Sprintf("%d/%d", n, chat.MaxRunes)
		l.countW = textWidth(l.count, face) + 12
	}
	t := c.text
	for len(t) > 0 && textWidth(string(t), face) > room-l.countW {
		t = t[min(len(t), 8):]
	}
	l.tail = string(t)
	l.caret = l.tail + "|"
	return l
}

// prefix is what comes before a line's text: the sender's name.
func prefix(l netplay.ChatLine) string {
	switch {
	case l.Note:
		return ""
	case l.Own:
		return l.Name + " (you): "
	}
	return l.Name + ": "
}

func withAlpha(c color.RGBA, a float64) color.RGBA {
	k := min(max(a, 0), 1)
	return color.RGBA{uint8(float64(c.R) * k), uint8(float64(c.G) * k), uint8(float64(c.B) * k), uint8(float64(c.A) * k)}
}
