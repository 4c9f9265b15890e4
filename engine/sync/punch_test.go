package sync_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/sync"
)

// natKind is one row of the NAT matrix.
type natKind struct {
	name string
	nat  *vnet.NATType // nil: a public address, no NAT
}

var (
	public         = natKind{"public", nil}
	fullCone       = natKind{"full-cone", &vnet.NATType{Mapping: vnet.EndpointIndependent, Filtering: vnet.EndpointIndependent}}
	restricted     = natKind{"restricted-cone", &vnet.NATType{Mapping: vnet.EndpointIndependent, Filtering: vnet.AddressDependent}}
	portRestricted = natKind{"port-restricted-cone", &vnet.NATType{Mapping: vnet.EndpointIndependent, Filtering: vnet.AddressPortDependent}}
	symmetric      = natKind{"symmetric", &vnet.NATType{Mapping: vnet.AddressPortDependent, Filtering: vnet.AddressPortDependent}}
	natKinds       = []natKind{public, fullCone, restricted, portRestricted, symmetric}
)

// predictDirect is what RFC 4787 behaviour predicts for two peers that probe
// each other's server-observed address at the same time and answer probes
// where they came from (so each learns the other's peer-reflexive address):
// a probe gets in if the receiving NAT's filter allows it, and a NAT that
// maps per destination hides the port the peer must aim at. The classic
// table: only port-restricted or symmetric facing symmetric fail.
func predictDirect(a, b natKind) bool {
	hard := func(k natKind) bool { return k == symmetric }
	strict := func(k natKind) bool { return k == symmetric || k == portRestricted }
	fails := hard(a) && strict(b) || hard(b) && strict(a)
	return !fails
}

// natWorld places client i behind its own NAT of kind k (or on a public
// address) and the server on a public address.
func natWorld(t *testing.T, seed int64, kinds []natKind, ncfg net.Config) *world {
	t.Helper()
	w := &world{t: t, nw: vnet.New(seed)}
	t.Cleanup(func() { w.nw.Close() })
	sc, _ := w.nw.Listen(natSrv)
	srv, err := sync.NewServer(sc, sync.ServerConfig{Net: ncfg})
	if err != nil {
		t.Fatal(err)
	}
	w.srv = srv
	t.Cleanup(func() { srv.Close() })
	w.dialBehindNATs(kinds, func(netip.Addr) net.Config { return ncfg })
	return w
}

// dialBehindNATs dials client i from behind its own NAT of kind kinds[i]
// (or from a public address); cfg, if not nil, configures the host of
// the client at ip.
func (w *world) dialBehindNATs(kinds []natKind, cfg func(ip netip.Addr) net.Config) {
	w.t.Helper()
	for i, k := range kinds {
		addr := fmt.Sprintf("203.0.113.%d:5000", 20+i)
		if k.nat != nil {
			pub := netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", 101+i))
			inside := netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/24", i+1))
			if _, err := w.nw.AddNAT(*k.nat, pub, inside); err != nil {
				w.t.Fatal(err)
			}
			addr = fmt.Sprintf("10.%d.0.11:5000", i+1)
		}
		var ncfg net.Config
		if cfg != nil {
			ncfg = cfg(netip.MustParseAddrPort(addr).Addr())
		}
		w.dialFrom(addr, ncfg)
	}
}

var natSrv = netip.MustParseAddrPort("203.0.113.10:7000")

func (w *world) dialFrom(addr string, ncfg net.Config) *sync.Client {
	return w.dialTo(addr, natSrv, ncfg)
}

// exchange streams count reliable messages each way between a and b and
// checks they arrive exactly once and in order.
func exchange(t *testing.T, a, b *sync.Client, count int, during func(i int)) {
	t.Helper()
	settle(a, sync.EventMessage) // leave only what this exchange sends
	settle(b, sync.EventMessage)
	done := make(chan struct{})
	var senders stdsync.WaitGroup
	// The senders end before exchange returns: a goroutine left sleeping in
	// the bubble would outlive the test (closing a host takes no time).
	defer senders.Wait()
	defer close(done)
	for _, pair := range [][2]*sync.Client{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		senders.Go(func() {
			for i := range count {
				if during != nil && from == a {
					during(i)
				}
				var m [8]byte
				binary.LittleEndian.PutUint32(m[:], uint32(i))
				for {
					err := from.Send(to.ID(), net.Reliable, m[:])
					if err == nil {
						break
					}
					select {
					case <-done:
						return
					default:
					}
					if !errors.Is(err, net.ErrSendQueueFull) {
						t.Errorf("send: %v", err)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	for _, c := range []*sync.Client{a, b} {
		want := uint32(0)
		for want < uint32(count) {
			e := next(t, c, sync.EventMessage)
			if got := binary.LittleEndian.Uint32(e.Data); got != want {
				t.Fatalf("%v: message %d, want %d", c.ID(), got, want)
			}
			want++
		}
	}
}

// direct reports whether c reaches peer directly.
func direct(c *sync.Client, peer net.HostID) bool {
	st, _ := c.PeerState(peer)
	return !st.Relayed
}

func TestNATMatrix(t *testing.T) {
	for i, ka := range natKinds {
		for _, kb := range natKinds[i:] {
			t.Run(ka.name+"/"+kb.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					w := natWorld(t, int64(i), []natKind{ka, kb}, net.Config{})
					a, b := w.clients[0], w.clients[1]
					if _, err := w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
						t.Fatal(err)
					}
					time.Sleep(5 * time.Second) // longer than a punch attempt
					want := predictDirect(ka, kb)
					if got := direct(a, b.ID()); got != want {
						t.Errorf("%s side direct=%v, want %v", ka.name, got, want)
					}
					if got := direct(b, a.ID()); got != want {
						t.Errorf("%s side direct=%v, want %v", kb.name, got, want)
					}
					w.nw.SetConditions(vnet.Conditions{Loss: 0.05, Delay: 5 * time.Millisecond})
					exchange(t, a, b, 300, nil)
				})
			})
		}
	}
}

func TestSameNATPeersMeetOnTheLAN(t *testing.T) {
	for _, hairpin := range []bool{false, true} {
		t.Run(fmt.Sprintf("hairpin=%v", hairpin), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := &world{t: t, nw: vnet.New(7)}
				t.Cleanup(func() { w.nw.Close() })
				sc, _ := w.nw.Listen(natSrv)
				w.srv, _ = sync.NewServer(sc, sync.ServerConfig{})
				t.Cleanup(func() { w.srv.Close() })
				typ := *portRestricted.nat
				typ.Hairpin = hairpin
				w.nw.AddNAT(typ, netip.MustParseAddr("203.0.113.101"), netip.MustParsePrefix("10.1.0.0/24"))
				a := w.dialFrom("10.1.0.11:5000", net.Config{})
				b := w.dialFrom("10.1.0.12:5000", net.Config{})
				w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil)
				time.Sleep(5 * time.Second)
				for _, pair := range [][2]*sync.Client{{a, b}, {b, a}} {
					st, _ := pair[0].PeerState(pair[1].ID())
					if st.Relayed || st.Path != "direct "+pair[1].Host().LocalAddr().String() {
						t.Fatalf("%v reaches %v by %q, want its LAN address", pair[0].ID(), pair[1].ID(), st.Path)
					}
				}
				exchange(t, a, b, 100, nil)
			})
		})
	}
}

// relayEvents returns c's relay-state events not yet looked at, in order.
func relayEvents(c *sync.Client) []sync.Event {
	evs := skipped.take(c)
	return append(evs, settle(c, sync.EventRelayStateChange)...)
}

func TestDirectPathLostFallsBackAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := natWorld(t, 11, []natKind{portRestricted, fullCone}, net.Config{})
		a, b := w.clients[0], w.clients[1]
		w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil)
		time.Sleep(2 * time.Second)
		if !direct(a, b.ID()) || !direct(b, a.ID()) {
			t.Fatal("not direct to begin with")
		}
		ev := relayEvents(a)
		if len(ev) != 1 || ev[0].Relayed || ev[0].Err != nil {
			t.Fatalf("a's events %+v", ev)
		}
		relayEvents(b)

		// The direct path breaks: only traffic through the server passes.
		var cut atomic.Bool
		cut.Store(true)
		w.nw.SetFilter(func(from, to netip.AddrPort, _ []byte) bool {
			return cut.Load() && from.Addr() != natSrv.Addr() && to.Addr() != natSrv.Addr()
		})
		start := time.Now()
		var lost atomic.Int64
		exchange(t, a, b, 1000, func(i int) {
			if lost.Load() == 0 && !direct(a, b.ID()) {
				lost.Store(int64(time.Since(start)))
			}
			if i == 900 {
				cut.Store(false) // the path heals
			}
		})
		if lostAt := time.Duration(lost.Load()); lostAt == 0 || lostAt > 2*time.Second {
			t.Fatalf("fell back to the relay after %v, want within 2 s", lostAt)
		}
		ev = relayEvents(a)
		if len(ev) == 0 || !ev[0].Relayed || !errors.Is(ev[0].Err, net.ErrPathLost) {
			t.Fatalf("a's events after the cut: %+v", ev)
		}
		// After the back-off, punching finds the path again.
		time.Sleep(10 * time.Second)
		if !direct(a, b.ID()) || !direct(b, a.ID()) {
			t.Fatal("not direct again after the path healed")
		}
	})
}

func TestForcedSwitchesUnderLoadLoseNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := natWorld(t, 12, []natKind{fullCone, fullCone}, net.Config{})
		a, b := w.clients[0], w.clients[1]
		w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil)
		time.Sleep(2 * time.Second)
		w.nw.SetConditions(vnet.Conditions{Loss: 0.02, Delay: 3 * time.Millisecond})
		var switches atomic.Int64
		exchange(t, a, b, 4000, func(i int) {
			if n := switches.Load(); i%20 == 10 && n < 100 {
				force := n%2 == 0
				a.ForceRelay(b.ID(), force)
				b.ForceRelay(a.ID(), force)
				switches.Add(1)
			}
		})
		time.Sleep(time.Second)
		if switches := switches.Load(); switches != 100 {
			t.Fatalf("%d switches", switches)
		}
		ev := relayEvents(a)
		changes := 0
		for _, e := range ev {
			if e.Relayed == (changes%2 == 0) {
				changes++
			}
		}
		if changes < 90 {
			t.Fatalf("only %d alternating path changes reported for 100 switches", changes)
		}
	})
}

func TestGroupSendUsesFanoutOverUplinkBudget(t *testing.T) {
	for _, budget := range []int{0, 3000} {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, 0, net.Config{})
				var members []net.HostID
				for i := range 5 {
					cfg := net.Config{}
					if i == 0 {
						cfg.UplinkBudget = budget
					}
					members = append(members, w.addClient(fmt.Sprintf("10.0.1.%d:5000", i+1), cfg).ID())
				}
				g, _ := w.srv.CreateGroup(members, nil)
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
				relayed0 := w.srv.Host().Stats().Relayed.DatagramsOut
				msg := make([]byte, 100)
				for i := range 50 {
					msg[0] = byte(i)
					// Unreliable state at 100 Hz: 4 peers × ~170 B ≈ 68 kB/s.
					if err := a.Send(g, net.Unreliable, msg); err != nil {
						t.Fatal(err)
					}
					time.Sleep(10 * time.Millisecond)
				}
				for _, c := range w.clients[1:] {
					for i := range 50 {
						e := next(t, c, sync.EventMessage)
						if e.Data[0] != byte(i) || e.Peer != a.ID() {
							t.Fatalf("message %d: %v from %v", i, e.Data[0], e.Peer)
						}
					}
				}
				fanouts := a.Host().Stats().Fanouts
				relayed := w.srv.Host().Stats().Relayed.DatagramsOut - relayed0
				if budget == 0 && (fanouts != 0 || relayed != 0) {
					t.Fatalf("no budget: %d fan-outs, %d relayed", fanouts, relayed)
				}
				if budget > 0 && (fanouts < 40 || relayed < 4*fanouts) {
					t.Fatalf("budget %d B/s: %d fan-outs, %d relayed datagrams", budget, fanouts, relayed)
				}
				t.Logf("budget %d: %d of 50 group sends fanned out, %d datagrams relayed", budget, fanouts, relayed)
			})
		})
	}
}

func TestPeerLinkCipher(t *testing.T) {
	for _, tc := range []struct {
		a, b, want net.Cipher
	}{
		{net.AES256GCM, net.AES256GCM, net.AES256GCM},
		{net.AES256GCM, net.ChaCha20Poly1305, net.ChaCha20Poly1305},
	} {
		t.Run(fmt.Sprintf("%v-%v", tc.a, tc.b), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, 0, net.Config{Cipher: net.AES256GCM})
				a := w.addClient("10.0.1.1:5000", net.Config{Cipher: tc.a})
				b := w.addClient("10.0.1.2:5000", net.Config{Cipher: tc.b})
				w.srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil)
				time.Sleep(time.Second)
				for _, p := range [][2]*sync.Client{{a, b}, {b, a}} {
					st, _ := p[0].Host().LinkStats(p[1].ID())
					if st.Cipher != tc.want {
						t.Fatalf("peer link uses %v, want %v", st.Cipher, tc.want)
					}
				}
				exchange(t, a, b, 50, nil)
			})
		})
	}
}
