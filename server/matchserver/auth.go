package matchserver

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/net"
)

// Auth modes of the match server (its -auth flag): who a client is.
//
// Open (the default, for the demo and a LAN) admits everyone; a client may
// send a profile (AppendProfile: a stable ID it generated and a display
// name) and is then known as "Name#abcdef" (its cleaned name and the first
// six hex digits of its ID), with the cleaned name as user data. Nothing
// is proven: two clients may claim one profile, so the match server allows
// a user any number of sessions in open mode.
//
// Token admits only clients with a connect token (engine/token) signed by
// the operator's key, checked inline; the token's user ID is the user, one
// session each (a new login replaces the old, or is refused).
//
// An embedder sets Config.Net.Authenticate to a hook of its own.

// profileMagic starts a profile's credentials.
const profileMagic = "skein-profile v1\n"

// MaxProfileID bounds a profile's ID (hex digits).
const MaxProfileID = 32

// AppendProfile encodes a local profile as credentials for open mode: the
// profile's ID (hex, at most MaxProfileID digits) and display name.
func AppendProfile(b []byte, id, name string) []byte {
	b = append(b, profileMagic...)
	b = append(b, id...)
	b = append(b, '\n')
	return append(b, name...)
}

// ParseProfile decodes what AppendProfile wrote. The name comes back
// cleaned (chat.CleanName) and may be empty.
func ParseProfile(b []byte) (id, name string, err error) {
	rest, ok := strings.CutPrefix(string(b), profileMagic)
	if !ok {
		return "", "", errors.New("matchserver: not a profile")
	}
	id, name, ok = strings.Cut(rest, "\n")
	if !ok || id == "" || len(id) > MaxProfileID {
		return "", "", errors.New("matchserver: profile ID missing or too long")
	}
	if _, err := hex.DecodeString(id); err != nil { // an odd length is an error too
		return "", "", errors.New("matchserver: profile ID is not hex")
	}
	return strings.ToLower(id), chat.CleanName(name), nil
}

// OpenAuth is the open mode's net.Config.Authenticate: everyone is
// admitted; a client that sent a profile gets its user ID and name (see
// the mode's description above), one that sent nothing or something else
// stays anonymous. It does no I/O: run it inline.
func OpenAuth(_ context.Context, req *net.AuthRequest) (net.AuthResult, error) {
	id, name, err := ParseProfile(req.Credentials)
	if err != nil {
		return net.AuthResult{}, nil
	}
	if name == "" {
		name = "player"
	}
	return net.AuthResult{User: name + "#" + id[:min(6, len(id))], Data: []byte(name)}, nil
}

// DisplayName is the name to show for a user ID of either mode: the part
// before the last '#' of an open-mode ID, else the ID itself.
func DisplayName(user string) string {
	if i := strings.LastIndexByte(user, '#'); i > 0 {
		return user[:i]
	}
	return user
}
