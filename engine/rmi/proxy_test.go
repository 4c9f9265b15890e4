package rmi_test

import (
	"errors"
	"testing"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/gamerpc"
)

// Compile-time check: the transport's Host is an rmi.Sender.
var _ rmi.Sender = (*net.Host)(nil)

// ctxSender implements ContextSender too.
type ctxSender struct {
	plain, full int
	ctx         rmi.Context
}

func (s *ctxSender) Send(net.HostID, net.Delivery, []byte) error { s.plain++; return nil }
func (s *ctxSender) SendContext(to net.HostID, ctx rmi.Context, data []byte) error {
	s.full++
	s.ctx = ctx
	return nil
}

func TestProxyUsesContextSender(t *testing.T) {
	s := &ctxSender{}
	p := gamerpc.NewGameProxy(s)
	ctx := rmi.Reliable.WithPriority(rmi.PriorityHigh).WithCompression()
	if err := p.Chat(1000, ctx, "gg"); err != nil {
		t.Fatal(err)
	}
	if s.full != 1 || s.plain != 0 || s.ctx != ctx {
		t.Errorf("plain=%d full=%d ctx=%v", s.plain, s.full, s.ctx)
	}
}

func TestProxySendError(t *testing.T) {
	refused := errors.New("queue full")
	p := gamerpc.NewGameProxy(rmi.SenderFunc(func(net.HostID, net.Delivery, []byte) error { return refused }))
	err := p.Hit(1003, rmi.Reliable, 1, 2, 3)
	var ce *rmi.CallError
	if !errors.Is(err, refused) || !errors.Is(err, rmi.ErrSend) || !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	if ce.ID != gamerpc.Game_Hit || ce.Name != "Game.Hit" || ce.Peer != 1003 {
		t.Errorf("CallError = %+v", ce)
	}
	if got := p.RMIProxy().Stats().Errors; got != 1 {
		t.Errorf("errors = %d", got)
	}
}

func TestProxyEncodeError(t *testing.T) {
	sent := 0
	p := rmi.NewProxy(rmi.SenderFunc(func(net.HostID, net.Delivery, []byte) error { sent++; return nil }))
	e := rmi.StartCall(5, 1)
	e.EncodeValue(func() {}) // msgpack cannot encode a func
	err := p.Send(1, rmi.Reliable, e, "X.Y")
	if !errors.Is(err, rmi.ErrEncode) || sent != 0 {
		t.Fatalf("err = %v, sent = %d", err, sent)
	}
	if p.Sender() == nil || p.Stats().Errors != 1 {
		t.Error("Sender or Stats")
	}
}

// TestProxyDelivery checks the Delivery a plain Sender gets.
func TestProxyDelivery(t *testing.T) {
	var got net.Delivery
	var to net.HostID
	p := gamerpc.NewGameProxy(rmi.SenderFunc(func(id net.HostID, d net.Delivery, _ []byte) error {
		to, got = id, d
		return nil
	}))
	if err := p.Player_Move(net.ServerID, rmi.Unreliable.OnChannel(7), gamerpc.Vec2{}, gamerpc.Vec2{}, 0); err != nil {
		t.Fatal(err)
	}
	if to != net.ServerID || got != net.Unreliable.OnChannel(7) {
		t.Errorf("to %v delivery %+v", to, got)
	}
}
