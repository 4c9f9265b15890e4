package game

import (
	"errors"
	"fmt"
	stdnet "net"
	"net/netip"
	"strconv"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/trust"
)

// knownServers opens the store of remembered server keys
// (Options.KnownServers; "": the user's config directory). Nil with an
// error: the player is told, and a server joined without a key is refused
// rather than trusted without remembering it.
func (g *Game) knownServers() (*trust.Store, error) {
	if g.known == nil {
		s, err := trust.Open(g.opt.KnownServers)
		if err != nil {
			return nil, err
		}
		g.known = s
	}
	return g.known, nil
}

// checkServer returns the check of the key of server ("host:port", as the
// player typed it), for a server joined without a key.
func (g *Game) checkServer(server string) (*trust.Check, error) {
	s, err := g.knownServers()
	if err != nil {
		return nil, fmt.Errorf("cannot check the server's key: %w", err)
	}
	chk, err := s.Check(server)
	if err != nil {
		return nil, fmt.Errorf("cannot check the server's key: %w", err)
	}
	return chk, nil
}

// trustNote is the connect screen's line on a remembered key: new (now
// remembered: compare it with the server's) or known.
func trustNote(chk *trust.Check) string {
	st, k := chk.Status()
	switch st {
	case trust.New:
		return fmt.Sprintf("new server: key %s remembered (compare it with the server's -print-key)", k.Fingerprint())
	case trust.Known:
		return fmt.Sprintf("server key %s (the one remembered for %s)", k.Fingerprint(), chk.Server())
	case trust.Unchecked:
	}
	return ""
}

// connectError is the menu's message for a failed connection; a server
// whose key changed gets a refusal that names both fingerprints and what
// to do.
func connectError(err error) string {
	var ce *trust.ChangedError
	if errors.As(err, &ce) {
		return fmt.Sprintf("REFUSED: the key of %s changed.\nRemembered %s, the server proved %s.\nA reinstalled server or someone in the middle: if its operator confirms the new key,\ndelete the line for %s in %s.",
			ce.Server, ce.Remembered, ce.Seen.Fingerprint(), ce.Server, ce.Path)
	}
	var ske *net.ServerKeyError
	if errors.As(err, &ske) {
		return fmt.Sprintf("REFUSED: %v", err)
	}
	return fmt.Sprintf("Could not connect: %v", err)
}

// serverName is the name a server's key is remembered under: the host the
// player typed (a name or an address) and the port dialled (7777 when the
// player typed none).
func serverName(typed string, addr netip.AddrPort) string {
	host, _, err := stdnet.SplitHostPort(typed)
	if err != nil {
		host = typed
	}
	return stdnet.JoinHostPort(host, strconv.Itoa(int(addr.Port())))
}
