package rmi_test

import (
	"testing"

	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/gamerpc"
)

// TestAllocations guards the targets: no allocation to send Player_Move, none
// to receive it (the target allows one), one to receive a Chat (its string).
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	d := &discard{}
	p := gamerpc.NewGameProxy(d)
	send := testing.AllocsPerRun(1000, func() {
		_ = p.Player_Move(1002, rmi.Unreliable, benchPos, benchVel, benchTick)
	})
	if send != 0 {
		t.Errorf("send allocs = %v, want 0", send)
	}

	disp := rmi.NewDispatcher()
	if err := disp.Attach(&gamerpc.GameStub{
		Player_Move: moveHandler,
		Chat:        func(info rmi.CallInfo, text string) error { return nil },
	}); err != nil {
		t.Fatal(err)
	}
	var move, chat []byte
	capture := &captureSender{}
	cp := gamerpc.NewGameProxy(capture)
	_ = cp.Player_Move(1, rmi.Unreliable, benchPos, benchVel, benchTick)
	move = capture.last
	_ = cp.Chat(1, rmi.Reliable, "hello there")
	chat = capture.last
	if n := testing.AllocsPerRun(1000, func() { _ = disp.Dispatch(benchInfo, move) }); n != 0 {
		t.Errorf("receive Player_Move allocs = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = disp.Dispatch(benchInfo, chat) }); n != 1 {
		t.Errorf("receive Chat allocs = %v, want 1 (the string)", n)
	}
}
