package rmi_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/gamerpc"
	"github.com/skein-dev/skein/engine/rmi/internal/testidl"
)

// A client calls Player_Move on the server through a generated proxy; the
// server's loop hands each received message to a Dispatcher, which calls the
// functional stub. (The hosts run on the in-memory network of package vnet;
// with net.Listen they would use UDP.)
func Example() {
	vn := vnet.New(1)
	defer vn.Close()
	sconn, _ := vn.Listen(netip.MustParseAddrPort("10.0.0.1:7777"))
	cconn, _ := vn.Listen(netip.MustParseAddrPort("10.0.0.2:0"))
	server, _ := net.NewHost(sconn, net.Config{Accept: true})
	defer server.Close()
	client, _ := net.NewHost(cconn, net.Config{})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Dial(ctx, sconn.LocalAddr()); err != nil {
		log.Fatal(err)
	}

	// Server: attach a stub, then dispatch every message event.
	calls := rmi.NewDispatcher()
	done := false
	err := calls.Attach(&gamerpc.GameStub{
		Player_Move: func(info rmi.CallInfo, pos, vel gamerpc.Vec2, tick uint32) error {
			fmt.Printf("from client: %v, %v: pos %v vel %v tick %d\n",
				info.From == client.ID(), info.Context, pos, vel, tick)
			done = true
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Client: call through the proxy.
	game := gamerpc.NewGameProxy(client)
	err = game.Player_Move(net.ServerID, rmi.Unreliable, gamerpc.Vec2{X: 1, Y: 2}, gamerpc.Vec2{X: 0, Y: -1}, 60)
	if err != nil {
		log.Fatal(err)
	}

	for !done { // the server's game loop
		e, err := server.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := calls.DispatchEvent(e); err != nil {
			log.Print(err) // a bad frame: report it and go on
		}
	}
	// Output:
	// from client: true, unreliable: pos {1 2} vel {0 -1} tick 60
}

// scoreBoard implements only the calls it cares about; the embedded
// UnimplementedGameHandler answers the others with rmi.ErrNotImplemented.
type scoreBoard struct {
	gamerpc.UnimplementedGameHandler
	damage map[uint32]int
}

func (s *scoreBoard) Hit(info rmi.CallInfo, shooter, target uint32, damage int16) error {
	s.damage[target] += int(damage)
	return nil
}

// A handler type can implement the generated interface instead of filling a
// functional stub; NewGameStub adapts it.
func Example_handlerInterface() {
	board := &scoreBoard{damage: map[uint32]int{}}
	d := rmi.NewDispatcher()
	if err := d.Attach(gamerpc.NewGameStub(board)); err != nil {
		log.Fatal(err)
	}
	loop := rmi.SenderFunc(func(to net.HostID, del net.Delivery, frame []byte) error {
		return d.Receive(1001, del, frame, false, time.Now())
	})
	game := gamerpc.NewGameProxy(loop)
	_ = game.Hit(net.ServerID, rmi.Reliable, 1001, 1002, 25)
	_ = game.Hit(net.ServerID, rmi.Reliable, 1001, 1002, 10)
	err := game.Chat(net.ServerID, rmi.Reliable, "gg")
	fmt.Println(board.damage[1002], errors.Is(err, rmi.ErrNotImplemented))
	// Output:
	// 35 true
}

// Two stubs whose call IDs overlap cannot be attached to one dispatcher.
func ExampleDispatcher_Attach() {
	d := rmi.NewDispatcher()
	fmt.Println(d.Attach(&gamerpc.GameStub{}))
	fmt.Println(d.Attach(&gamerpc.LobbyStub{}))
	err := d.Attach(&gamerpc.GameStub{})
	fmt.Println(errors.Is(err, rmi.ErrOverlap))
	// Output:
	// <nil>
	// <nil>
	// true
}

// Bad frames are errors and counters, never panics.
func ExampleDispatcher_Dispatch() {
	d := rmi.NewDispatcher()
	_ = d.Attach(&gamerpc.GameStub{
		Player_Move: func(rmi.CallInfo, gamerpc.Vec2, gamerpc.Vec2, uint32) error { return nil },
	})
	info := rmi.CallInfo{From: 1005}
	fmt.Println(d.Dispatch(info, []byte{0x07, 0xd0}))                       // Player_Move, no arguments
	fmt.Println(d.Dispatch(info, []byte{0x07, 0xd1, 0x91, 0xa2, 'h', 'i'})) // Chat, but no function
	fmt.Println(d.Dispatch(info, []byte{0xff, 0xff, 0x90}))                 // unknown ID
	fmt.Printf("%+v\n", d.Stats())
	// Output:
	// rmi: Game.Player_Move (call 2000) from 1005: cannot decode arguments: truncated at offset 0
	// rmi: Game.Chat (call 2001) from 1005: no handler for call
	// rmi: call 65535 from 1005: unknown call ID
	// {Unknown:1 Malformed:1 NoHandler:1 HandlerErrors:0}
}

// Contexts start from Reliable or Unreliable and are refined with methods.
func ExampleContext() {
	ctx := rmi.Unreliable.OnChannel(2).WithPriority(rmi.PriorityHigh)
	fmt.Println(ctx, ctx.Delivery() == net.Unreliable.OnChannel(2))
	fmt.Println(rmi.Reliable.WithCompression())
	// Output:
	// unreliable/ch2/high true
	// reliable/compressed
}

// Encoder and Decoder write and read msgpack directly; generated code uses
// them, and so can a Go type that implements rmi.Marshaler.
func ExampleEncoder() {
	e := rmi.StartCall(2001, 1) // the frame of Game.Chat("hi")
	e.EncodeString("hi")
	fmt.Printf("% x\n", e.Bytes())

	_, args, _ := rmi.ParseHeader(e.Bytes())
	d := rmi.NewDecoder(args)
	d.DecodeArrayHeader(1)
	fmt.Println(d.DecodeString(), d.Finish())
	rmi.PutEncoder(e)
	// Output:
	// 07 d1 91 a2 68 69
	// hi <nil>
}

// ExampleCallInfo_Defer answers a request after its handler returned, from
// another goroutine, as a server does when the work runs on a match's
// goroutine.
func ExampleCallInfo_Defer() {
	// Two ends of an in-memory link, each with a Dispatcher and Requests.
	cli, srv := &endpoint{id: 1001, d: rmi.NewDispatcher()}, &endpoint{id: net.ServerID, d: rmi.NewDispatcher()}
	cli.peer, srv.peer = srv, cli
	cli.r, srv.r = rmi.NewRequests(cli, rmi.RequestConfig{}), rmi.NewRequests(srv, rmi.RequestConfig{})
	cli.d.SetRequests(cli.r)
	srv.d.SetRequests(srv.r)

	work := make(chan *rmi.Later, 1)
	if err := srv.d.Attach(&testidl.ServiceStub{
		Double: func(info rmi.CallInfo, x int32, code testidl.Code) (int64, testidl.Code, error) {
			work <- info.Defer()
			return 0, 0, rmi.ErrDeferred
		},
	}); err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() { // the work, elsewhere
		later := <-work
		if err := testidl.AnswerServiceDouble(later, 42, testidl.CodeOk); err != nil {
			panic(err)
		}
		close(done)
	}()
	if _, err := testidl.NewServiceProxy(cli.r).Double(net.ServerID, rmi.Reliable, 21, testidl.CodeOk, func(twice int64, _ testidl.Code, err error) {
		fmt.Println(twice, err)
	}); err != nil {
		panic(err)
	}
	srv.pump() // the handler runs, and defers
	<-done
	cli.pump() // the response
	// Output: 42 <nil>
}
