package lan_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/skein-dev/skein/engine/lan"
)

// A game advertises itself and another finds it. Real games leave Scope
// and Port at their defaults (the whole LAN, DefaultPort); this example
// stays on this machine and on a free port.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port := freeUDPPort()

	// The player looking for a game lists what the LAN offers.
	br, err := lan.Browse(ctx, lan.BrowserConfig{Port: port, Scope: lan.ScopeLoopback, Kind: "arena"})
	if err != nil {
		log.Fatal(err)
	}
	defer br.Close()

	// The host of a game (its server listens on UDP port 7777) advertises
	// it; Update keeps the player count current.
	ad, err := lan.Advertise(ctx, lan.AdvertiserConfig{Port: port, Scope: lan.ScopeLoopback},
		lan.Beacon{Kind: "arena", Name: "Ana's arena", Players: 1, Capacity: 8, Port: 7777})
	if err != nil {
		log.Fatal(err)
	}
	defer ad.Close()

	// Nothing connects by itself: the game shows the list and the player
	// picks. Here: wait for the first arena.
	e, err := br.Wait(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (%d/%d) at %v\n", e.Name, e.Players, e.Capacity, e.Addr)
	// Output:
	// Ana's arena (1/8) at 127.0.0.1:7777
}

func freeUDPPort() uint16 {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}
