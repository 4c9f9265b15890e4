// Command party is the program of Skein's getting-started guide
// (docs/GETTING-STARTED.md): a server and three players in one process, on
// loopback. The server puts the players in a group; every frame each player
// moves and tells the group where it is. It stops once every player has seen
// every other player move.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, []string{"alice", "bob", "carol"}); err != nil {
		fmt.Fprintln(os.Stderr, "party:", err)
		os.Exit(1)
	}
}

// run plays one match with the named players and prints what each saw.
func run(ctx context.Context, out io.Writer, names []string) error {
	// The server: in a real game, its own process (go run ./server).
	srv, err := sync.ListenServer("127.0.0.1:0", sync.ServerConfig{})
	if err != nil {
		return err
	}
	defer srv.Close()

	// The players: in a real game, one per process and machine.
	var players []*player
	for _, name := range names {
		c, err := sync.DialClient(ctx, "127.0.0.1:0", srv.Host().LocalAddr(), sync.ClientConfig{})
		if err != nil {
			return err
		}
		defer c.Close()
		players = append(players, newPlayer(name, c))
	}

	// The server makes the group once everyone is connected.
	var ids []net.HostID
	for len(ids) < len(names) {
		e, err := srv.Next(ctx)
		if err != nil {
			return err
		}
		if e.Kind == sync.EventConnected {
			ids = append(ids, e.Peer)
		}
	}
	if _, err := srv.CreateGroup(ids, []byte("map=meadow")); err != nil {
		return err
	}

	// The game loop: 60 frames a second.
	tick := time.NewTicker(time.Second / 60)
	defer tick.Stop()
	for frame := uint32(0); ; frame++ {
		done := true
		for _, p := range players {
			p.c.FrameMove(p.event)
			if err := p.update(frame); err != nil {
				return err
			}
			done = done && len(p.seen) == len(names)-1
		}
		if done {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	for _, p := range players {
		fmt.Fprintf(out, "%s: in a group of %d on %s, saw %d other players move\n",
			p.name, p.count, p.custom, len(p.seen))
	}
	return nil
}

// player is one client of the game.
type player struct {
	name   string
	c      *sync.Client
	game   *GameProxy      // sends Game calls
	calls  *rmi.Dispatcher // runs the Game calls that arrive
	group  net.HostID      // the match's group, once joined
	count  int             // members in the group
	custom string          // the group's custom field
	x, y   float32
	seen   map[net.HostID]bool // the players whose moves arrived
}

func newPlayer(name string, c *sync.Client) *player {
	p := &player{name: name, c: c, game: NewGameProxy(c), calls: rmi.NewDispatcher(), seen: map[net.HostID]bool{}}
	if err := p.calls.Attach(&GameStub{Move: p.onMove}); err != nil {
		panic(err) // only when two stubs share call IDs
	}
	return p
}

// event handles one event, on the game's goroutine.
func (p *player) event(e sync.Event) {
	switch e.Kind {
	case sync.EventMemberJoin:
		p.group, p.count, p.custom = e.Group, e.Count, string(e.Custom)
	case sync.EventMessage:
		if _, err := p.calls.DispatchSyncEvent(e); err != nil {
			fmt.Fprintln(os.Stderr, p.name, err) // counted in p.calls.Stats too
		}
	default:
		// Leaves, host changes, relay-state changes: docs/SEMANTICS.md.
	}
}

// update moves the player and tells the group where it is.
func (p *player) update(frame uint32) error {
	if p.group == net.NoHost {
		return nil // not in a group yet
	}
	p.x++
	return p.game.Move(p.group, rmi.Unreliable, p.x, p.y, frame)
}

// onMove runs when another player's Move arrives.
func (p *player) onMove(info rmi.CallInfo, x, y float32, frame uint32) error {
	p.seen[info.From] = true
	return nil
}
