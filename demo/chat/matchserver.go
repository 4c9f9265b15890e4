package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/trust"
	"github.com/skein-dev/skein/server/lobby"
)

// chatMatch is the name of the match that holds the chat on a match server.
//
// TODO(lead): the match server has no lobby chat yet (issue 7). Until it
// does, -server joins (or creates) a match named "chat" through the lobby
// and chats in its group, which also has the server as a member. When the
// lobby chat exists, join it here instead.
const chatMatch = "chat"

// runMatchServer joins the chat on the match server at o.server.
func runMatchServer(ctx context.Context, o options, in <-chan string, out io.Writer, log hclog.Logger) error {
	addr, err := netip.ParseAddrPort(o.server)
	if err != nil {
		return fmt.Errorf("-server: %v", err)
	}
	var keys []net.ServerKey
	var chk *trust.Check // no -server-key: the key remembered for addr
	how := "pinned"
	if o.key != "" {
		k, err := net.ParseServerKey(o.key)
		if err != nil {
			return fmt.Errorf("-server-key: %w", err)
		}
		keys = []net.ServerKey{k}
	} else {
		store, err := trust.Open(o.known)
		if err == nil {
			chk, err = store.Check(addr.String())
		}
		if err != nil {
			return fmt.Errorf("cannot check the match server's key: %w", err)
		}
	}
	var verify func(net.ServerKey) error
	if chk != nil {
		verify = chk.Verify
	}
	cl, err := dial(ctx, addr, log, keys, verify)
	var ce *trust.ChangedError
	if errors.As(err, &ce) {
		return fmt.Errorf("REFUSED the match server at %v: its key changed: %s is remembered, it proved %s; a reinstalled server or someone in the middle: if its operator confirms the new key, delete the line for %s in %s", addr, ce.Remembered, ce.Seen.Fingerprint(), ce.Server, ce.Path)
	}
	if err != nil {
		return fmt.Errorf("cannot reach the match server at %v: %w", addr, err)
	}
	defer cl.Close()
	k, _ := cl.Host().ServerKey()
	fmt.Fprintf(out, "* connected to the match server at %v\n", addr)
	if chk != nil {
		if st, _ := chk.Status(); st == trust.New {
			how = "new server: remembered; compare it with the server's -print-key"
		} else {
			how = "the one remembered for it"
		}
	}
	fmt.Fprintf(out, "* match server key %s (%s)\n", k.Fingerprint(), how)

	s, err := newSession(o.name, cl, out, log)
	if err != nil {
		return err
	}
	lob := lobby.NewLobbyProxy(cl)
	var request uint32 // each lobby request has a new ID
	next := func() uint32 { request++; return request }
	tries := 0
	// The lobby's answers arrive as calls from the server, through the
	// same dispatcher as the chat's calls.
	err = s.calls.Attach(&lobby.LobbyReplyStub{
		MatchList: func(info rmi.CallInfo, _ uint32, result uint8, matches []lobby.MatchInfo, after, _ uint32) error {
			if info.From != net.ServerID {
				return nil
			}
			if lobby.Result(result) != lobby.OK {
				s.finish(sessionEnd{why: endLost, err: fmt.Errorf("the match server refused the list: %v", lobby.Result(result))})
				return nil
			}
			for _, m := range matches {
				if m.Name == chatMatch && m.Players < m.MaxPlayers {
					return lob.JoinMatch(net.ServerID, rmi.Reliable, next(), m.ID)
				}
			}
			if after != 0 { // the list goes on: its next page
				return lob.ListMatches(net.ServerID, rmi.Reliable, next(), after, 0)
			}
			return lob.CreateMatch(net.ServerID, rmi.Reliable, next(), chatMatch, 16, []byte(chatKind))
		},
		Joined: func(info rmi.CallInfo, _ uint32, result uint8, _ uint32) error {
			if info.From != net.ServerID || lobby.Result(result) == lobby.OK {
				return nil // the member events follow
			}
			if tries++; tries < 3 && (lobby.Result(result) == lobby.Full || lobby.Result(result) == lobby.NotFound) {
				return lob.ListMatches(net.ServerID, rmi.Reliable, next(), 0, 0) // the list changed: try again
			}
			s.finish(sessionEnd{why: endLost, err: fmt.Errorf("the match server refused: %v", lobby.Result(result))})
			return nil
		},
		Left: func(rmi.CallInfo, uint32, uint8) error { return nil }, // our leave event ends the session
	})
	if err != nil {
		return err
	}
	s.leave = func() error { return lob.LeaveMatch(net.ServerID, rmi.Reliable, next()) }
	if err := lob.ListMatches(net.ServerID, rmi.Reliable, next(), 0, 0); err != nil {
		return err
	}
	if end := s.run(ctx, in, nil, nil); end.why != endQuit {
		return end.err
	}
	return nil
}
