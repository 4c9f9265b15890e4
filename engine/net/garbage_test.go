package net_test

import (
	"encoding/binary"
	"math/rand/v2"
	stdnet "net"
	"sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// TestGarbageDoesNotDisturbAConnectedClient throws thousands of random
// datagrams (0 to 2,000 bytes, some with valid packet kinds and the client's
// HostID) at a server on loopback while a client streams reliable messages
// to it and receives unreliable ones.
func TestGarbageDoesNotDisturbAConnectedClient(t *testing.T) {
	srv, cli := pair(t, net.Config{}, net.Config{})
	attacker, err := stdnet.ListenUDP("udp", &stdnet.UDPAddr{IP: stdnet.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	target := stdnet.UDPAddrFromAddrPort(srv.LocalAddr())

	const garbage = 5000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(42, 42))
		buf := make([]byte, 2000)
		kinds := []byte{0x01, 0x02, 0x03, 0x04, 0x10, 0x10, 0x10, 0xff}
		for i := 0; i < garbage; i++ {
			b := buf[:r.IntN(2001)]
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			if len(b) > 0 {
				b[0] = kinds[r.IntN(len(kinds))]
			}
			if len(b) >= 5 && b[0] == 0x10 && r.IntN(2) == 0 {
				// Pretend to be the client (or the server).
				binary.LittleEndian.PutUint32(b[1:], uint32(cli.ID()))
			}
			attacker.WriteTo(b, target)
			if i%200 == 0 {
				time.Sleep(time.Millisecond) // stay below the socket buffer
			}
		}
	}()

	const count = 2000
	go sendAll(t, cli, net.ServerID, count, nil)
	receiveAll(t, srv, cli.ID(), count)
	wg.Wait()

	// The server still answers, both ways.
	if err := srv.Send(cli.ID(), net.Reliable, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if e := expect(t, cli, net.EventMessage, net.ServerID); string(e.Data) != "ok" {
		t.Fatalf("got %q", e.Data)
	}
	st := srv.Stats()
	if st.Links != 1 {
		t.Fatalf("server has %d links, want 1", st.Links)
	}
	// Everything the attacker sent was counted as a drop, or answered as a
	// handshake (random hellos get a cookie or a refusal).
	time.Sleep(50 * time.Millisecond)
	dropped := st.Drops.Total()
	if dropped < garbage/2 {
		t.Fatalf("only %d of %d garbage datagrams counted as drops: %v", dropped, garbage, st.Drops)
	}
	ls, _ := srv.LinkStats(cli.ID())
	t.Logf("server drops %v; link drops %v", st.Drops, ls.Drops)
}
