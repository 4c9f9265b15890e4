package game

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hajimehoshi/ebiten/v2"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

func (p *playScene) drawHUD(g *Game, dst *ebiten.Image) {
	w, h := float64(g.w), float64(g.h)
	v := &p.view
	me := v.MeP()

	// Red edges when hurt, and a slow pulse when health is low.
	edge := 0.0
	if age := g.frame - p.hurtAt; age < 20 {
		edge = 0.55 * float64(20-age) / 20
	}
	if me != nil && me.Alive && me.HP <= 40 {
		edge = math.Max(edge, 0.18+0.12*math.Sin(float64(g.frame)/9))
	}
	if edge > 0.01 {
		drawEdges(dst, w, h, edge)
	}

	// Top left: health, score, rank.
	box := rect{16, 16, 260, 78}
	panel(dst, box)
	if me != nil {
		col := slotColor(me.Slot)
		fillRect(dst, rect{box.x, box.y, 4, box.h}, col)
		drawText(dst, p.sess.Name(), g.res.normal, box.x+16, box.y+8, col, left)
		f := float64(me.HP) / sim.MaxHP
		hc := colGood
		if f < 0.35 {
			hc = colWarn
		} else if f < 0.65 {
			hc = colAccent
		}
		bar := rect{box.x + 16, box.y + 34, 160, 14}
		fillRect(dst, bar, color.RGBA{0, 0, 0, 200})
		fillRect(dst, rect{bar.x, bar.y, bar.w * f, bar.h}, hc)
		drawText(dst, fmt.Sprint(me.HP), g.res.big, bar.x+bar.w+12, bar.y-6, colText, left)
		rank := slices.Index(rankOf(v), me.ID) + 1
		drawText(dst, fmt.Sprintf("%d kills · %d deaths · rank %d/%d", me.Kills, me.Deaths, rank, len(v.Players)), g.res.small, box.x+16, box.y+56, colDim, left)
	}

	// Top centre: round and clock.
	secs := int(math.Ceil(float64(v.PhaseTicks) / sim.TickRate))
	clock := fmt.Sprintf("%d:%02d", secs/60, secs%60)
	tc := colText
	if v.Phase == sim.Playing && secs <= 10 {
		tc = colWarn
	}
	tb := rect{w/2 - 70, 12, 140, 52}
	panel(dst, tb)
	drawText(dst, clock, g.res.title, w/2, tb.y+2, tc, center)
	label := fmt.Sprintf("ROUND %d", v.Round)
	if v.Phase == sim.Intermission {
		label = "NEXT ROUND IN"
	}
	drawText(dst, label, g.res.small, w/2, tb.y+tb.h+4, colDim, center)

	// Toasts under the clock.
	y := tb.y + tb.h + 30
	for _, t := range p.toasts {
		age := g.frame - t.frame
		if age > 5*sim.TickRate {
			continue
		}
		a := math.Min(1, float64(5*sim.TickRate-age)/30)
		c := colText
		switch t.kind {
		case netplay.Info:
			// c stays colText.
		case netplay.Network:
			c = colNet
		case netplay.Warn:
			c = colWarn
		case netplay.Good:
			c = colGood
		}
		c.A = uint8(255 * a)
		tw := textWidth(t.text, g.res.normal) + 24
		fillRect(dst, rect{w/2 - tw/2, y, tw, 26}, color.RGBA{10, 12, 18, uint8(200 * a)})
		drawText(dst, t.text, g.res.normal, w/2, y+4, c, center)
		y += 30
	}

	// Top right: kill feed.
	fy := 16.0
	for i := len(p.feed) - 1; i >= 0; i-- {
		f := p.feed[i]
		age := g.frame - f.frame
		if age > 7*sim.TickRate {
			continue
		}
		kw := textWidth(f.kName, g.res.small)
		vw := textWidth(f.vName, g.res.small)
		tw := kw + vw + 44
		x := w - 16 - tw
		fillRect(dst, rect{x, fy, tw, 24}, colPanel)
		drawText(dst, f.kName, g.res.small, x+10, fy+4, slotColor(f.kSlot), left)
		drawText(dst, "»", g.res.normal, x+10+kw+12, fy+2, colDim, center)
		drawText(dst, f.vName, g.res.small, x+kw+34, fy+4, slotColor(f.vSlot), left)
		fy += 28
	}

	// Bottom left: the network in one line.
	p.drawNetLine(g, dst)
	// Bottom right: the minimap.
	p.drawMinimap(g, dst)
	// Help for the first seconds.
	if g.frame < 10*sim.TickRate || time.Since(p.started) < 8*time.Second {
		drawTextShadow(dst, "WASD move · mouse aim · click shoot · Enter chat · Tab scores · N network · L loss · K latency · M sound · Esc menu", g.res.small, w/2, h-56, colDim, center)
	}
}

// drawCenter draws the messages in the middle of the screen: death and
// respawn, spawn protection, round banners.
func (p *playScene) drawCenter(g *Game, dst *ebiten.Image) {
	w, h := float64(g.w), float64(g.h)
	v := &p.view
	me := v.MeP()
	if me != nil && !me.Alive && v.Phase == sim.Playing {
		by := "the arena"
		if p.killedBy != sim.NoPlayer && p.killedBy != me.ID {
			by = p.name(p.killedBy)
		}
		drawTextShadow(dst, "ELIMINATED BY "+by, g.res.title, w/2, h/2-110, colWarn, center)
		drawTextShadow(dst, fmt.Sprintf("respawning in %.1f s", float64(me.Timer)/sim.TickRate), g.res.big, w/2, h/2-66, colText, center)
	} else if me != nil && me.Protected() {
		drawTextShadow(dst, "spawn protection — shoot to drop it", g.res.small, w/2, h/2+60, colDim, center)
	}
	if p.banner != "" && g.frame-p.bannerAt < 4*sim.TickRate {
		drawTextShadow(dst, p.banner, g.res.title, w/2, h*0.28, colAccent, center)
	}

}

func rankOf(v *netplay.View) []sim.PlayerID {
	s := sim.State{Players: v.Players}
	return s.Ranking()
}

func (p *playScene) hostLabel() string {
	v := &p.view
	switch {
	case v.IsHost:
		return "you"
	case v.Host == sim.NoPlayer:
		return "none"
	}
	return p.sess.PlayerName(net.HostID(v.Host))
}

func (p *playScene) drawNetLine(g *Game, dst *ebiten.Image) {
	v := &p.view
	h := float64(g.h)
	path := ""
	if !v.IsHost {
		for _, pe := range p.sess.Peers() {
			if pe.Host {
				path = fmt.Sprintf(" · to host %s %d ms", pathWord(pe.Relayed), pe.RTT.Milliseconds())
			}
		}
	}
	line := fmt.Sprintf("HOST %s%s · %d players · ↑ %.1f ↓ %.1f kB/s", p.hostLabel(), path, len(v.Players), p.rates.upKBs, p.rates.downKBs)
	if c := p.sess.Impair().Conditions(); c.Loss > 0 || c.Delay > 0 {
		line += fmt.Sprintf(" · simulated %.0f%% loss %v", c.Loss*100, c.Delay)
	}
	tw := textWidth(line, g.res.small) + 20
	fillRect(dst, rect{16, h - 36, tw, 24}, colPanel)
	col := colNet
	if v.IsHost {
		col = colAccent
	}
	drawText(dst, line, g.res.small, 26, h-32, col, left)
}

func pathWord(relayed bool) string {
	if relayed {
		return "relayed"
	}
	return "direct"
}

func (p *playScene) drawMinimap(g *Game, dst *ebiten.Image) {
	v := &p.view
	m := v.Map
	sc := 0.085
	mw, mh := float64(m.W)*sc, float64(m.H)*sc
	x0, y0 := float64(g.w)-mw-16, float64(g.h)-mh-16
	fillRect(dst, rect{x0 - 4, y0 - 4, mw + 8, mh + 8}, colPanel)
	fillRect(dst, rect{x0, y0, mw, mh}, color.RGBA{22, 26, 36, 230})
	for _, w := range m.Walls {
		fillRect(dst, rect{x0 + float64(w.Min.X)*sc, y0 + float64(w.Min.Y)*sc, float64(w.W()) * sc, float64(w.H()) * sc}, color.RGBA{90, 100, 126, 255})
	}
	for i, at := range m.Pickups {
		if i < len(v.Pickups) && v.Pickups[i] == 0 {
			fillRect(dst, rect{x0 + float64(at.X)*sc - 2, y0 + float64(at.Y)*sc - 2, 4, 4}, colGood)
		}
	}
	for _, pl := range v.Players {
		if !pl.Alive {
			continue
		}
		r := 2.5
		if pl.ID == v.Me {
			r = 4
		}
		c := slotColor(pl.Slot)
		fillRect(dst, rect{x0 + float64(pl.Pos.X)*sc - r, y0 + float64(pl.Pos.Y)*sc - r, 2 * r, 2 * r}, c)
	}
	// The view's outline.
	cam := &p.cam
	tl := cam.toWorld(0, 0)
	br := cam.toWorld(cam.w, cam.h)
	strokeRect(dst, rect{x0 + math.Max(0, float64(tl.X))*sc, y0 + math.Max(0, float64(tl.Y))*sc,
		(math.Min(float64(m.W), float64(br.X)) - math.Max(0, float64(tl.X))) * sc, (math.Min(float64(m.H), float64(br.Y)) - math.Max(0, float64(tl.Y))) * sc}, 1, color.RGBA{255, 255, 255, 90})
}

func (p *playScene) drawScores(g *Game, dst *ebiten.Image) {
	v := &p.view
	w := float64(g.w)
	ids := rankOf(v)
	rowH := 28.0
	box := rect{w/2 - 300, 110, 600, 70 + rowH*float64(len(ids))}
	panel(dst, box)
	title := "SCOREBOARD"
	if v.Phase == sim.Intermission {
		title = fmt.Sprintf("ROUND %d RESULTS", v.Round)
	}
	drawText(dst, title, g.res.big, box.x+20, box.y+12, colAccent, left)
	drawText(dst, fmt.Sprintf("host: %s", p.hostLabel()), g.res.small, box.x+box.w-20, box.y+18, colDim, right)
	cols := []float64{box.x + 20, box.x + 60, box.x + 330, box.x + 400, box.x + 470, box.x + 580}
	hy := box.y + 46
	for i, hd := range []string{"#", "PLAYER", "KILLS", "DEATHS", "PING"} {
		a := left
		if i >= 2 {
			a = right
		}
		x := cols[i]
		if i >= 2 {
			x = cols[i] + 50
		}
		drawText(dst, hd, g.res.small, x, hy, colDim, a)
	}
	rtts := map[sim.PlayerID]time.Duration{}
	for _, pe := range p.sess.Peers() {
		rtts[sim.PlayerID(pe.ID)] = pe.RTT
	}
	for i, id := range ids {
		pl := findPlayer(v, id)
		if pl == nil {
			continue
		}
		y := hy + 22 + float64(i)*rowH
		if id == v.Me {
			fillRect(dst, rect{box.x + 8, y - 3, box.w - 16, rowH - 2}, color.RGBA{60, 70, 100, 120})
		}
		c := slotColor(pl.Slot)
		drawText(dst, fmt.Sprint(i+1), g.res.normal, cols[0], y, colDim, left)
		fillRect(dst, rect{cols[1], y + 4, 10, 10}, c)
		name := p.name(id)
		drawText(dst, name, g.res.normal, cols[1]+18, y, colText, left)
		if id == v.Host {
			hostBadge(g, dst, cols[1]+26+textWidth(name, g.res.normal), y+2)
		}
		drawText(dst, fmt.Sprint(pl.Kills), g.res.normal, cols[2]+50, y, colText, right)
		drawText(dst, fmt.Sprint(pl.Deaths), g.res.normal, cols[3]+50, y, colText, right)
		ping := "—"
		if r, ok := rtts[id]; ok && id != v.Me {
			ping = fmt.Sprintf("%d ms", r.Milliseconds())
		}
		drawText(dst, ping, g.res.normal, cols[4]+50, y, colDim, right)
	}
}

// drawNet is the network panel: every peer's link, the host, and the
// knobs to make the network worse. peers is p.sess.Peers().
func (p *playScene) drawNet(g *Game, dst *ebiten.Image, peers []netplay.PeerInfo) {
	rowH := 20.0
	box := netBox(g, netRows(peers))
	panel(dst, box)
	x := box.x + 16
	y := box.y + 10
	drawText(dst, "NETWORK", g.res.big, x, y, colNet, left)
	drawText(dst, "N: hide", g.res.small, box.x+box.w-16, y+6, colDim, right)
	y += 34
	snaps := fmt.Sprintf("%.0f snapshots/s in", p.rates.snapsPerSec)
	if p.view.IsHost {
		snaps = fmt.Sprintf("%.0f snapshots/s out", p.rates.snapsOutPerSec)
	}
	if p.rates.fanOutPerSec > 0 {
		snaps += fmt.Sprintf(" · %.0f/s via server fan-out", p.rates.fanOutPerSec)
	}
	drawText(dst, fmt.Sprintf("me #%d · server %d ms · ↑ %.1f kB/s ↓ %.1f kB/s · %s", p.sess.ID(), p.rates.serverRTT.Milliseconds(), p.rates.upKBs, p.rates.downKBs, snaps), g.res.small, x, y, colText, left)
	y += 20
	c := p.sess.Counters()
	drawText(dst, fmt.Sprintf("match %d · host %s · host changes %d · corrections %d · server key %s", p.sess.InMatch(), p.hostLabel(), c.HostChanges, c.Corrections, shortFingerprint(p.sess.ServerKey())), g.res.small, x, y, colDim, left)
	y += 20
	cc := colDim
	if c.ChatDropped+c.ChatRefused > 0 {
		cc = colAccent
	}
	drawText(dst, fmt.Sprintf("chat: %d sent · %d shown · %d hidden (too fast) · %d refused", c.ChatSent, c.ChatReceived, c.ChatDropped, c.ChatRefused), g.res.small, x, y, cc, left)
	y += 20
	nat, natOK := p.sess.NAT()
	drawText(dst, "your NAT: "+netplay.NATLabel(nat, natOK)+netplay.PortMapLabel(p.sess.PortMapping()), g.res.small, x, y, colDim, left)
	y += 26
	cols := []float64{x, x + 160, x + 215, x + 275, x + 375}
	for i, hd := range []string{"PLAYER", "RTT", "JITTER", "LOSS in/out", "PATH"} {
		drawText(dst, hd, g.res.small, cols[i], y, colDim, left)
	}
	y += 20
	for i, pe := range peers {
		if i == p.sel {
			fillRect(dst, rect{box.x + 6, y - 2, box.w - 12, rowH}, color.RGBA{50, 62, 92, 160})
		}
		name := pe.Name
		if pe.User != "" && pe.User != pe.Name {
			// The user name the server knows (the profile's), when it
			// differs from the in-game name.
			name += " @" + pe.User
		}
		if pe.Me {
			name += " (you)"
		}
		col := colText
		if pl := findPlayer(&p.view, sim.PlayerID(pe.ID)); pl != nil {
			col = slotColor(pl.Slot)
		}
		drawText(dst, name, g.res.small, cols[0], y, col, left)
		if pe.Host {
			hostBadge(g, dst, cols[0]+textWidth(name, g.res.small)+8, y+1)
		}
		if pe.Me {
			drawText(dst, "—", g.res.monoSmall, cols[1], y, colDim, left)
		} else {
			drawText(dst, fmt.Sprintf("%d ms", pe.RTT.Milliseconds()), g.res.monoSmall, cols[1], y, colText, left)
			drawText(dst, fmt.Sprintf("%d ms", pe.Jitter.Milliseconds()), g.res.monoSmall, cols[2], y, colText, left)
			drawText(dst, fmt.Sprintf("%2.0f%% / %2.0f%%", pe.LossIn*100, pe.LossOut*100), g.res.monoSmall, cols[3], y, colText, left)
			pc := colGood
			if pe.Relayed {
				pc = colAccent
			}
			drawText(dst, pathWord(pe.Relayed), g.res.small, cols[4], y, pc, left)
		}
		y += rowH
	}
	for _, pe := range peers {
		if !pe.Relayed || pe.Why == "" {
			continue
		}
		// One line per clause, so that the panel stays narrow.
		for i, part := range strings.Split(pe.Why, "; ") {
			if i == 0 {
				part = pe.Name + " is relayed: " + part
			} else {
				part = "    " + part
			}
			drawText(dst, part, g.res.small, x, y, colAccent, left)
			y += rowH
		}
	}
	y += 10
	cond := p.sess.Impair().Conditions()
	st := p.sess.Impair().Stats()
	drawText(dst, fmt.Sprintf("L  simulated loss on what I send: %.0f%%   (dropped %d)", cond.Loss*100, st.Lost), g.res.small, x, y, colText, left)
	y += 20
	drawText(dst, fmt.Sprintf("K  simulated latency: %v ± %v   (queued %d)", cond.Delay, cond.Jitter, st.Queued), g.res.small, x, y, colText, left)
	y += 20
	rc := colText
	msg := "R  force the selected peer onto the relay ( [ ] select )"
	if !p.sess.CanForceRelay() {
		rc = colDim
		msg = "R  force relay: disabled — comes with hole punching (all peers relayed now)"
	}
	drawText(dst, msg, g.res.small, x, y, rc, left)
	if p.relayMsg != "" && g.frame-p.relayAt < 5*sim.TickRate {
		y += 20
		drawText(dst, p.relayMsg, g.res.small, x, y, colAccent, left)
	}
}

func (p *playScene) drawPause(g *Game, dst *ebiten.Image) {
	fillRect(dst, rect{0, 0, float64(g.w), float64(g.h)}, color.RGBA{0, 0, 0, 140})
	resume, leave, quit := p.pauseButtons(g)
	drawTextShadow(dst, "PAUSED — the match goes on", g.res.title, float64(g.w)/2, resume.y-70, colText, center)
	g.button(dst, resume, "Resume", true, true)
	g.button(dst, leave, "Leave match", false, true)
	g.button(dst, quit, "Quit", false, true)
}

// netRows is how many rows of 20 px the network panel needs beyond its
// fixed lines: one per peer, one per relayed peer's reason.
func netRows(peers []netplay.PeerInfo) int {
	n := len(peers)
	for _, pe := range peers {
		if pe.Relayed && pe.Why != "" {
			n += strings.Count(pe.Why, "; ") + 1
		}
	}
	return n
}

// netBox is where the network panel of rows (netRows) goes.
func netBox(g *Game, rows int) rect {
	box := rect{16, 108, 470, 236 + 20*float64(rows)}
	if w := float64(g.w); box.x+box.w > w-16 {
		box.w = w - 32
	}
	return box
}

// hostBadge draws a small "HOST" tag at (x, y).
func hostBadge(g *Game, dst *ebiten.Image, x, y float64) {
	w := textWidth("HOST", g.res.small) + 8
	fillRect(dst, rect{x, y, w, 16}, colAccent)
	drawText(dst, "HOST", g.res.small, x+4, y, color.RGBA{20, 16, 8, 255}, left)
}

// drawEdges darkens the screen's edges in red, strongest at the border.
func drawEdges(dst *ebiten.Image, w, h, strength float64) {
	const bands = 8
	for i := range bands {
		a := uint8(255 * strength * float64(bands-i) / bands / 2)
		c := color.RGBA{a, 0, 0, a}
		d := float64(i) * 7
		fillRect(dst, rect{d, d, w - 2*d, 7}, c)
		fillRect(dst, rect{d, h - d - 7, w - 2*d, 7}, c)
		fillRect(dst, rect{d, d + 7, 7, h - 2*d - 14}, c)
		fillRect(dst, rect{w - d - 7, d + 7, 7, h - 2*d - 14}, c)
	}
}
