package netplay

import (
	"fmt"
	"strings"

	"github.com/skein-dev/skein/engine/net"
)

// JoinScheme starts a join link: "skein://host:port#KEY", the server's
// address and the public key it must prove (net.ServerKey's text form).
const JoinScheme = "skein://"

// JoinLink returns the join link of a server: its address and its key, for
// a player to paste into the menu's server field or -server.
func JoinLink(server string, key net.ServerKey) string {
	return JoinScheme + server + "#" + key.String()
}

// ParseJoin splits what a player typed: "host:port", "host:port#KEY" or a
// join link "skein://host:port#KEY" (the port may be left out). pinned
// reports whether it names a key: the connection then succeeds only with
// the server that proves that key. Without one the player trusts the
// server on first use and is shown its fingerprint.
func ParseJoin(s string) (server string, key net.ServerKey, pinned bool, err error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, JoinScheme)
	server, k, hasKey := strings.Cut(s, "#")
	server = strings.TrimSuffix(strings.TrimSpace(server), "/")
	if !hasKey {
		return server, key, false, nil
	}
	key, err = net.ParseServerKey(k)
	if err != nil {
		return "", key, false, fmt.Errorf("the server key after # is not a key: %w", err)
	}
	return server, key, true, nil
}
