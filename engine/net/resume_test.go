package net_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// resumeCfg: a short timeout so that a 5 s cut suspends both ends, and a
// grace window well past the cut.
var resumeCfg = net.Config{Timeout: 2 * time.Second, PingInterval: 250 * time.Millisecond, ResumeGrace: 20 * time.Second}

// recorder keeps every event a host delivers, from a goroutine of its
// own, so that a test can wait for what it needs in any order.
type recorder struct {
	mu     sync.Mutex
	events []net.Event
	msgs   int
	change chan struct{}
}

func record(t *testing.T, h *net.Host) *recorder {
	r := &recorder{change: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			e, err := h.Next(ctx)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.events = append(r.events, e)
			if e.Kind == net.EventMessage {
				r.msgs++
			}
			r.mu.Unlock()
			select {
			case r.change <- struct{}{}:
			default:
			}
		}
	}()
	return r
}

// wait blocks until cond holds over the events so far (checked under the
// recorder's lock), or fails the test after a minute of (virtual) time.
func (r *recorder) wait(t *testing.T, what string, cond func(ev []net.Event, msgs int) bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		r.mu.Lock()
		ok := cond(r.events, r.msgs)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.change:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waiting for %s: %d events, %d messages", what, len(r.events), r.msgs)
		}
	}
}

func has(kind net.EventKind, peer net.HostID) func([]net.Event, int) bool {
	return func(ev []net.Event, _ int) bool {
		for _, e := range ev {
			if e.Kind == kind && e.Peer == peer {
				return true
			}
		}
		return false
	}
}

// check asserts that the events from peer are: messages [0, count) in
// order, exactly once, intact, with exactly one EventAway followed by one
// EventBack among them, and nothing else.
func (r *recorder) check(t *testing.T, peer net.HostID, count int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	next, away, back := 0, 0, 0
	for _, e := range r.events {
		if e.Peer != peer {
			t.Fatalf("event %v from %v", e.Kind, e.Peer)
		}
		switch e.Kind {
		case net.EventMessage:
			if want := message(next); string(e.Data) != string(want) {
				t.Fatalf("message %d: got %d bytes, want %d (lost, duplicated or out of order)", next, len(e.Data), len(want))
			}
			next++
		case net.EventAway:
			if away != back || !errors.Is(e.Err, net.ErrTimeout) {
				t.Fatalf("away #%d after %d backs (err %v)", away+1, back, e.Err)
			}
			away++
		case net.EventBack:
			if back != away-1 {
				t.Fatalf("back #%d after %d aways", back+1, away)
			}
			back++
		default:
			t.Fatalf("unexpected %v (err %v)", e.Kind, e.Err)
		}
	}
	if next != count || away != 1 || back != 1 {
		t.Fatalf("%d messages (want %d), %d away, %d back (want one each)", next, count, away, back)
	}
}

// sendRange sends messages [from, to) reliably.
func sendRange(t *testing.T, h *net.Host, to net.HostID, from, end int) {
	t.Helper()
	for i := from; i < end; i++ {
		if err := h.Send(to, net.Reliable, message(i)); err != nil {
			t.Fatalf("send %d to %v: %v", i, to, err)
		}
	}
}

// A client's path is cut for 5 s mid-stream and restored: both ends
// suspend the link (EventAway), keep their HostIDs, and resume it
// (EventBack) when the path is back; every reliable message, including
// those sent during the cut, arrives exactly once and in order, both ways.
func TestResumeAfterCutKeepsStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(12)
		defer n.Close()
		srv, cli, _ := vpair(t, n, resumeCfg, resumeCfg)
		n.SetConditions(vnet.Conditions{Delay: 10 * time.Millisecond})
		id := cli.ID()
		var cut atomic.Bool
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
			return cut.Load() && (from == cliAddr || to == cliAddr)
		})
		rs, rc := record(t, srv), record(t, cli)

		sendRange(t, cli, net.ServerID, 0, 100)
		sendRange(t, srv, id, 0, 100)
		cut.Store(true)
		start := time.Now()
		sendRange(t, cli, net.ServerID, 100, 200) // before the timeout
		sendRange(t, srv, id, 100, 200)
		rs.wait(t, "server's away", has(net.EventAway, id))
		rc.wait(t, "client's away", has(net.EventAway, net.ServerID))
		if st := srv.Stats().Resume; st.Suspended != 1 {
			t.Fatalf("server resume stats %+v", st)
		}
		sendRange(t, cli, net.ServerID, 200, 300) // while suspended
		sendRange(t, srv, id, 200, 300)
		time.Sleep(5*time.Second - time.Since(start))
		cut.Store(false)
		rs.wait(t, "server's back", has(net.EventBack, id))
		rc.wait(t, "client's back", has(net.EventBack, net.ServerID))
		sendRange(t, cli, net.ServerID, 300, 400)
		sendRange(t, srv, id, 300, 400)
		all := func(_ []net.Event, msgs int) bool { return msgs == 400 }
		rs.wait(t, "every message at the server", all)
		rc.wait(t, "every message at the client", all)
		rs.check(t, id, 400)
		rc.check(t, net.ServerID, 400)
		if cli.ID() != id {
			t.Fatalf("client ID %v, was %v", cli.ID(), id)
		}
		st := srv.Stats().Resume
		if st.Suspended != 0 || st.Resumed != 1 || st.Expired != 0 {
			t.Fatalf("server resume stats %+v", st)
		}
		if st := cli.Stats().Resume; st.Resumed != 1 {
			t.Fatalf("client resume stats %+v", st)
		}
	})
}

// Past the grace window a suspended link ends like any timed-out link:
// EventDisconnected with ErrTimeout on both ends, and nothing kept.
func TestResumeGraceEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(13)
		defer n.Close()
		cfg := resumeCfg
		cfg.ResumeGrace = 3 * time.Second
		srv, cli, _ := vpair(t, n, cfg, cfg)
		id := cli.ID()
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return from == cliAddr || to == cliAddr })
		sendRange(t, srv, id, 0, 10)
		start := time.Now()
		expect(t, srv, net.EventAway, id)
		e := expect(t, srv, net.EventDisconnected, id)
		if !errors.Is(e.Err, net.ErrTimeout) {
			t.Fatalf("server: reason %v", e.Err)
		}
		if took := time.Since(start); took < cfg.Timeout+cfg.ResumeGrace-time.Second {
			t.Fatalf("removed %v after the cut: before the grace window ended", took)
		}
		expect(t, cli, net.EventAway, net.ServerID)
		e = expect(t, cli, net.EventDisconnected, net.ServerID)
		if !errors.Is(e.Err, net.ErrTimeout) {
			t.Fatalf("client: reason %v", e.Err)
		}
		st := srv.Stats()
		if st.Links != 0 || st.Resume.Suspended != 0 || st.Resume.Expired != 1 {
			t.Fatalf("server stats %+v resume %+v", st.Links, st.Resume)
		}
	})
}

// A client whose NAT mapping changed while it was cut off comes back from a
// new address: the link resumes, moves there once the address answered a
// path challenge, and both streams go on without a loss.
func TestResumeFromNewAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(14)
		defer n.Close()
		srv, cli, _ := vpair(t, n, resumeCfg, resumeCfg)
		n.SetConditions(vnet.Conditions{Delay: 10 * time.Millisecond})
		id := cli.ID()
		mapped := netip.MustParseAddrPort("10.0.0.2:6001") // the NAT's new mapping
		var cut, rebound atomic.Bool
		n.SetRouter(vnet.RouterFunc(func(p *vnet.Packet) bool {
			if cut.Load() && (p.From == cliAddr || p.To == cliAddr) {
				return false
			}
			if rebound.Load() {
				switch {
				case p.From == cliAddr:
					p.From = mapped
				case p.To == mapped:
					p.To = cliAddr
				case p.To == cliAddr:
					return false // the old mapping is gone
				}
			}
			return true
		}))
		rs, rc := record(t, srv), record(t, cli)
		sendRange(t, cli, net.ServerID, 0, 50)
		sendRange(t, srv, id, 0, 50)
		cut.Store(true)
		rs.wait(t, "server's away", has(net.EventAway, id))
		rc.wait(t, "client's away", has(net.EventAway, net.ServerID))
		sendRange(t, cli, net.ServerID, 50, 100)
		sendRange(t, srv, id, 50, 100)
		rebound.Store(true)
		cut.Store(false)
		all := func(_ []net.Event, msgs int) bool { return msgs == 100 }
		rs.wait(t, "every message at the server", all)
		rc.wait(t, "every message at the client", all)
		rs.check(t, id, 100)
		rc.check(t, net.ServerID, 100)
		if a, _ := srv.RemoteAddr(id); a != mapped {
			t.Fatalf("server sends to %v, want the new mapping %v", a, mapped)
		}
	})
}

// Nothing but the real client resumes its suspended link: its datagrams
// replayed from another address are refused as replays, forged ones fail
// their seal, and a replayed hello gets nothing; the link stays suspended
// and its path unchanged until the client itself is heard again.
func TestResumeRefusesReplayAndForgery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(15)
		defer n.Close()
		var capMu sync.Mutex
		var captured [][]byte
		n.SetRouter(vnet.RouterFunc(func(p *vnet.Packet) bool {
			if p.From == cliAddr && p.To == srvAddr {
				capMu.Lock()
				captured = append(captured, append([]byte(nil), p.Data...))
				capMu.Unlock()
			}
			return true
		}))
		srv, cli, _ := vpair(t, n, resumeCfg, resumeCfg)
		id := cli.ID()
		sendRange(t, cli, net.ServerID, 0, 20)
		receiveAll(t, srv, id, 20)
		var cut atomic.Bool
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
			return cut.Load() && (from == cliAddr || to == cliAddr)
		})
		cut.Store(true)
		expect(t, srv, net.EventAway, id)

		attacker, err := n.Listen(netip.MustParseAddrPort("10.0.6.6:6666"))
		if err != nil {
			t.Fatal(err)
		}
		defer attacker.Close()
		before := srv.Stats().Drops
		capMu.Lock()
		replays := captured
		capMu.Unlock()
		for _, b := range replays {
			attacker.WriteTo(b, srvAddr) // hellos and data alike
		}
		for _, b := range replays {
			if b[0] != 0x10 || len(b) < 40 {
				continue
			}
			f := append([]byte(nil), b...)
			f[len(f)-1] ^= 1 // forged: the tag no longer verifies
			f[5] += 0x40     // with a fresh packet number
			attacker.WriteTo(f, srvAddr)
		}
		time.Sleep(2 * time.Second)
		after := srv.Stats()
		if after.Resume.Suspended != 1 || after.Resume.Resumed != 0 {
			t.Fatalf("resume stats %+v after replays and forgeries", after.Resume)
		}
		if a, _ := srv.RemoteAddr(id); a != cliAddr {
			t.Fatalf("server moved the link to %v", a)
		}
		if after.Drops[net.DropReplay] == before[net.DropReplay] || after.Drops[net.DropBadSeal] == before[net.DropBadSeal] {
			t.Fatalf("replays or forgeries not counted: before %v after %v", before, after.Drops)
		}
		if e, ok := srv.Poll(); ok {
			t.Fatalf("event %v from %v during the attack", e.Kind, e.Peer)
		}
		cut.Store(false)
		expect(t, srv, net.EventBack, id)
	})
}

// DialRetry dials again with back-off while the server does not answer,
// and connects once it does; a plain Dial gives up at its deadline.
func TestDialRetryWaitsForTheServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := vnet.New(16)
		defer n.Close()
		sconn, err := n.Listen(srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := net.NewHost(sconn, net.Config{Accept: true})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cconn, err := n.Listen(cliAddr)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := net.NewHost(cconn, net.Config{HandshakeTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		var down atomic.Bool
		down.Store(true)
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return down.Load() && to == srvAddr })
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err = cli.Dial(ctx, srvAddr)
		cancel()
		if !errors.Is(err, net.ErrHandshakeTimeout) {
			t.Fatalf("Dial to a silent server: %v", err)
		}
		go func() {
			time.Sleep(10 * time.Second)
			down.Store(false)
		}()
		start := time.Now()
		ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := cli.DialRetry(ctx, srvAddr); err != nil {
			t.Fatalf("DialRetry: %v", err)
		}
		if took := time.Since(start); took < 10*time.Second {
			t.Fatalf("connected after %v, before the server answered", took)
		}
		expect(t, cli, net.EventConnected, net.ServerID)
		// A context that ends first: the last attempt's error.
		cli2conn, _ := n.Listen(netip.MustParseAddrPort("10.0.0.3:5000"))
		cli2, _ := net.NewHost(cli2conn, net.Config{HandshakeTimeout: time.Second})
		defer cli2.Close()
		down.Store(true)
		ctx2, cancel2 := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel2()
		if err := cli2.DialRetry(ctx2, srvAddr); !errors.Is(err, net.ErrHandshakeTimeout) {
			t.Fatalf("DialRetry until the context ends: %v", err)
		}
	})
}

// userServer makes a virtual network (seed) with a server at srvAddr
// whose Authenticate takes the credentials for the user ID, under
// duplicate-login policy, and dial, which makes a client at addr logged in
// as "alice". Everything closes when the test ends.
func userServer(t *testing.T, seed int64, policy net.SessionPolicy) (*vnet.Network, *net.Host, func(addr netip.AddrPort) *net.Host) {
	t.Helper()
	n := vnet.New(seed)
	t.Cleanup(func() { n.Close() })
	scfg := resumeCfg
	scfg.DuplicateLogin = policy
	scfg.Authenticate = func(_ context.Context, r *net.AuthRequest) (net.AuthResult, error) {
		return net.AuthResult{User: string(r.Credentials)}, nil
	}
	scfg.Accept = true
	sconn, err := n.Listen(srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.NewHost(sconn, scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dial := func(addr netip.AddrPort) *net.Host {
		t.Helper()
		c, err := n.Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		h, err := net.NewHost(c, resumeCfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.DialWith(t.Context(), srvAddr, net.DialOptions{Credentials: []byte("alice")}); err != nil {
			t.Fatalf("dial from %s: %v", addr, err)
		}
		return h
	}
	return n, srv, dial
}

// A client whose process restarts (its keys and streams gone) logs in
// again as the same user while its old session is suspended: the login
// takes the session over, with its HostID, under either duplicate-login
// policy. The server sees EventBack (ErrSessionRestarted), never a
// disconnect and a connect; the new streams work both ways.
func TestRestartedClientTakesOverItsSession(t *testing.T) {
	for _, policy := range []net.SessionPolicy{net.SessionReplace, net.SessionRefuse} {
		synctest.Test(t, func(t *testing.T) {
			n, srv, dial := userServer(t, 17, policy)
			first := dial(cliAddr)
			id := first.ID()
			expect(t, srv, net.EventConnected, id)
			sendRange(t, first, net.ServerID, 0, 5)
			receiveAll(t, srv, id, 5)
			// The first process dies: nothing of it gets through again.
			n.SetFilter(func(from, to netip.AddrPort, b []byte) bool { return from == cliAddr || to == cliAddr })
			expect(t, srv, net.EventAway, id)

			second := dial(netip.MustParseAddrPort("10.0.0.3:5000")) // the restarted process
			if second.ID() != id {
				t.Fatalf("policy %v: the restarted client is %v, its session was %v", policy, second.ID(), id)
			}
			e := expect(t, srv, net.EventBack, id)
			if !errors.Is(e.Err, net.ErrSessionRestarted) || e.User == nil || e.User.ID != "alice" {
				t.Fatalf("back: err %v user %+v", e.Err, e.User)
			}
			sendRange(t, second, net.ServerID, 0, 5)
			receiveAll(t, srv, id, 5)
			sendRange(t, srv, id, 0, 5)
			expect(t, second, net.EventConnected, net.ServerID)
			receiveAll(t, second, net.ServerID, 5)
			st := srv.Stats()
			if st.Links != 1 || st.Resume.Suspended != 0 || st.Resume.Resumed != 1 || st.Auth.Replaced != 0 {
				t.Fatalf("policy %v: links %d, resume %+v, auth %+v", policy, st.Links, st.Resume, st.Auth)
			}
			if e, ok := srv.Poll(); ok {
				t.Fatalf("policy %v: extra event %v from %v (err %v)", policy, e.Kind, e.Peer, e.Err)
			}
		})
	}
}

// Under SessionMany several clients may share a user (the arena's windows
// on one computer share a profile), so the user alone does not say that a
// login is the suspended session's client restarted: a second client of
// the same user from another address gets a session of its own and the
// suspended one is left to resume or expire. A login from the suspended
// session's own address (a client that restarted on the same port: the
// old link could not be reached there any more) takes the session over.
func TestSessionManyTakesOverOnlyFromTheSameAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, srv, dial := userServer(t, 18, net.SessionMany)
		first := dial(cliAddr)
		id := first.ID()
		expect(t, srv, net.EventConnected, id)
		var cut atomic.Bool
		cut.Store(true)
		n.SetFilter(func(from, to netip.AddrPort, b []byte) bool {
			return cut.Load() && (from == cliAddr || to == cliAddr)
		})
		expect(t, srv, net.EventAway, id)

		// Another client of alice's, elsewhere: a session of its own.
		other := dial(netip.MustParseAddrPort("10.0.0.3:5000"))
		if other.ID() == id {
			t.Fatalf("a second client of the same user took over the suspended session %v", id)
		}
		expect(t, srv, net.EventConnected, other.ID())
		if st := srv.Stats(); st.Links != 2 || st.Resume.Suspended != 1 {
			t.Fatalf("links %d, resume %+v: the suspended session should stay", st.Links, st.Resume)
		}

		// The first process dies; it starts again on the same address.
		first.Close()
		cut.Store(false)
		restarted := dial(cliAddr)
		if restarted.ID() != id {
			t.Fatalf("the client restarted on its address is %v, its session was %v", restarted.ID(), id)
		}
		e := expect(t, srv, net.EventBack, id)
		if !errors.Is(e.Err, net.ErrSessionRestarted) || e.User == nil || e.User.ID != "alice" {
			t.Fatalf("back: err %v user %+v", e.Err, e.User)
		}
		sendRange(t, restarted, net.ServerID, 0, 5)
		receiveAll(t, srv, id, 5)
		st := srv.Stats()
		if st.Links != 2 || st.Resume.Suspended != 0 || st.Resume.Resumed != 1 {
			t.Fatalf("links %d, resume %+v", st.Links, st.Resume)
		}
		if e, ok := srv.Poll(); ok {
			t.Fatalf("extra event %v from %v (err %v)", e.Kind, e.Peer, e.Err)
		}
	})
}
