package game

import (
	"fmt"
	"image/color"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/inpututil"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

// browseScene lists the server's matches; click one to join.
type browseScene struct {
	asked   time.Time
	matches []netplay.MatchEntry
	listed  time.Time
	page    netplay.MatchPage
	joining bool
	bots    int
	chat    chatBox // the server's lobby chat
}

func newBrowse(g *Game) *browseScene {
	return &browseScene{}
}

func (b *browseScene) rows(g *Game) (list rect, row func(i int) rect, back, create, quick, chat rect) {
	w, h := float64(g.w), float64(g.h)
	chatH := min(150, max(h-500, 60))
	list = rect{w/2 - 320, 120, 640, h - 270 - chatH}
	row = func(i int) rect { return rect{list.x + 10, list.y + 44 + float64(i)*40, list.w - 20, 36} }
	// The last row is the page buttons' when the list has more than a page.
	chat = rect{list.x, list.y + list.h + 10, list.w, chatH}
	y := chat.y + chat.h + 16
	back = rect{list.x, y, 150, 44}
	create = rect{list.x + list.w - 310, y, 150, 44}
	quick = rect{list.x + list.w - 150, y, 150, 44}
	return
}

// pageRows is how many matches fit in the list, a row left for the page
// buttons.
func pageRows(list rect) int { return max(int((list.h-44)/40)-1, 1) }

// pageButtons are the previous and next page buttons under the list's rows.
func pageButtons(list rect) (prev, next rect) {
	y := list.y + 44 + float64(pageRows(list))*40
	return rect{list.x + 10, y, 110, 32}, rect{list.x + list.w - 120, y, 110, 32}
}

func (b *browseScene) update(g *Game) error {
	s := g.conn.sess
	s.Tick(sim.Input{})
	if !s.Connected() {
		g.disconnect(fmt.Sprintf("Disconnected: %v", s.Err()))
		return nil
	}
	if e := s.LobbyError(); e != "" {
		g.menu.message = e
		b.joining = false
	}
	list, row, back, create, quick, _ := b.rows(g)
	s.SetPageSize(pageRows(list))
	if time.Since(b.asked) > 2*time.Second && !b.joining {
		b.asked = time.Now()
		s.RefreshMatches()
	}
	b.matches, b.listed = s.Matches()
	b.page = s.MatchPage()
	for _, l := range s.Chat() {
		b.chat.add(l, g.frame)
	}
	if b.chat.keys(ebitenKeys{}, s.SayLobby, g.frame) {
		return nil // Escape and the rest are the chat's
	}
	prev, next := pageButtons(list)
	switch {
	case (clicked(prev) || inpututil.IsKeyJustPressed(ebiten.KeyPageUp)) && b.page.Index > 0:
		s.PrevPage()
		b.asked = time.Now()
	case (clicked(next) || inpututil.IsKeyJustPressed(ebiten.KeyPageDown)) && b.page.More:
		s.NextPage()
		b.asked = time.Now()
	}
	switch {
	case clicked(back) || inpututil.IsKeyJustPressed(ebiten.KeyEscape):
		g.disconnect("")
		return nil
	case clicked(create):
		s.CreateMatch(g.opt.Name+"'s arena", sim.MaxPlayers, g.matchOptions())
		b.joining, b.bots = true, g.opt.Bots
	case clicked(quick):
		s.QuickJoin()
		b.joining = true
	}
	for i, m := range b.matches {
		if r := row(i); i < pageRows(list) && clicked(r) && m.Joinable && !b.joining {
			s.JoinMatch(net.HostID(m.ID))
			b.joining = true
		}
	}
	if m := s.InMatch(); m != net.NoHost {
		if b.bots > 0 {
			g.conn.bots = netplay.NewBots(g.opt.Logger)
			g.conn.bots.Add(b.bots, g.conn.addr, m, netplay.BotConfig{Seed: uint64(time.Now().UnixNano())})
		}
		g.scene = newPlay(g, s)
	}
	return nil
}

func (b *browseScene) draw(g *Game, dst *ebiten.Image) {
	g.menu.drawBackground(g, dst)
	w := float64(g.w)
	list, row, back, create, quick, chat := b.rows(g)
	drawTextShadow(dst, "MATCHES", g.res.title, w/2, 40, colAccent, center)
	drawTextShadow(dst, fmt.Sprintf("on %v", g.conn.addr), g.res.normal, w/2, 84, colDim, center)
	panel(dst, list)
	cols := []float64{list.x + 20, list.x + 330, list.x + 420, list.x + 520}
	for i, h := range []string{"MATCH", "MAP", "PLAYERS", "ID"} {
		drawText(dst, h, g.res.small, cols[i], list.y+14, colDim, left)
	}
	if len(b.matches) == 0 {
		msg := "No match yet: host one, or quick-join to create one."
		if b.listed.IsZero() {
			msg = "Asking the server…"
		}
		drawText(dst, msg, g.res.normal, w/2, list.y+90, colDim, center)
	}
	for i, m := range b.matches {
		r := row(i)
		if i >= pageRows(list) {
			break
		}
		bg := color.RGBA{24, 29, 42, 230}
		if hovered(r) && m.Joinable {
			bg = color.RGBA{40, 50, 74, 250}
		}
		fillRect(dst, r, bg)
		fg := colText
		if !m.Joinable {
			fg = colDim
		}
		name := m.Name
		if !m.Joinable {
			name += "  (" + m.Why + ")"
		}
		drawText(dst, name, g.res.normal, cols[0], r.y+8, fg, left)
		drawText(dst, m.Map, g.res.normal, cols[1], r.y+8, fg, left)
		drawText(dst, fmt.Sprintf("%d / %d", m.Players, m.MaxPlayers), g.res.normal, cols[2], r.y+8, fg, left)
		drawText(dst, fmt.Sprint(m.ID), g.res.normal, cols[3], r.y+8, fg, left)
	}
	if b.page.Index > 0 || b.page.More {
		prev, next := pageButtons(list)
		g.button(dst, prev, "< Prev", false, b.page.Index > 0)
		g.button(dst, next, "Next >", false, b.page.More)
		drawText(dst, fmt.Sprintf("page %d · %d matches", b.page.Index+1, b.page.Total), g.res.small, w/2, prev.y+8, colDim, center)
	}
	drawChatBox(g, dst, &b.chat, chat, true)
	g.button(dst, back, "Back", false, true)
	g.button(dst, create, "Host match", false, !b.joining)
	g.button(dst, quick, "Quick join", true, !b.joining)
	if b.joining {
		drawText(dst, "Joining…", g.res.normal, w/2, list.y+list.h+28, colText, center)
	}
}
