package game

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hajimehoshi/ebiten/v2"

	"github.com/skein-dev/skein/demo/arena/netplay"
	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

// playScene is a match in progress.
type playScene struct {
	sess    *netplay.Session
	view    netplay.View
	wr      *worldRenderer
	cam     cameraState
	brain   *sim.Bot
	talk    *netplay.Chatter // the AI's small talk, with brain
	started time.Time

	kb       keyboard
	chat     chatBox
	feed     []feedEntry
	toasts   []toast
	showNet  bool
	scores   bool
	paused   bool
	sel      int
	lossIdx  int
	lagIdx   int
	relayMsg string
	relayAt  int

	killedBy  sim.PlayerID
	killedAt  int
	hitAt     int // frame I last hit someone (hit marker)
	hurtAt    int // frame I was last hurt (red edges)
	lastRound uint16
	banner    string
	bannerAt  int
	rates     rates
}

type cameraState struct {
	camera
	init bool
}

type feedEntry struct {
	killer, victim sim.PlayerID
	kSlot, vSlot   uint8
	kName, vName   string
	frame          int
}

type toast struct {
	text  string
	kind  netplay.NoticeKind
	frame int
}

// Simulated network conditions, cycled with L and K.
var (
	lossSteps = []float64{0, 0.05, 0.20}
	lagSteps  = []struct{ delay, jitter time.Duration }{{0, 0}, {50 * time.Millisecond, 10 * time.Millisecond}, {150 * time.Millisecond, 30 * time.Millisecond}}
)

func newPlay(g *Game, s *netplay.Session) *playScene {
	p := &playScene{sess: s, kb: ebitenKeys{}, started: time.Now(), wr: newWorldRenderer(g.res, s.Map(), g.snd)}
	p.wr.me = sim.PlayerID(s.ID())
	p.showNet = g.opt.ShowNet
	if g.opt.Autoplay {
		p.brain = sim.NewBot(sim.PlayerID(s.ID()), uint64(time.Now().UnixNano()))
		p.brain.Skill = 0.7
		p.talk = netplay.NewChatter(uint64(time.Now().UnixNano()))
	}
	ebiten.SetCursorMode(ebiten.CursorModeHidden)
	return p
}

func (p *playScene) input(g *Game) sim.Input {
	if p.paused || p.chat.open {
		return sim.Input{Aim: p.lastAim()} // typing or in the menu: stand still
	}
	if p.brain != nil {
		if w := p.sess.World(); w != nil {
			return p.brain.Think(w)
		}
		return sim.Input{}
	}
	var b sim.Buttons
	key := p.kb.pressed
	if key(ebiten.KeyW) || key(ebiten.KeyArrowUp) || key(ebiten.KeyZ) {
		b |= sim.Up
	}
	if key(ebiten.KeyS) || key(ebiten.KeyArrowDown) {
		b |= sim.Down
	}
	if key(ebiten.KeyA) || key(ebiten.KeyArrowLeft) || key(ebiten.KeyQ) {
		b |= sim.Left
	}
	if key(ebiten.KeyD) || key(ebiten.KeyArrowRight) {
		b |= sim.Right
	}
	if p.kb.mousePressed(ebiten.MouseButtonLeft) || key(ebiten.KeySpace) {
		b |= sim.Fire
	}
	aim := p.lastAim()
	if me := p.view.MeP(); me != nil {
		mx, my := mouse()
		aim = sim.AimTo(me.Pos, p.cam.toWorld(mx, my))
	}
	return sim.Input{Buttons: b, Aim: aim}
}

func (p *playScene) lastAim() uint16 {
	if me := p.view.MeP(); me != nil {
		return me.Aim
	}
	return 0
}

func (p *playScene) update(g *Game) error {
	s := p.sess
	g.snd.newTick()
	p.keys(g)
	if p.paused {
		if quit := p.pauseMenu(g); quit != nil {
			return quit
		}
		if g.scene != p {
			return nil
		}
	}
	s.Tick(p.input(g))
	if p.talk != nil {
		p.talk.Step(s)
	}
	if !s.Connected() {
		g.disconnect(fmt.Sprintf("Disconnected from the server: %v", s.Err()))
		return nil
	}
	if s.InMatch() == net.NoHost {
		msg := s.LobbyError()
		if msg == "" {
			msg = "You left the match"
		}
		g.disconnect(msg)
		return nil
	}
	s.View(&p.view)
	for _, e := range s.Effects() {
		p.wr.effect(e, &p.view)
		p.event(g, e)
	}
	p.addNotices(g, s.Notices())
	for _, l := range s.Chat() {
		p.chat.add(l, g.frame)
	}
	if len(p.toasts) > 6 {
		p.toasts = p.toasts[len(p.toasts)-6:]
	}
	if p.view.Ready && p.view.Round != p.lastRound {
		if p.lastRound != 0 {
			p.banner, p.bannerAt = fmt.Sprintf("ROUND %d — FIGHT!", p.view.Round), g.frame
			g.snd.play("round", 0.6)
		}
		p.lastRound = p.view.Round
	}
	if me := p.view.MeP(); me != nil {
		p.wr.listen = me.Pos
	}
	p.wr.update(&p.view, g, true)
	p.follow(g)
	p.rates.sample(s)
	if g.conn != nil && g.conn.ad != nil && g.frame%sim.TickRate == 0 {
		if err := netplay.UpdateLANPlayers(g.conn.ad, len(p.view.Players)); err != nil {
			g.log.Debug("LAN beacon keeps its player count", "error", err)
		}
	}
	return nil
}

// addNotices turns notices into toasts; several joins at once make one.
func (p *playScene) addNotices(g *Game, ns []netplay.Notice) {
	var joined []string
	for _, n := range ns {
		if name, ok := strings.CutSuffix(n.Text, " joined"); ok && n.Kind == netplay.Info {
			joined = append(joined, name)
			continue
		}
		p.toasts = append(p.toasts, toast{text: n.Text, kind: n.Kind, frame: g.frame})
	}
	switch {
	case len(joined) == 1:
		p.toasts = append(p.toasts, toast{text: joined[0] + " joined", frame: g.frame})
	case len(joined) > 3:
		p.toasts = append(p.toasts, toast{text: fmt.Sprintf("%s, %s and %d others joined", joined[0], joined[1], len(joined)-2), frame: g.frame})
	case len(joined) > 1:
		p.toasts = append(p.toasts, toast{text: strings.Join(joined[:len(joined)-1], ", ") + " and " + joined[len(joined)-1] + " joined", frame: g.frame})
	}
}

// event updates the feed and banners for a match event.
func (p *playScene) event(g *Game, e sim.Event) {
	switch e.Kind {
	case sim.EventSpawn, sim.EventPickup:
		// Shown in the world (worldRenderer.effect), not in the feed.
	case sim.EventRoundStart:
		// The round clock in the HUD shows the new round.
	case sim.EventHit:
		if e.Other == p.view.Me && e.Player != p.view.Me && e.Value > 0 {
			p.hitAt = g.frame
		}
		if e.Player == p.view.Me && e.Value > 0 {
			p.hurtAt = g.frame
		}
	case sim.EventKill:
		fe := feedEntry{killer: e.Other, victim: e.Player, kName: p.name(e.Other), vName: p.name(e.Player), frame: g.frame}
		if k := findPlayer(&p.view, e.Other); k != nil {
			fe.kSlot = k.Slot
		}
		if v := findPlayer(&p.view, e.Player); v != nil {
			fe.vSlot = v.Slot
		}
		p.feed = append(p.feed, fe)
		if len(p.feed) > 6 {
			p.feed = p.feed[1:]
		}
		if e.Player == p.view.Me {
			p.killedBy, p.killedAt = e.Other, g.frame
		}
		if e.Other == p.view.Me && e.Player != p.view.Me {
			p.wr.floats = append(p.wr.floats, floater{x: float64(g.w) / 2, y: float64(g.h)/2 - 90, text: "ELIMINATED " + p.name(e.Player), c: colAccent, life: 1.4, big: true})
		}
	case sim.EventRoundEnd:
		who := "nobody"
		if e.Player != sim.NoPlayer {
			who = p.name(e.Player)
		}
		p.banner, p.bannerAt = fmt.Sprintf("ROUND %d OVER — %s WINS", e.Value, who), g.frame
		g.snd.play("round", 0.7)
	}
}

func (p *playScene) name(id sim.PlayerID) string {
	if id == p.view.Me {
		return p.sess.Name() + " (you)"
	}
	return p.sess.PlayerName(net.HostID(id))
}

// keys handles the keys that are not movement.
func (p *playScene) keys(g *Game) {
	if p.chatKeys(g) {
		p.scores = false
		return // typing: the keys are the chat's
	}
	just := p.kb.justPressed
	if just(ebiten.KeyEscape) {
		p.paused = !p.paused
		if p.paused {
			ebiten.SetCursorMode(ebiten.CursorModeVisible)
		} else {
			ebiten.SetCursorMode(ebiten.CursorModeHidden)
		}
	}
	p.scores = p.kb.pressed(ebiten.KeyTab)
	if just(ebiten.KeyN) || just(ebiten.KeyF3) {
		p.showNet = !p.showNet
	}
	if just(ebiten.KeyM) {
		g.snd.toggle()
	}
	peers := p.sess.Peers()
	if just(ebiten.KeyBracketRight) || just(ebiten.KeyPageDown) {
		p.sel++
	}
	if just(ebiten.KeyBracketLeft) || just(ebiten.KeyPageUp) {
		p.sel--
	}
	if n := len(peers); n > 0 {
		p.sel = (p.sel%n + n) % n
	}
	if just(ebiten.KeyL) {
		p.lossIdx = (p.lossIdx + 1) % len(lossSteps)
		p.applyImpair(g)
	}
	if just(ebiten.KeyK) {
		p.lagIdx = (p.lagIdx + 1) % len(lagSteps)
		p.applyImpair(g)
	}
	if just(ebiten.KeyR) && p.sel < len(peers) {
		pe := peers[p.sel]
		p.showNet = true
		switch {
		case pe.Me:
			p.relayMsg = "Select another player ([ and ]) to force its link onto the relay"
		case !p.sess.CanForceRelay():
			p.relayMsg = "Force relay: not in this engine build yet (it comes with hole punching; every peer is relayed today)"
		default:
			if err := p.sess.ForceRelay(pe.ID, !pe.Relayed); err != nil {
				p.relayMsg = err.Error()
			} else {
				p.relayMsg = fmt.Sprintf("Asked to move %s's link %s", pe.Name, map[bool]string{true: "direct", false: "onto the relay"}[pe.Relayed])
			}
		}
		p.relayAt = g.frame
	}
}

func (p *playScene) applyImpair(g *Game) {
	l := lagSteps[p.lagIdx]
	p.sess.Impair().SetConditions(lossSteps[p.lossIdx], l.delay, l.jitter)
	p.showNet = true
	p.toasts = append(p.toasts, toast{text: fmt.Sprintf("Simulated network: %.0f%% loss, %v ± %v latency on what you send", lossSteps[p.lossIdx]*100, l.delay, l.jitter), kind: netplay.Network, frame: g.frame})
}

// follow moves the camera towards the own player.
func (p *playScene) follow(g *Game) {
	c := &p.cam
	c.w, c.h = float64(g.w), float64(g.h)
	c.scale = math.Min(math.Max(math.Min(c.w/1280, c.h/720), 0.45), 2.5)
	if !p.view.Ready {
		return
	}
	target := sim.V(p.view.Map.W/2, p.view.Map.H/2)
	if me := p.view.MeP(); me != nil && me.Alive {
		target = me.Pos
		// Look a little towards the cursor.
		mx, my := mouse()
		if p.brain == nil && !p.paused {
			off := sim.V(float32((mx-c.w/2)/c.scale), float32((my-c.h/2)/c.scale)).Scale(0.18)
			target = target.Add(off)
		}
	} else if k := findPlayer(&p.view, p.killedBy); k != nil && k.Alive {
		target = k.Pos // watch the killer while waiting
	} else if me != nil {
		target = me.Pos
	}
	if !c.init {
		c.x, c.y, c.init = float64(target.X), float64(target.Y), true
	}
	c.x += (float64(target.X) - c.x) * 0.15
	c.y += (float64(target.Y) - c.y) * 0.15
	c.clamp(p.view.Map)
}

func (p *playScene) pauseMenu(g *Game) error {
	resume, leave, quit := p.pauseButtons(g)
	switch {
	case clicked(resume):
		p.paused = false
		ebiten.SetCursorMode(ebiten.CursorModeHidden)
	case clicked(leave):
		g.disconnect("")
	case clicked(quit):
		return ebiten.Termination
	}
	return nil
}

func (p *playScene) pauseButtons(g *Game) (resume, leave, quit rect) {
	w, h := float64(g.w), float64(g.h)
	x := w/2 - 140
	return rect{x, h/2 - 60, 280, 48}, rect{x, h / 2, 280, 44}, rect{x, h/2 + 56, 280, 44}
}

// rates measures this client's traffic per second.
type rates struct {
	at             time.Time
	in, out        uint64
	snaps          uint64
	snapsOut       uint64
	upKBs, downKBs float64
	snapsPerSec    float64
	snapsOutPerSec float64
	fanOut         uint64  // group messages sent up for the server's fan-out
	fanOutPerSec   float64 // of them, per second
	serverRTT      time.Duration
}

func (r *rates) sample(s *netplay.Session) {
	now := time.Now()
	if now.Sub(r.at) < time.Second {
		return
	}
	st := s.Client().Host().Stats()
	c := s.Counters()
	if !r.at.IsZero() {
		d := now.Sub(r.at).Seconds()
		r.upKBs = float64(st.BytesOut-r.out) / d / 1000
		r.downKBs = float64(st.BytesIn-r.in) / d / 1000
		r.snapsPerSec = float64(c.Snapshots-r.snaps) / d
		r.snapsOutPerSec = float64(c.SnapshotsSent-r.snapsOut) / d
		r.fanOutPerSec = float64(st.Fanned.DatagramsOut-r.fanOut) / d
	}
	r.at, r.in, r.out, r.snaps, r.snapsOut = now, st.BytesIn, st.BytesOut, c.Snapshots, c.SnapshotsSent
	r.fanOut = st.Fanned.DatagramsOut
	if l, ok := s.ServerLink(); ok {
		r.serverRTT = l.RTT
	}
}

func (p *playScene) draw(g *Game, dst *ebiten.Image) {
	if !p.view.Ready {
		dst.Fill(colBG)
		drawText(dst, "Waiting for the host's first snapshot…", g.res.big, float64(g.w)/2, float64(g.h)/2, colText, center)
		return
	}
	p.wr.draw(dst, &p.view, &p.cam.camera, g)
	p.wr.drawLabels(dst, &p.view, &p.cam.camera, p.name)
	p.drawHUD(g, dst)
	var peers []netplay.PeerInfo // the network panel's rows, when it is open
	if p.showNet {
		peers = p.sess.Peers()
	}
	p.drawChat(g, dst, netRows(peers))
	if p.showNet {
		p.drawNet(g, dst, peers)
	}
	if p.scores || p.view.Phase == sim.Intermission {
		p.drawScores(g, dst)
	}
	p.drawCenter(g, dst)
	if p.paused {
		p.drawPause(g, dst)
	} else if p.brain == nil {
		mx, my := mouse()
		op := &ebiten.DrawImageOptions{}
		op.GeoM.Translate(mx-16, my-16)
		if g.frame-p.hitAt < 10 { // a hit: the crosshair flashes red and swells
			k := 1 + 0.3*float64(10-(g.frame-p.hitAt))/10
			op.GeoM.Reset()
			op.GeoM.Translate(-16, -16)
			op.GeoM.Scale(k, k)
			op.GeoM.Translate(mx, my)
			op.ColorScale.Scale(1, 0.35, 0.3, 1)
		}
		dst.DrawImage(g.res.crosshair, op)
	}
}
