package sync_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// TestGroupFanoutOneCopyUp: a member of a group of 5 sends unreliable group
// messages over its uplink budget, to peers it reaches directly. Each
// message goes up once and the server sends the copies; a non-member can
// neither receive them nor use the fan-out to reach the group.
func TestGroupFanoutOneCopyUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 0, net.Config{})
		var members []net.HostID
		for i := range 5 {
			cfg := net.Config{}
			if i == 0 {
				cfg.UplinkBudget = 1 // every group send is over it
			}
			members = append(members, w.addClient(fmt.Sprintf("10.0.1.%d:5000", i+1), cfg).ID())
		}
		// x is not a member, but shares another group with b and c: it has
		// peer links to them, and may fan out to that group.
		x := w.addClient("10.0.1.9:5000", net.Config{FanoutAbove: 1})
		g, _ := w.srv.CreateGroup(members, nil)
		other, _ := w.srv.CreateGroup([]net.HostID{x.ID(), members[1], members[2]}, nil)
		time.Sleep(2 * time.Second) // punched: every pair direct
		a := w.clients[0]
		for _, p := range members[1:] {
			if !direct(a, p) {
				t.Fatalf("%v not direct", p)
			}
		}
		for _, c := range w.clients {
			settle(c)
		}
		srv0 := w.srv.Host().Stats()
		out0 := a.Host().Stats().DatagramsOut

		const count = 50
		msg := make([]byte, 300)
		for i := range count {
			msg[0] = byte(i)
			if err := a.Send(g, net.Unreliable, msg); err != nil {
				t.Fatal(err)
			}
		}
		// No time passed: nothing else went out.
		if n := a.Host().Stats().DatagramsOut - out0; n != count {
			t.Fatalf("%d group sends took %d datagrams out of the sender, want %d", count, n, count)
		}
		for _, c := range w.clients[1:5] {
			for i := range count {
				e := next(t, c, sync.EventMessage)
				if e.Data[0] != byte(i) || len(e.Data) != len(msg) || e.Peer != a.ID() || e.Group != g || !e.Relayed {
					t.Fatalf("message %d: %d from %v group %v relayed=%v", i, e.Data[0], e.Peer, e.Group, e.Relayed)
				}
			}
		}

		// x tries the fan-out to a group it is not in, and to a group that
		// does not exist.
		x.Host().SendGroup(g, []net.HostID{members[1], members[2]}, net.Unreliable, []byte{2, byte(g), byte(g >> 8), byte(g >> 16), byte(g >> 24)}, []byte("let me in"))
		x.Host().SendGroup(4242, []net.HostID{members[1], members[2]}, net.Unreliable, []byte{0}, []byte("nobody"))
		time.Sleep(100 * time.Millisecond)
		for _, c := range w.clients {
			for _, e := range settle(c, sync.EventMessage) {
				t.Fatalf("%v got an unexpected message from %v (group %v)", c.ID(), e.Peer, e.Group)
			}
		}
		srv := w.srv.Host().Stats()
		if d := srv.Drops[net.DropRelayDenied] - srv0.Drops[net.DropRelayDenied]; d != 1 {
			t.Fatalf("non-member fan-out: relay denied counted %d, want 1", d)
		}
		if d := srv.Drops[net.DropUnknownPeer] - srv0.Drops[net.DropUnknownPeer]; d != 1 {
			t.Fatalf("unknown group: unknown peer counted %d, want 1", d)
		}
		if in, out := srv.Fanned.DatagramsIn-srv0.Fanned.DatagramsIn, srv.Fanned.DatagramsOut-srv0.Fanned.DatagramsOut; in != count+2 || out != 4*count {
			t.Fatalf("server fanned out %d copies of %d messages, want %d of %d", out, in, 4*count, count+2)
		}
		t.Logf("sender: %d fan-outs, %d B up for %d messages of %d B to 4 members",
			a.Host().Stats().Fanouts, a.Host().Stats().Fanned.BytesOut, count, len(msg))

		// The fan-out x may use: its own group.
		if err := x.Send(other, net.Unreliable, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		for _, c := range w.clients[1:3] {
			if e := next(t, c, sync.EventMessage); e.Peer != x.ID() || e.Group != other || !e.Relayed {
				t.Fatalf("from x: %+v", e)
			}
		}
	})
}
