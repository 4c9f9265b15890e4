package rmi_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/gamerpc"
)

// rangeStub is a hand-written Stub that records the IDs it gets.
type rangeStub struct {
	r   rmi.CallRange
	got []rmi.CallID
}

func (s *rangeStub) RMIRange() rmi.CallRange      { return s.r }
func (s *rangeStub) RMIName(id rmi.CallID) string { return fmt.Sprintf("Range.%d", id) }
func (s *rangeStub) RMIDispatch(info rmi.CallInfo, id rmi.CallID, args []byte) error {
	s.got = append(s.got, id)
	return nil
}

func frame(id rmi.CallID, args ...byte) []byte {
	f := make([]byte, 2, 2+len(args))
	rmi.PutHeader(f, id)
	return append(f, args...)
}

func TestAttachRejectsOverlap(t *testing.T) {
	d := rmi.NewDispatcher()
	a := &rangeStub{r: rmi.CallRange{First: 100, Last: 199}}
	if err := d.Attach(a); err != nil {
		t.Fatal(err)
	}
	for _, r := range []rmi.CallRange{{100, 100}, {199, 300}, {50, 100}, {0, 65535}, {150, 160}} {
		if err := d.Attach(&rangeStub{r: r}); !errors.Is(err, rmi.ErrOverlap) {
			t.Errorf("Attach %v: err = %v, want ErrOverlap", r, err)
		}
	}
	if err := d.Attach(a); !errors.Is(err, rmi.ErrOverlap) {
		t.Errorf("attaching the same stub twice: %v", err)
	}
	if err := d.Attach(&rangeStub{r: rmi.CallRange{First: 5, Last: 4}}); err == nil {
		t.Error("empty range accepted")
	}
	if err := d.Attach(nil); err == nil {
		t.Error("nil stub accepted")
	}
	// Two generated globals side by side are fine; the same one twice is not.
	if err := d.Attach(&gamerpc.GameStub{}); err != nil {
		t.Fatal(err)
	}
	err := d.Attach(&gamerpc.GameStub{})
	if !errors.Is(err, rmi.ErrOverlap) || !strings.Contains(err.Error(), "2000..2002") {
		t.Errorf("err = %v", err)
	}
}

func TestDispatchRoutesByRange(t *testing.T) {
	d := rmi.NewDispatcher()
	stubs := []*rangeStub{
		{r: rmi.CallRange{First: 300, Last: 399}},
		{r: rmi.CallRange{First: 1, Last: 1}},
		{r: rmi.CallRange{First: 400, Last: 400}},
		{r: rmi.CallRange{First: 65000, Last: 65535}},
	}
	for _, s := range stubs {
		if err := d.Attach(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []rmi.CallID{300, 399, 1, 400, 65000, 65535} {
		if err := d.Dispatch(rmi.CallInfo{}, frame(id)); err != nil {
			t.Errorf("dispatch %d: %v", id, err)
		}
	}
	for _, id := range []rmi.CallID{0, 2, 299, 401, 64999} {
		if err := d.Dispatch(rmi.CallInfo{}, frame(id)); !errors.Is(err, rmi.ErrUnknownCall) {
			t.Errorf("dispatch %d: err = %v, want ErrUnknownCall", id, err)
		}
	}
	want := [][]rmi.CallID{{300, 399}, {1}, {400}, {65000, 65535}}
	for i, s := range stubs {
		if fmt.Sprint(s.got) != fmt.Sprint(want[i]) {
			t.Errorf("stub %v got %v, want %v", s.r, s.got, want[i])
		}
	}
	if !d.Detach(stubs[0]) || d.Detach(stubs[0]) {
		t.Error("Detach")
	}
	if err := d.Dispatch(rmi.CallInfo{}, frame(300)); !errors.Is(err, rmi.ErrUnknownCall) {
		t.Errorf("after detach: %v", err)
	}
	if err := d.Attach(&rangeStub{r: rmi.CallRange{First: 350, Last: 360}}); err != nil {
		t.Errorf("re-attach into the freed range: %v", err)
	}
}

// TestDispatchErrors checks that every kind of bad frame is an error with a
// counter, never a panic.
func TestDispatchErrors(t *testing.T) {
	d := rmi.NewDispatcher()
	boom := errors.New("boom")
	stub := &gamerpc.GameStub{
		Player_Move: func(info rmi.CallInfo, pos, vel gamerpc.Vec2, tick uint32) error { return nil },
		Hit:         func(info rmi.CallInfo, shooter, target uint32, damage int16) error { return boom },
		// Chat is nil.
	}
	if err := d.Attach(stub); err != nil {
		t.Fatal(err)
	}
	info := rmi.CallInfo{From: 1007}
	cases := []struct {
		name  string
		frame []byte
		is    error
		msg   string
	}{
		{"empty", nil, rmi.ErrShortFrame, "rmi: call 0 from 1007: frame shorter than a call ID"},
		{"one byte", []byte{7}, rmi.ErrShortFrame, "frame shorter"},
		{"unknown", frame(9), rmi.ErrUnknownCall, "rmi: call 9 from 1007: unknown call ID"},
		{"no args", frame(gamerpc.Game_Player_Move), rmi.ErrDecode, "Game.Player_Move"},
		{"wrong count", frame(gamerpc.Game_Player_Move, 0x92, 0x92, 1, 2, 0x92, 1, 2), rmi.ErrDecode, "where 3 were expected"},
		{"wrong type", frame(gamerpc.Game_Player_Move, 0x93, 0xc3, 0x92, 1, 2, 1), rmi.ErrDecode, "is not array"},
		{"trailing", frame(gamerpc.Game_Player_Move, 0x93, 0x92, 1, 2, 0x92, 1, 2, 3, 0), rmi.ErrDecode, "trailing"},
		{"nil handler", frame(gamerpc.Game_Chat, 0x91, 0xa0), rmi.ErrNoHandler, "Game.Chat"},
		{"handler error", frame(gamerpc.Game_Hit, 0x93, 1, 2, 3), boom, "rmi: Game.Hit (call 2002) from 1007: boom"},
	}
	for _, c := range cases {
		err := d.Dispatch(info, c.frame)
		var ce *rmi.CallError
		if !errors.Is(err, c.is) || !errors.As(err, &ce) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", c.name, err, c.is, c.msg)
		}
	}
	if err := d.Dispatch(info, frame(gamerpc.Game_Player_Move, 0x93, 0x92, 1, 2, 0x92, 1, 2, 3)); err != nil {
		t.Errorf("valid frame with integer floats: %v", err)
	}
	want := rmi.DispatchStats{Unknown: 1, Malformed: 6, NoHandler: 1, HandlerErrors: 1}
	if got := d.Stats(); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}

// TestDispatchConcurrent attaches and detaches while other goroutines
// dispatch (run with -race).
func TestDispatchConcurrent(t *testing.T) {
	d := rmi.NewDispatcher()
	var mu sync.Mutex
	calls := 0
	stub := &gamerpc.GameStub{Chat: func(info rmi.CallInfo, text string) error {
		mu.Lock()
		calls++
		mu.Unlock()
		return nil
	}}
	if err := d.Attach(stub); err != nil {
		t.Fatal(err)
	}
	var f []byte
	p := gamerpc.NewGameProxy(rmi.SenderFunc(func(_ net.HostID, _ net.Delivery, data []byte) error {
		f = append([]byte(nil), data...)
		return nil
	}))
	if err := p.Chat(1, rmi.Reliable, "hi"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if err := d.Dispatch(rmi.CallInfo{}, f); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			s := &rangeStub{r: rmi.CallRange{First: rmi.CallID(10 + i), Last: rmi.CallID(10 + i)}}
			if err := d.Attach(s); err != nil {
				t.Error(err)
			}
			d.Detach(s)
		}
	})
	wg.Wait()
	if calls != 4000 {
		t.Errorf("calls = %d", calls)
	}
}

func TestReceiveAndDispatchEvent(t *testing.T) {
	d := rmi.NewDispatcher()
	var got rmi.CallInfo
	if err := d.Attach(&gamerpc.LobbyStub{Ready: func(info rmi.CallInfo) error { got = info; return nil }}); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(42, 0)
	if err := d.Receive(1500, net.Unreliable.OnChannel(3), frame(gamerpc.Lobby_Ready, 0x90), true, at); err != nil {
		t.Fatal(err)
	}
	want := rmi.CallInfo{From: 1500, Relayed: true, Context: rmi.Unreliable.OnChannel(3), Received: at}
	if got != want {
		t.Errorf("info = %+v, want %+v", got, want)
	}
	ok, err := d.DispatchEvent(net.Event{Kind: net.EventConnected, Peer: 3})
	if ok || err != nil {
		t.Errorf("connected event: %v %v", ok, err)
	}
	ok, err = d.DispatchEvent(net.Event{Kind: net.EventMessage, Peer: 1501, Delivery: net.Reliable, Data: frame(gamerpc.Lobby_Ready, 0x90), Received: at})
	if !ok || err != nil || got.From != 1501 || !got.Context.Reliable {
		t.Errorf("message event: %v %v %+v", ok, err, got)
	}
}

func TestContext(t *testing.T) {
	c := rmi.Unreliable.OnChannel(4).WithPriority(rmi.PriorityHigh).WithCompression().RequireEncryption()
	if got := c.String(); got != "unreliable/ch4/high/compressed/encrypted-only" {
		t.Errorf("String = %q", got)
	}
	if got := c.Delivery(); got != net.Unreliable.OnChannel(4) {
		t.Errorf("Delivery = %+v", got)
	}
	r := rmi.Reliable.OnChannel(4).WithPriority(rmi.PriorityLow)
	if got := r.Delivery(); got != net.Reliable {
		t.Errorf("reliable Delivery = %+v (channel must be dropped)", got)
	}
	if r.String() != "reliable/low" || rmi.Priority(5).String() != "5" {
		t.Errorf("String = %q", r.String())
	}
	if rmi.ContextOf(net.Unreliable.OnChannel(9)) != rmi.Unreliable.OnChannel(9) {
		t.Error("ContextOf")
	}
}
