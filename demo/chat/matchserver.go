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
	// The lobby's calls are requests: their answers come back through the
	// same dispatcher as the chat's calls, which hands them to reqs.
	reqs := rmi.NewRequests(cl, rmi.RequestConfig{})
	s.calls.SetRequests(reqs)
	lob := lobby.NewLobbyProxy(reqs)
	tries := 0
	var listed func(result lobby.Result, matches []lobby.MatchInfo, after, _ uint32, err error)
	joined := func(result lobby.Result, _ uint32, err error) {
		switch {
		case err == nil && result == lobby.ResultOK:
			return // the member events follow
		case err == nil && (result == lobby.ResultFull || result == lobby.ResultNotFound):
			if tries++; tries < 3 { // the list changed: try again
				if _, err = lob.ListMatches(net.ServerID, rmi.Reliable, 0, 0, listed); err == nil {
					return
				}
			}
		}
		if err == nil {
			err = fmt.Errorf("the match server refused: %v", result)
		}
		s.finish(sessionEnd{why: endLost, err: err})
	}
	listed = func(result lobby.Result, matches []lobby.MatchInfo, after, _ uint32, err error) {
		if err == nil && result != lobby.ResultOK {
			err = fmt.Errorf("the match server refused the list: %v", result)
		}
		if err == nil {
			_, err = func() (rmi.Pending, error) {
				for _, m := range matches {
					if m.Name == chatMatch && m.Players < m.MaxPlayers {
						return lob.JoinMatch(net.ServerID, rmi.Reliable, m.ID, joined)
					}
				}
				if after != 0 { // the list goes on: its next page
					return lob.ListMatches(net.ServerID, rmi.Reliable, after, 0, listed)
				}
				return lob.CreateMatch(net.ServerID, rmi.Reliable, chatMatch, 16, []byte(chatKind), joined)
			}()
		}
		if err != nil {
			s.finish(sessionEnd{why: endLost, err: err})
		}
	}
	// Our leave event ends the session: the answer is not needed.
	s.leave = func() error { _, err := lob.LeaveMatch(net.ServerID, rmi.Reliable, nil); return err }
	if _, err := lob.ListMatches(net.ServerID, rmi.Reliable, 0, 0, listed); err != nil {
		return err
	}
	if end := s.run(ctx, in, nil, nil); end.why != endQuit {
		return end.err
	}
	return nil
}
