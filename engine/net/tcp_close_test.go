package net

import (
	"context"
	"testing"
	"time"
)

// Replies to TCP clients that hang up at once: the host's answer (a cookie
// here) races the connection's reader closing its queue. It must be
// dropped, never a send on a closed channel (which crashed the server).
func TestTCPMuxWriteToClosingConn(t *testing.T) {
	srv, ln := listenWithTCP(t, Config{SourceHandshakeRate: -1, HandshakeRate: 1 << 20})
	mux := NewTCPMuxConfig(ln, TCPConfig{MaxConns: 1 << 16, MaxConnsPerIP: 1 << 16})
	if err := srv.AddConn(mux); err != nil {
		t.Fatal(err)
	}
	var pub [keySize]byte
	hl := appendHello(nil, hello{Version: ProtocolVersion, Pub: pub})
	end := time.Now().Add(15 * time.Second)
	for i := 0; i < 1000 && time.Now().Before(end); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := DialTCP(ctx, srv.LocalAddr())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			c.WriteTo(hl, srv.LocalAddr())
		}
		c.Close()
	}
	legitRoundTrip(t, srv, nil)
}
