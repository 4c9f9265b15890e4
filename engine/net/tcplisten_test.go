package net

import (
	stdnet "net"
	"testing"
)

// listenWithTCP starts a server host on 127.0.0.1 and a TCP listener on the
// same port number, as a server with the TCP fallback has. Another TCP
// socket on the machine may already hold the UDP socket's port number, so
// it tries a few ports. Both close when the test ends.
func listenWithTCP(t testing.TB, cfg Config) (*Host, stdnet.Listener) {
	t.Helper()
	cfg.Accept = true
	var lastErr error
	for range 20 {
		srv, err := Listen("127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := stdnet.Listen("tcp", srv.LocalAddr().String())
		if err == nil {
			t.Cleanup(func() { srv.Close() })
			return srv, ln
		}
		lastErr = err
		srv.Close()
	}
	t.Fatalf("no port free for both UDP and TCP: %v", lastErr)
	return nil, nil
}
