package net_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// A server and a client on loopback: the client dials, sends one reliable
// and one unreliable message, and the server reads them on its own
// goroutine with Next (a game would call FrameMove once per frame instead).
func Example() {
	srv, err := net.Listen("127.0.0.1:0", net.Config{Accept: true})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.Listen("127.0.0.1:0", net.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, srv.LocalAddr()); err != nil {
		log.Fatal(err)
	}
	cli.Send(net.ServerID, net.Reliable, []byte("hello"))
	cli.Send(net.ServerID, net.Unreliable.OnChannel(1), []byte("position 3,4"))

	for range 3 {
		e, err := srv.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		switch e.Kind {
		case net.EventConnected:
			fmt.Println("connected:", e.Peer == cli.ID())
		case net.EventMessage:
			fmt.Printf("%q reliable=%v channel=%d\n", e.Data, e.Delivery.Reliable, e.Delivery.Channel)
		case net.EventDisconnected, net.EventPathChange, net.EventAway, net.EventBack:
			// None happens here: the client stays, on one address.
		}
	}
	// Output:
	// connected: true
	// "hello" reliable=true channel=0
	// "position 3,4" reliable=false channel=1
}

// FrameMove hands waiting events to the game on its own goroutine, once per
// frame; nothing is ever called from a networking goroutine.
func ExampleHost_FrameMove() {
	srv, _ := net.Listen("127.0.0.1:0", net.Config{Accept: true})
	defer srv.Close()
	cli, _ := net.Listen("127.0.0.1:0", net.Config{})
	defer cli.Close()
	if err := cli.Dial(context.Background(), srv.LocalAddr()); err != nil {
		log.Fatal(err)
	}
	cli.Send(net.ServerID, net.Reliable, []byte("ready"))

	got := 0
	for frame := 0; got < 2 && frame < 300; frame++ { // the game loop
		srv.FrameMove(func(e net.Event) {
			fmt.Println(e.Kind)
			got++
		})
		time.Sleep(10 * time.Millisecond) // the rest of the frame
	}
	// Output:
	// connected
	// message
}

// A server that knows who its clients are: its Authenticate hook turns the
// credentials a client sealed into its handshake into a user, or refuses
// it before it gets anything; the refusal is a typed error at Dial.
func ExampleHost_DialWith() {
	srv, err := net.Listen("127.0.0.1:0", net.Config{
		Accept: true,
		Authenticate: func(_ context.Context, r *net.AuthRequest) (net.AuthResult, error) {
			if string(r.Credentials) != "open sesame" {
				return net.AuthResult{}, net.ErrUnauthorized
			}
			return net.AuthResult{User: "alice", Data: []byte("Alice")}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	bad, _ := net.Listen("127.0.0.1:0", net.Config{})
	defer bad.Close()
	err = bad.DialWith(ctx, srv.LocalAddr(), net.DialOptions{Credentials: []byte("guess")})
	fmt.Println(errors.Is(err, net.ErrUnauthorized))

	cli, _ := net.Listen("127.0.0.1:0", net.Config{})
	defer cli.Close()
	if err := cli.DialWith(ctx, srv.LocalAddr(), net.DialOptions{Credentials: []byte("open sesame")}); err != nil {
		log.Fatal(err)
	}
	e, _ := srv.Next(ctx)
	fmt.Println(e.Kind, e.User.ID, string(e.User.Data))
	// Output:
	// true
	// connected alice Alice
}
