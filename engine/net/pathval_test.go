package net_test

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// The attack of issue 11: group members make their authenticated datagrams
// appear to come from a victim's address (spoofed source), hoping the
// server moves their links there, then one member sends fan-out and relay
// traffic that the server would send on to each of them, at the victim.
// Path validation keeps their links where they were proven to be, so that
// traffic still reaches them there: the victim gets only path challenges,
// never more than 3x the bytes that appeared to come from it, and the
// challenges over that budget are dropped and counted.
func TestSpoofedMigrationDoesNotAmplifyAtVictim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := vnet.New(41)
		defer nw.Close()
		gt := new(groupTable)
		srv, c := fanoutNet(t, nw, gt, 4, func(int) net.Config { return net.Config{} })
		const g = net.HostID(900)
		gt.set(g, ids(c...)...)
		victim := netip.MustParseAddrPort("10.0.9.9:9999")
		vconn, err := nw.Listen(victim) // a host that never sends
		if err != nil {
			t.Fatal(err)
		}
		defer vconn.Close()
		attackers := c[1:]
		real := make([]netip.AddrPort, len(attackers))
		for i, a := range attackers {
			real[i] = a.LocalAddr()
		}
		var spoof atomic.Bool
		var fromVictim, toVictim atomic.Int64
		nw.SetRouter(vnet.RouterFunc(func(p *vnet.Packet) bool {
			if spoof.Load() && p.To == srvAddr && slices.Contains(real, p.From) {
				p.From = victim
				fromVictim.Add(int64(len(p.Data)))
			}
			if p.To == victim {
				toVictim.Add(int64(len(p.Data)))
			}
			return true
		}))

		// Each attacker gets one authenticated datagram to the server
		// from the victim's address: the newest packet number on its link.
		spoof.Store(true)
		for _, a := range attackers {
			if err := a.Send(net.ServerID, net.Unreliable, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Millisecond)
		spoof.Store(false)
		if fromVictim.Load() == 0 {
			t.Fatal("nothing appeared to come from the victim")
		}

		// The fan-out the server copies to every attacker: it still reaches
		// them at their own, validated addresses.
		floodGroup(t, c, 300, func(msg []byte) error {
			return c[0].SendGroup(g, ids(attackers...), net.Unreliable.OnChannel(1), nil, msg)
		})
		time.Sleep(5 * time.Second) // every challenge retry and the checks' end
		moved := func() {
			t.Helper()
			for i, a := range attackers {
				if got, _ := srv.RemoteAddr(a.ID()); got != real[i] {
					t.Fatalf("attacker %v's link moved to %v (real address %v)", a.ID(), got, real[i])
				}
			}
		}
		moved()
		if d := srv.Stats().Drops[net.DropUnvalidated]; d == 0 {
			t.Fatal("no challenge over the budget was dropped and counted")
		}

		// Now everything the attackers send the server appears to come
		// from the victim (their acks, relayed, too), while c[0] sends them
		// reliable messages through the relay, forwarded as they are.
		spoof.Store(true)
		floodGroup(t, c, 200, func(msg []byte) error {
			return c[0].SendMulti(ids(attackers...), net.Reliable, nil, msg)
		})
		time.Sleep(5 * time.Second)
		spoof.Store(false)
		moved()
		in, out := fromVictim.Load(), toVictim.Load()
		t.Logf("from the victim's address %d bytes, to it %d bytes (%.2fx)", in, out, float64(out)/float64(in))
		if out > 3*in {
			t.Fatalf("the server sent the victim %d bytes for %d that appeared to come from it: over 3x", out, in)
		}
	})
}

// A genuine NAT rebinding: the client's mapping changes (its datagrams
// come from a new public port and the old one is gone). The server
// validates the new address within one round trip and its traffic
// follows; the reliable streams lose nothing either way.
func TestNATRebindValidatesAndFollows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(42)
		defer n.Close()
		srv, cli, _ := vpair(t, n, net.Config{}, net.Config{})
		const oneWay = 10 * time.Millisecond
		n.SetConditions(vnet.Conditions{Delay: oneWay})
		mapped := netip.MustParseAddrPort("10.0.0.2:6000") // the new mapping
		var rebound atomic.Bool
		var toNew atomic.Int64
		n.SetRouter(vnet.RouterFunc(func(p *vnet.Packet) bool {
			if !rebound.Load() {
				return true
			}
			switch {
			case p.From == cliAddr:
				p.From = mapped
			case p.To == mapped:
				toNew.Add(1)
				p.To = cliAddr
			case p.To == cliAddr:
				return false // the old mapping is gone
			}
			return true
		}))
		rebound.Store(true)
		start := time.Now()
		if err := cli.Send(net.ServerID, net.Reliable, message(0)); err != nil {
			t.Fatal(err)
		}
		var took time.Duration
		for took == 0 && time.Since(start) < 5*time.Second {
			if a, _ := srv.RemoteAddr(cli.ID()); a == mapped {
				took = time.Since(start)
			}
			time.Sleep(time.Millisecond)
		}
		if took == 0 {
			t.Fatal("the server did not move to the client's new address")
		}
		// Sent at start, seen by the server after oneWay; its challenge
		// answered one round trip later.
		t.Logf("path moved %v after the client's first datagram from its new address (one way %v)", took, oneWay)
		if rtt := 2 * oneWay; took > oneWay+rtt+2*time.Millisecond {
			t.Fatalf("path moved after %v, want within one round trip (%v) of the server seeing the new address", took, rtt)
		}
		if got := toNew.Load(); got != 1 {
			t.Fatalf("%d datagrams to the new address before it was validated, want 1 challenge", got)
		}
		go sendAll(t, cli, net.ServerID, 200, nil)
		go sendAll(t, srv, cli.ID(), 200, nil)
		receiveAll(t, srv, cli.ID(), 1)
		receiveAll(t, srv, cli.ID(), 200)
		receiveAll(t, cli, net.ServerID, 200)
		if d := srv.Stats().Drops; d.Total() != 0 {
			t.Fatalf("server drops %v", d)
		}
	})
}
