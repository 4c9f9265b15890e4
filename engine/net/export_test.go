package net

import (
	"net/netip"
	"time"
)

// SetHelloVersion makes Dial announce another protocol version, for tests of
// the version refusal. It returns a function that restores the real one.
func SetHelloVersion(v uint16) (restore func()) {
	helloVersion = v
	return func() { helloVersion = ProtocolVersion }
}

// ListenWithTCP starts a server and a TCP listener on its port number.
var ListenWithTCP = listenWithTCP

// MakeHellos returns n second hellos of fresh clients at from (each with
// the cookie srv gives that client, and, if creds is not nil, creds(i)
// sealed to srv's current key), for benchmarks of the server's side of the
// handshake.
func MakeHellos(srv *Host, from netip.AddrPort, n int, creds func(i int) []byte) ([][]byte, error) {
	out := make([][]byte, n)
	now := time.Now()
	for i := range out {
		priv, err := newKeyPair()
		if err != nil {
			return nil, err
		}
		hl := hello{Version: ProtocolVersion, Cookie: nil}
		copy(hl.Pub[:], priv.PublicKey().Bytes())
		if creds != nil {
			hl.Flags |= helloAuth
			s := srv.Identity().Current()
			es, err := agree(priv, s[:])
			if err != nil {
				return nil, err
			}
			if hl.Auth, err = sealCredentials(es, &hl, &s, creds(i)); err != nil {
				return nil, err
			}
		}
		hl.Cookie = srv.cookies.make(now, from, hl.Pub[:])
		out[i] = appendHello(nil, hl)
	}
	return out, nil
}

// ServeHello runs the server's side of a handshake on hello b from from,
// answering on conn, as the reading goroutine would.
func (h *Host) ServeHello(b []byte, from netip.AddrPort, conn PacketConn) {
	h.handleHello(b, from, time.Now(), conn)
}

// DropLinks removes every link of h, telling no one.
func (h *Host) DropLinks() {
	h.mu.RLock()
	ls := make([]*link, 0, len(h.byID))
	for _, l := range h.byID {
		ls = append(ls, l)
	}
	h.mu.RUnlock()
	for _, l := range ls {
		h.removeLink(l, ErrClosedLocally)
	}
}

// RaceEnabled reports whether the race detector is on (allocation counts
// then mean nothing: sync.Pool drops items on purpose).
const RaceEnabled = raceEnabled
