package sim

import (
	"math"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// TestNoRenderingImports keeps the simulation free of Ebitengine (and of
// the network): it must run in headless bots, servers and tests.
func TestNoRenderingImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "ebiten") || strings.Contains(dep, "skein/engine") {
			t.Errorf("sim depends on %s", dep)
		}
	}
}

func TestAim(t *testing.T) {
	for _, tc := range []struct {
		rad  float64
		aim  uint16
		x, y float32
	}{
		{0, 0, 1, 0},
		{math.Pi / 2, 16384, 0, 1},
		{math.Pi, 32768, -1, 0},
		{-math.Pi / 2, 49152, 0, -1},
		{2 * math.Pi, 0, 1, 0},
	} {
		a := AimFromAngle(tc.rad)
		if a != tc.aim {
			t.Errorf("AimFromAngle(%v) = %d, want %d", tc.rad, a, tc.aim)
		}
		d := AimDir(a)
		if math.Abs(float64(d.X-tc.x)) > 1e-6 || math.Abs(float64(d.Y-tc.y)) > 1e-6 {
			t.Errorf("AimDir(%d) = %v, want (%v, %v)", a, d, tc.x, tc.y)
		}
	}
	if d := AimDiff(65000, 100); math.Abs(d-float64(636)*2*math.Pi/65536) > 1e-9 {
		t.Errorf("AimDiff across zero = %v", d)
	}
	if a := AimTo(V(0, 0), V(0, -5)); a != 49152 {
		t.Errorf("AimTo up = %d", a)
	}
}

func TestButtons(t *testing.T) {
	for _, tc := range []struct {
		b    Buttons
		want Vec2
	}{
		{0, V(0, 0)},
		{Up, V(0, -1)},
		{Down | Right, V(0.70710677, 0.70710677)},
		{Up | Down, V(0, 0)},
		{Left | Fire, V(-1, 0)},
	} {
		if got := tc.b.Move(); got != tc.want {
			t.Errorf("%05b.Move() = %v, want %v", tc.b, got, tc.want)
		}
		if tc.want != (Vec2{}) {
			if got := ButtonsToward(tc.want.Scale(3)); got != tc.b&^Fire {
				t.Errorf("ButtonsToward(%v) = %05b, want %05b", tc.want, got, tc.b&^Fire)
			}
		}
	}
}

// testMap is a small map with one wall in the middle.
func testMap() *Map {
	m := &Map{Name: "test", W: 640, H: 640, Walls: []Rect{R(256, 256, 128, 128)},
		Spawns: []Vec2{{64, 64}, {576, 576}, {576, 64}, {64, 576}}, Pickups: []Vec2{{320, 64}}}
	return m
}

func TestMovePlayer(t *testing.T) {
	m := testMap()
	step := float32(PlayerSpeed) * TickSeconds
	for _, tc := range []struct {
		name  string
		from  Vec2
		b     Buttons
		ticks int
		want  Vec2
	}{
		{"right", V(100, 100), Right, 1, V(snap(100+step), 100)},
		{"up 10 ticks", V(100, 300), Up, 10, V(100, snap(300-10*step))},
		{"diagonal is not faster", V(400, 400), Down | Right, 60, V(400+250*0.70710677, 400+250*0.70710677)},
		{"stops at a wall", V(200, 320), Right, 60, V(256-PlayerRadius, 320)},
		{"slides along a wall", V(240-1, 300), Right | Down, 30, V(240, snap(300+30*step*0.70710677))},
		{"stops at the arena's edge", V(30, 30), Up | Left, 60, V(PlayerRadius, PlayerRadius)},
		{"no buttons, no move", V(100, 100), Fire, 5, V(100, 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Player{Pos: tc.from, Alive: true}
			for range tc.ticks {
				MovePlayer(m, &p, Input{Buttons: tc.b, Aim: 123})
			}
			if math.Abs(float64(p.Pos.X-tc.want.X)) > float64(tc.ticks)/Snap || math.Abs(float64(p.Pos.Y-tc.want.Y)) > float64(tc.ticks)/Snap {
				t.Errorf("at %v, want %v", p.Pos, tc.want)
			}
			if p.Aim != 123 {
				t.Errorf("aim %d", p.Aim)
			}
			if m.Blocked(p.Pos, PlayerRadius) {
				t.Errorf("ended inside a wall at %v", p.Pos)
			}
		})
	}
	dead := Player{Pos: V(100, 100)}
	MovePlayer(m, &dead, Input{Buttons: Right, Aim: 7})
	if dead.Pos != V(100, 100) || dead.Aim != 7 {
		t.Errorf("a dead player moved: %+v", dead)
	}
}

// place puts a player at a position, alive and unprotected.
func place(w *World, id PlayerID, pos Vec2) *Player {
	p, err := w.AddPlayer(id)
	if err != nil {
		panic(err)
	}
	p.Pos, p.Timer = pos, 0
	return p
}

// shoot makes id fire once at aim and steps until the bullet is gone.
func shoot(w *World, id PlayerID, aim uint16) []Event {
	var all, ev []Event
	seq := w.Player(id).Ack + 1
	ev = w.Step(map[PlayerID][]Input{id: {{Seq: seq, Buttons: Fire, Aim: aim}}}, ev)
	all = append(all, ev...)
	for len(w.Bullets) > 0 {
		ev = w.Step(nil, ev)
		all = append(all, ev...)
	}
	return all
}

func kinds(evs []Event) []EventKind {
	var ks []EventKind
	for _, e := range evs {
		if e.Kind != EventSpawn {
			ks = append(ks, e.Kind)
		}
	}
	return ks
}

func TestHits(t *testing.T) {
	right := AimFromAngle(0)
	for _, tc := range []struct {
		name    string
		victim  Vec2
		protect bool
		hp      uint8
		want    []EventKind
		wantHP  uint8
	}{
		{"hit in the open", V(200, 64), false, MaxHP, []EventKind{EventHit}, MaxHP - BulletDamage},
		{"out of range", V(64+BulletSpeed*BulletLife*TickSeconds+40, 64), false, MaxHP, nil, MaxHP},
		{"grazed", V(200, 64+PlayerRadius+BulletRadius-1), false, MaxHP, []EventKind{EventHit}, MaxHP - BulletDamage},
		{"missed", V(200, 64+PlayerRadius+BulletRadius+1), false, MaxHP, nil, MaxHP},
		{"spawn protection absorbs", V(200, 64), true, MaxHP, []EventKind{EventHit}, MaxHP},
		{"last hit kills", V(200, 64), false, 15, []EventKind{EventHit, EventKill}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWorld(testMap(), Rules{})
			place(w, 1, V(64, 64))
			v := place(w, 2, tc.victim)
			v.HP = tc.hp
			if tc.protect {
				v.Timer = ProtectTicks
			}
			evs := shoot(w, 1, right)
			if got := kinds(evs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
			v = w.Player(2)
			if v.HP != tc.wantHP {
				t.Errorf("victim HP %d, want %d", v.HP, tc.wantHP)
			}
			if tc.wantHP == 0 {
				if v.Alive || v.Deaths != 1 || w.Player(1).Kills != 1 {
					t.Errorf("after the kill: victim %+v, killer %+v", *v, *w.Player(1))
				}
			}
		})
	}
}

func TestBulletsStopAtWalls(t *testing.T) {
	w := NewWorld(testMap(), Rules{})
	place(w, 1, V(100, 320))
	place(w, 2, V(500, 320)) // behind the wall
	if evs := shoot(w, 1, AimFromAngle(0)); len(kinds(evs)) != 0 {
		t.Errorf("a bullet went through the wall: %v", evs)
	}
	if w.Player(2).HP != MaxHP {
		t.Error("victim behind the wall was hurt")
	}
	// Nor does a bullet hit its own shooter, nor leave the arena.
	place(w, 3, V(600, 600))
	shoot(w, 3, AimFromAngle(math.Pi/4))
	if w.Player(3).HP != MaxHP {
		t.Error("shooter hurt by its own bullet")
	}
}

func TestFireRate(t *testing.T) {
	w := NewWorld(testMap(), Rules{})
	place(w, 1, V(64, 64))
	var ev []Event
	for i := range 60 {
		ev = w.Step(map[PlayerID][]Input{1: {{Seq: uint32(i + 1), Buttons: Fire, Aim: 16384}}}, ev)
	}
	// One shot at once, then one per FireTicks, each living BulletLife.
	if w.NextBullet != 1+59/FireTicks {
		t.Errorf("fired %d shots in 60 ticks, want %d", w.NextBullet, 1+59/FireTicks)
	}
	if w.Player(1).Ack != 60 {
		t.Errorf("Ack = %d", w.Player(1).Ack)
	}
	// Old and repeated inputs are ignored.
	before := w.Player(1).Pos
	w.Step(map[PlayerID][]Input{1: {{Seq: 59, Buttons: Right}, {Seq: 60, Buttons: Right}}}, ev)
	if w.Player(1).Pos != before {
		t.Error("a repeated input was applied again")
	}
}

func TestRespawnAndPickup(t *testing.T) {
	w := NewWorld(testMap(), Rules{})
	place(w, 1, V(64, 64))
	v := place(w, 2, V(160, 64))
	v.HP = BulletDamage
	shoot(w, 1, 0)
	if w.Player(2).Alive {
		t.Fatal("victim alive")
	}
	var ev []Event
	spawned := false
	for range RespawnTicks {
		ev = w.Step(nil, ev)
		for _, e := range ev {
			if e.Kind == EventSpawn && e.Player == 2 {
				spawned = true
			}
		}
	}
	v = w.Player(2)
	if !spawned || !v.Alive || v.HP != MaxHP || !v.Protected() {
		t.Fatalf("not respawned: %+v", *v)
	}
	if v.Pos != V(576, 576) {
		t.Errorf("respawned at %v, want the spawn farthest from the killer (576,576)", v.Pos)
	}
	// A health pack heals the hurt, then comes back later.
	v.HP = 50
	v.Pos = w.Map.Pickups[0]
	ev = w.Step(nil, ev)
	if v.HP != 50+HealthPackHP || w.Pickups[0] != HealthPackTicks || len(ev) != 1 || ev[0].Kind != EventPickup {
		t.Errorf("pickup: HP %d, timer %d, events %v", v.HP, w.Pickups[0], ev)
	}
	for range HealthPackTicks {
		w.Step(nil, nil)
	}
	if w.Pickups[0] != 0 {
		t.Errorf("pack not back: %d", w.Pickups[0])
	}
}

func TestRounds(t *testing.T) {
	w := NewWorld(testMap(), Rules{RoundTicks: 100, IntermissionTicks: 20})
	place(w, 1, V(64, 64)).Kills = 3
	place(w, 2, V(500, 500)).Kills = 5
	var ev, all []Event
	for range 100 {
		ev = w.Step(nil, ev)
		all = append(all, ev...)
	}
	if w.Phase != Intermission || len(all) != 1 || all[0] != (Event{Kind: EventRoundEnd, Player: 2, Value: 1}) {
		t.Fatalf("phase %v, events %+v", w.Phase, all)
	}
	// No shooting in the intermission.
	w.Step(map[PlayerID][]Input{1: {{Seq: 1, Buttons: Fire}}}, ev)
	if len(w.Bullets) != 0 {
		t.Error("fired during the intermission")
	}
	for range 19 {
		ev = w.Step(nil, ev)
	}
	if w.Phase != Playing || w.Round != 2 || w.Player(2).Kills != 0 || w.PhaseTicks != 100 {
		t.Errorf("after the intermission: phase %v round %d kills %d ticks %d", w.Phase, w.Round, w.Player(2).Kills, w.PhaseTicks)
	}
}

func TestAddRemovePlayers(t *testing.T) {
	w := NewWorld(DefaultMap(), Rules{})
	for id := PlayerID(1016); id >= 1001; id-- {
		if _, err := w.AddPlayer(id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.AddPlayer(2000); err != ErrFull {
		t.Errorf("17th player: %v, want ErrFull", err)
	}
	for i, p := range w.Players {
		if p.ID != PlayerID(1001+i) {
			t.Fatalf("players not sorted: %v at %d", p.ID, i)
		}
	}
	w.RemovePlayer(1005)
	p, _ := w.AddPlayer(3000)
	if p.Slot != w.Player(1004).Slot-1 && p.Slot != 11 { // 1005 joined 12th: slot 11 is free again
		t.Errorf("new player got slot %d, want the freed 11", p.Slot)
	}
	seen := map[uint8]bool{}
	for _, p := range w.Players {
		if seen[p.Slot] {
			t.Errorf("slot %d used twice", p.Slot)
		}
		seen[p.Slot] = true
	}
}

func TestMaps(t *testing.T) {
	for _, name := range Maps {
		t.Run(name, func(t *testing.T) { checkMap(t, MapByName(name)) })
	}
	if len(DefaultMap().Spawns) < MaxPlayers {
		t.Errorf("%d spawns for %d players", len(DefaultMap().Spawns), MaxPlayers)
	}
	if MapByName("nowhere").Name != "Foundry" {
		t.Error("an unknown map name should give the default map")
	}
}

func checkMap(t *testing.T, m *Map) {
	if len(m.Spawns) < 8 || len(m.Pickups) == 0 {
		t.Errorf("%d spawns and %d health packs", len(m.Spawns), len(m.Pickups))
	}
	for _, w := range m.Walls {
		if w.Min.X < 0 || w.Min.Y < 0 || w.Max.X > m.W || w.Max.Y > m.H {
			t.Errorf("wall %v outside the %vx%v map", w, m.W, m.H)
		}
	}
	for _, s := range append(append([]Vec2(nil), m.Spawns...), m.Pickups...) {
		if m.Blocked(s, PlayerRadius+8) {
			t.Errorf("spawn or pack at %v is blocked", s)
		}
		// Every spawn reaches every other.
		for _, o := range m.Spawns {
			if s != o && m.Path(s, o) == nil {
				t.Errorf("no path from %v to %v", s, o)
			}
		}
	}
	if m.W*Snap > math.MaxInt16 || m.H*Snap > math.MaxInt16 {
		t.Errorf("map %vx%v too large for int16 positions", m.W, m.H)
	}
}

// run steps w for n ticks with bots for every player and returns the
// events.
func run(w *World, bots []*Bot, n int, seq *uint32, after func()) []Event {
	var all, ev []Event
	in := map[PlayerID][]Input{}
	for range n {
		for _, b := range bots {
			i := b.Think(w)
			*seq++
			i.Seq = *seq
			in[b.ID] = []Input{i}
		}
		ev = w.Step(in, ev)
		all = append(all, ev...)
		if after != nil {
			after()
		}
	}
	return all
}

func newBotMatch(n int, seed uint64) (*World, []*Bot) {
	w := NewWorld(DefaultMap(), Rules{})
	var bots []*Bot
	for i := range n {
		id := PlayerID(1000 + i)
		w.AddPlayer(id)
		bots = append(bots, NewBot(id, seed))
	}
	return w, bots
}

func TestDeterministic(t *testing.T) {
	w1, b1 := newBotMatch(8, 42)
	w2, b2 := newBotMatch(8, 42)
	var s1, s2 uint32
	e1 := run(w1, b1, 1500, &s1, nil)
	e2 := run(w2, b2, 1500, &s2, nil)
	if !reflect.DeepEqual(w1.State, w2.State) || !reflect.DeepEqual(e1, e2) {
		t.Fatal("two runs from the same start and inputs differ")
	}
}

// TestHandover is what a host migration does: a new host builds its world
// from the last snapshot and carries on; it must end exactly where the old
// host would have, scores and positions included.
func TestHandover(t *testing.T) {
	w, bots := newBotMatch(8, 7)
	var seq uint32
	run(w, bots, 1800, &seq, nil)
	snap := w.Snapshot()
	kills := 0
	for _, p := range snap.Players {
		kills += int(p.Kills)
	}
	if kills == 0 {
		t.Fatal("no kills in 30 s: nothing to hand over")
	}
	heir := NewWorldFrom(DefaultMap(), Rules{}, snap)
	if !reflect.DeepEqual(heir.State, w.State) {
		t.Fatal("the new host's world differs from the snapshot")
	}
	// Both step on with the same inputs (the bots think on the old world).
	in := map[PlayerID][]Input{}
	for range 600 {
		for _, b := range bots {
			i := b.Think(w)
			seq++
			i.Seq = seq
			in[b.ID] = []Input{i}
		}
		w.Step(in, nil)
		heir.Step(in, nil)
	}
	if !reflect.DeepEqual(heir.State, w.State) {
		t.Error("after the handover the new host's match diverged from the old host's")
	}
	for _, p := range snap.Players {
		if q := heir.Player(p.ID); q == nil || q.Kills < p.Kills || q.Deaths < p.Deaths {
			t.Errorf("player %d lost its score in the handover", p.ID)
		}
	}
}

// TestBotsPlay checks the bots make a game of it: they roam, fight and kill,
// and nobody stays stuck.
func TestBotsPlay(t *testing.T) {
	w, bots := newBotMatch(8, 1)
	start := map[PlayerID]Vec2{}
	travelled := map[PlayerID]float32{}
	last := map[PlayerID]Vec2{}
	for _, p := range w.Players {
		start[p.ID], last[p.ID] = p.Pos, p.Pos
	}
	var seq uint32
	evs := run(w, bots, 60*TickRate, &seq, func() {
		for _, p := range w.Players {
			if p.Alive {
				if d := p.Pos.Dist(last[p.ID]); d < 50 {
					travelled[p.ID] += d
				}
			}
			last[p.ID] = p.Pos
		}
	})
	var kills, hits, pickups int
	for _, e := range evs {
		switch e.Kind {
		case EventKill:
			kills++
		case EventHit:
			hits++
		case EventPickup:
			pickups++
		case EventSpawn, EventRoundEnd, EventRoundStart:
			// Not counted.
		}
	}
	t.Logf("a minute of 8 bots: %d hits, %d kills, %d health packs", hits, kills, pickups)
	if kills < 8 {
		t.Errorf("only %d kills in a minute of 8 bots", kills)
	}
	for _, p := range w.Players {
		if travelled[p.ID] < 1500 {
			t.Errorf("bot %d walked only %.0f units in a minute", p.ID, travelled[p.ID])
		}
		if w.Map.Blocked(p.Pos, PlayerRadius-0.01) {
			t.Errorf("bot %d inside a wall at %v", p.ID, p.Pos)
		}
	}
}
