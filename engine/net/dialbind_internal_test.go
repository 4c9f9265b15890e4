package net

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	stdsync "sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// The addresses of vnetPair's hosts.
var (
	vnetServerAddr = netip.MustParseAddrPort("10.0.0.1:7000")
	vnetClientAddr = netip.MustParseAddrPort("10.0.0.2:5000")
)

// vnetPair makes a virtual network (seed) with a server host (scfg) at
// vnetServerAddr and a client host (ccfg), not yet dialled, at
// vnetClientAddr. Both hosts, then the network, close when the test ends.
func vnetPair(t *testing.T, seed int64, scfg, ccfg Config) (*vnet.Network, *Host, *Host) {
	t.Helper()
	n := vnet.New(seed)
	t.Cleanup(func() { n.Close() })
	listen := func(addr netip.AddrPort, cfg Config) *Host {
		t.Helper()
		c, err := n.Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewHost(c, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	return n, listen(vnetServerAddr, scfg), listen(vnetClientAddr, ccfg)
}

// A cookie reply and a reject the server sent to an earlier Dial of this
// socket, delivered late, during the next Dial to the same server: neither
// is this Dial's answer, and neither may end it (the reject with its
// reason, the cookie with a bad-cookie reject from the server). The second
// Dial connects.
func TestStaleHandshakeRepliesDoNotEndTheNextDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, srv, cli := vnetPair(t, 31, Config{Accept: true}, Config{})
		srvA, cliA := vnetServerAddr, vnetClientAddr

		// The first Dial: the server refuses it (busy); its cookie reply
		// and its reject are held back on the way.
		refuse := true
		var mu stdsync.Mutex
		var staleCookie, staleReject []byte
		srv.mu.Lock()
		srv.admitChecks = append(srv.admitChecks, func(hello, netip.AddrPort) error {
			mu.Lock()
			defer mu.Unlock()
			if refuse {
				return errors.New("the first dial is refused")
			}
			return nil
		})
		srv.mu.Unlock()
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
			if from != srvA || len(b) == 0 {
				return false
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case b[0] == kindCookie && staleCookie == nil:
				staleCookie = append([]byte(nil), b...)
				return false // let it through: the Dial sends its cookie
			case b[0] == kindReject:
				if staleReject == nil {
					staleReject = append([]byte(nil), b...)
				}
				return true
			}
			return false
		})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := cli.Dial(ctx, srvA)
		cancel()
		if !errors.Is(err, ErrHandshakeTimeout) {
			t.Fatalf("first dial, its reject held back: %v", err)
		}
		mu.Lock()
		refuse = false
		if staleCookie == nil || staleReject == nil {
			mu.Unlock()
			t.Fatal("the first dial got no cookie reply or no reject")
		}
		mu.Unlock()

		for _, stale := range []struct {
			what string
			b    []byte
		}{{"reject", staleReject}, {"cookie reply", staleCookie}} {
			// The next Dial's first hello gets no answer yet; the stale
			// reply arrives first.
			n.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return from == srvA })
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				done <- cli.Dial(ctx, srvA)
			}()
			synctest.Wait() // the hello went, its answer was dropped
			n.SetFilter(nil)
			if _, err := srv.conn.WriteTo(stale.b, cliA); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("a stale %s ended the next dial: %v", stale.what, err)
			}
			// Connected: the server kicks it, so that the same socket
			// dials again.
			if err := srv.Kick(cli.ID(), "dial again"); err != nil {
				t.Fatal(err)
			}
			for {
				e, err := cli.Next(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if e.Kind == EventDisconnected {
					break
				}
			}
		}
	})
}

// The server sends its welcome again for every retransmitted hello: a
// second copy that arrives once the first made the link is a duplicate,
// not a second link that replaces the first (which reported the fresh
// link ended, ErrClosedByPeer, right after EventConnected).
func TestDuplicateWelcomeMakesNoSecondLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, _, cli := vnetPair(t, 32, Config{Accept: true}, Config{})
		srvA := vnetServerAddr
		var mu stdsync.Mutex
		var welcome []byte
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
			if from != srvA || len(b) == 0 || b[0] != kindWelcome {
				return false
			}
			mu.Lock()
			defer mu.Unlock()
			welcome = append(welcome[:0], b...)
			return true // held back: the test delivers it, twice
		})
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- cli.Dial(ctx, srvA)
		}()
		synctest.Wait() // the welcome was sent and held back
		mu.Lock()
		w := welcome
		mu.Unlock()
		if w == nil {
			t.Fatal("no welcome")
		}
		// Both copies are read before Dial returns (the client's socket
		// reader handles them back to back).
		cli.handleWelcome(bytes.Clone(w), srvA, time.Now())
		cli.handleWelcome(bytes.Clone(w), srvA, time.Now())
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		n.SetFilter(nil)
		e, ok := cli.Poll()
		if !ok || e.Kind != EventConnected {
			t.Fatalf("first event %v (ok %v), want connected", e.Kind, ok)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if e, ok := cli.Poll(); ok {
			t.Fatalf("after connecting: %v from %v (err %v)", e.Kind, e.Peer, e.Err)
		}
		if st := cli.Stats(); st.Links != 1 {
			t.Fatalf("%d links", st.Links)
		}
	})
}

// A late cookie reply to an earlier Dial is counted as unexpected, as the
// protocol says, whatever it carries: an earlier Dial without credentials
// got a reply without the server's key, which this Dial (with credentials)
// would take for a malformed reply to its own hello if it read the layout
// before the tag. A reply with this Dial's tag and the wrong layout is
// malformed.
func TestStaleCookieCountedUnexpected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, cli := vnetPair(t, 33, Config{Accept: true}, Config{})
		var mine, earlier [keySize]byte
		mine[0], earlier[0] = 1, 2
		d := &pendingDial{pub: mine, flags: helloAuth, kick: make(chan struct{}, 1), done: make(chan error, 1)}
		cli.mu.Lock()
		cli.dials[vnetServerAddr] = d
		cli.mu.Unlock()
		cookie := make([]byte, cookieSize)
		for _, c := range []struct {
			what  string
			reply []byte
			want  DropReason
		}{
			{"an earlier Dial's reply, without the server's key", appendCookie(nil, &earlier, cookie), DropUnexpected},
			{"this Dial's tag, without the server's key it asked for", appendCookie(nil, &mine, cookie), DropMalformed},
		} {
			before := cli.Stats().Drops
			cli.handleCookie(c.reply, vnetServerAddr, time.Now())
			after := cli.Stats().Drops
			if after[c.want] != before[c.want]+1 || after.Total() != before.Total()+1 {
				t.Errorf("%s: drops %v → %v, want one more %v", c.what, before, after, c.want)
			}
		}
		select {
		case <-d.kick:
			t.Error("a reply that is not this Dial's made it send its hello again")
		default:
		}
	})
}
