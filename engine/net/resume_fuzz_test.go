package net

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net/vnet"
)

// FuzzSuspendedLink feeds arbitrary datagrams, and mutations of the
// client's own datagrams that the server already took (replays), to a
// server whose link to that client is suspended, from the client's
// address or another: nothing may resume the link or move its path
// (only a fresh datagram sealed with the link's keys may), and nothing
// may panic.
func FuzzSuspendedLink(f *testing.F) {
	n := vnet.New(3)
	defer n.Close()
	srvAddr, cliAddr := netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:1")
	var mu sync.Mutex
	var seen [][]byte
	cutoff := false
	n.SetRouter(vnet.RouterFunc(func(p *vnet.Packet) bool {
		mu.Lock()
		defer mu.Unlock()
		if cutoff {
			return false // the client is gone: only the fuzzer speaks for it
		}
		if p.To == srvAddr && len(seen) < 64 {
			seen = append(seen, bytes.Clone(p.Data))
		}
		return true
	}))
	sc, _ := n.Listen(srvAddr)
	cc, _ := n.Listen(cliAddr)
	srv, err := NewHost(sc, Config{Accept: true, ResumeGrace: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	cli, err := NewHost(cc, Config{ResumeGrace: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	defer cli.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cli.Dial(ctx, srvAddr); err != nil {
		f.Fatal(err)
	}
	for i := range 10 {
		cli.Send(ServerID, Reliable, []byte{byte(i)})
		cli.Send(ServerID, Unreliable, []byte{byte(i)})
	}
	if _, err := srv.Next(ctx); err != nil { // connected
		f.Fatal(err)
	}
	for range 20 { // the messages: every datagram above has been taken
		if _, err := srv.Next(ctx); err != nil {
			f.Fatal(err)
		}
	}
	mu.Lock()
	cutoff = true
	seeds := seen
	mu.Unlock()
	l := srv.link(cli.ID())
	l.mu.Lock()
	srv.suspendLocked(l, time.Now())
	l.mu.Unlock()
	if e, _ := srv.Poll(); e.Kind != EventAway {
		f.Fatalf("no away event: %v", e.Kind)
	}
	for _, s := range seeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Add(appendDataHeader(nil, dataHeader{From: cli.ID(), PN: 1 << 20}), true)
	other := netip.MustParseAddrPort("10.0.6.6:6")
	f.Fuzz(func(t *testing.T, b []byte, fromClient bool) {
		from := other
		if fromClient {
			from = cliAddr
		}
		srv.demux(bytes.Clone(b), from, time.Now(), new(rxScratch), srv.conn)
		l.mu.Lock()
		suspended, path, check := l.suspended, l.path, l.pathCheck
		l.mu.Unlock()
		if !suspended {
			t.Fatalf("%x from %v resumed the link", b, from)
		}
		if a, _ := directAddr(path); a != cliAddr || check != nil {
			t.Fatalf("%x from %v: path %v, check %v", b, from, pathString(path), check)
		}
		if e, ok := srv.Poll(); ok && e.Kind != EventMessage {
			t.Fatalf("%x from %v: event %v", b, from, e.Kind)
		}
	})
}
