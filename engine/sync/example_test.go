package sync_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/engine/sync/internal/partyrpc"
)

// A server and three clients on loopback: the server makes a group of
// alice, then adds bob and carol; alice greets the group with a typed RMI
// call; carol, then alice, leave, and the group's host moves to bob. Each
// client prints the events it sees, in the order it sees them (the rules:
// docs/SEMANTICS.md).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	srv, err := sync.ListenServer("127.0.0.1:0", sync.ServerConfig{NoTCP: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	names := map[net.HostID]string{}
	var members []*member
	for _, name := range []string{"alice", "bob", "carol"} {
		c, err := sync.DialClient(ctx, "127.0.0.1:0", srv.Host().LocalAddr(), sync.ClientConfig{})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close()
		names[c.ID()] = name
		members = append(members, newMember(name, c, names))
	}
	for connected := 0; connected < len(members); {
		e, err := srv.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		if e.Kind == sync.EventConnected {
			connected++
		}
	}
	alice, bob, carol := members[0], members[1], members[2]

	// step waits until each member saw the given number of new lines, then
	// prints them, member by member.
	step := func(title string, want map[*member]int) bool {
		fmt.Println("--", title)
		for _, m := range members {
			if err := m.until(ctx, len(m.lines)+want[m]); err != nil {
				fmt.Println(m.name, err)
				return false
			}
			for _, l := range m.lines[m.printed:] {
				fmt.Printf("%s: %s\n", m.name, l)
			}
			m.printed = len(m.lines)
		}
		return true
	}

	// A group of one: alice is its host. Then bob and carol join.
	g, err := srv.CreateGroup([]net.HostID{alice.c.ID()}, []byte("mode=coop"))
	if err != nil {
		fmt.Println(err)
		return
	}
	names[g] = "party"
	for _, m := range []*member{bob, carol} {
		if err := srv.JoinGroup(g, m.c.ID()); err != nil {
			fmt.Println(err)
			return
		}
	}
	if !step("group", map[*member]int{alice: 4, bob: 4, carol: 4}) {
		return
	}

	// Hole punching on loopback finds the direct path to both peers.
	fmt.Println("-- paths")
	var paths []string
	for _, m := range members {
		if err := m.untilDirect(ctx, 2); err != nil {
			fmt.Println(m.name, err)
			return
		}
		for peer, p := range m.paths {
			paths = append(paths, fmt.Sprintf("%s: %s %s", m.name, p, names[peer]))
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		fmt.Println(p)
	}

	// One typed call to the group reaches every other member.
	if err := partyrpc.NewPartyProxy(alice.c).Greet(g, rmi.Reliable, "alice", 7); err != nil {
		fmt.Println(err)
		return
	}
	if !step("greet", map[*member]int{bob: 1, carol: 1}) {
		return
	}

	if err := srv.LeaveGroup(g, carol.c.ID()); err != nil {
		fmt.Println(err)
		return
	}
	if !step("carol leaves", map[*member]int{alice: 1, bob: 1, carol: 3}) {
		return
	}

	// The host leaves: the server names the best-connected member left.
	if err := srv.LeaveGroup(g, alice.c.ID()); err != nil {
		fmt.Println(err)
		return
	}
	if !step("alice leaves", map[*member]int{alice: 2, bob: 2}) {
		return
	}

	// Output:
	// -- group
	// alice: alice joined party (1 members, "mode=coop")
	// alice: party's host is alice
	// alice: bob joined party (2 members, "mode=coop")
	// alice: carol joined party (3 members, "mode=coop")
	// bob: alice joined party (2 members, "mode=coop")
	// bob: bob joined party (2 members, "mode=coop")
	// bob: party's host is alice
	// bob: carol joined party (3 members, "mode=coop")
	// carol: alice joined party (3 members, "mode=coop")
	// carol: bob joined party (3 members, "mode=coop")
	// carol: carol joined party (3 members, "mode=coop")
	// carol: party's host is alice
	// -- paths
	// alice: direct to bob
	// alice: direct to carol
	// bob: direct to alice
	// bob: direct to carol
	// carol: direct to alice
	// carol: direct to bob
	// -- greet
	// bob: alice greets party: "alice", level 7
	// carol: alice greets party: "alice", level 7
	// -- carol leaves
	// alice: carol left party (2 members)
	// bob: carol left party (2 members)
	// carol: alice left party (2 members)
	// carol: bob left party (2 members)
	// carol: carol left party (2 members)
	// -- alice leaves
	// alice: bob left party (1 members)
	// alice: alice left party (1 members)
	// bob: alice left party (1 members)
	// bob: party's host is bob
}

// member is one client of the example and what it saw.
type member struct {
	name    string
	c       *sync.Client
	calls   *rmi.Dispatcher
	names   map[net.HostID]string
	lines   []string              // member, host and call events, in order
	printed int                   // lines already printed
	paths   map[net.HostID]string // the last relay state of each peer
}

func newMember(name string, c *sync.Client, names map[net.HostID]string) *member {
	m := &member{name: name, c: c, calls: rmi.NewDispatcher(), names: names,
		paths: map[net.HostID]string{}}
	err := m.calls.Attach(&partyrpc.PartyStub{
		Greet: func(info rmi.CallInfo, who string, level uint32) error {
			m.lines = append(m.lines, fmt.Sprintf("%s greets party: %q, level %d", names[info.From], who, level))
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	return m
}

// until handles events until m has n lines.
func (m *member) until(ctx context.Context, n int) error {
	for len(m.lines) < n {
		if err := m.handleNext(ctx); err != nil {
			return err
		}
	}
	return nil
}

// untilDirect handles events until n peers are reached directly.
func (m *member) untilDirect(ctx context.Context, n int) error {
	for m.directPeers() < n {
		if err := m.handleNext(ctx); err != nil {
			return err
		}
	}
	return nil
}

const directPath = "direct to"

func (m *member) directPeers() int {
	n := 0
	for _, p := range m.paths {
		if p == directPath {
			n++
		}
	}
	return n
}

func (m *member) handleNext(ctx context.Context) error {
	e, err := m.c.Next(ctx)
	if err != nil {
		return err
	}
	switch e.Kind {
	case sync.EventMemberJoin:
		m.lines = append(m.lines, fmt.Sprintf("%s joined %s (%d members, %q)", m.names[e.Member], m.names[e.Group], e.Count, e.Custom))
	case sync.EventMemberLeave:
		m.lines = append(m.lines, fmt.Sprintf("%s left %s (%d members)", m.names[e.Member], m.names[e.Group], e.Count))
	case sync.EventHostChange:
		m.lines = append(m.lines, fmt.Sprintf("%s's host is %s", m.names[e.Group], m.names[e.Host]))
	case sync.EventRelayStateChange:
		// Err says why the peer is relayed; it is nil on a direct path.
		if e.Relayed {
			m.paths[e.Peer] = fmt.Sprintf("relayed (%v) to", e.Err)
		} else {
			m.paths[e.Peer] = directPath
		}
	case sync.EventMessage:
		info := rmi.CallInfo{From: e.Peer, Relayed: e.Relayed, Context: rmi.ContextOf(e.Delivery), Received: e.Received}
		if err := m.calls.Dispatch(info, e.Data); err != nil {
			m.lines = append(m.lines, err.Error())
		}
	case sync.EventNATType:
		// This client's NAT type (e.NAT), once checked: a game shows it.
	case sync.EventDisconnected:
		return fmt.Errorf("disconnected: %w", e.Err)
	case sync.EventConnected: // DialClient returned once connected
	case sync.EventAway, sync.EventBack, sync.EventMemberAway, sync.EventMemberBack:
		// Only with Net.ResumeGrace, which this example leaves off.
	}
	return nil
}
