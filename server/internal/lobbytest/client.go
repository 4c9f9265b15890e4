// Package lobbytest is a synchronous lobby client for tests and load tools:
// each call sends a lobby request and waits for its answer, while a
// goroutine pumps the client's events.
package lobbytest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
	"github.com/skein-dev/skein/server/lobby"
)

// Client is a sync.Client with blocking lobby calls. Events other than
// lobby answers go to Events (dropped when it is full: tests read what they
// need), which is closed when the client is.
type Client struct {
	*sync.Client
	proxy *lobby.LobbyProxy
	disp  *rmi.Dispatcher
	req   atomic.Uint32
	lists chan listAnswer
	joins chan joinAnswer
	lefts chan leftAnswer
	// Chat receives the lobby's chat lines (dropped when full).
	Chat   chan ChatLine
	Events chan sync.Event
	done   chan struct{}
	frame  int // the size of the frame being dispatched (pump only)
}

type listAnswer struct {
	req  uint32
	page Page
}

// Page is one answer to ListMatches.
type Page struct {
	Result  lobby.Result
	Matches []lobby.MatchInfo
	// Next is the after of the following page (0: this one is the last).
	Next uint32
	// Total counts the server's open matches.
	Total int
	// Bytes is the size of the answer's frame.
	Bytes int
}

type joinAnswer struct {
	req    uint32
	result lobby.Result
	match  net.HostID
}

// ChatLine is a lobby chat line.
type ChatLine struct {
	From net.HostID
	Name string // the name the sender set, or empty
	Text string
}

type leftAnswer struct {
	req    uint32
	result lobby.Result
}

// Dial connects a new client, on a loopback socket, to the server at addr.
func Dial(ctx context.Context, addr netip.AddrPort, cfg sync.ClientConfig) (*Client, error) {
	return DialFrom(ctx, "127.0.0.1:0", addr, cfg)
}

// DialFrom is Dial from a socket bound to local ("127.0.0.9:0"), so that a
// test can tell its clients' traffic from others' by address.
func DialFrom(ctx context.Context, local string, addr netip.AddrPort, cfg sync.ClientConfig) (*Client, error) {
	sc, err := sync.DialClient(ctx, local, addr, cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		Client: sc,
		proxy:  lobby.NewLobbyProxy(sc),
		disp:   rmi.NewDispatcher(),
		lists:  make(chan listAnswer, 16),
		joins:  make(chan joinAnswer, 16),
		lefts:  make(chan leftAnswer, 16),
		Chat:   make(chan ChatLine, 64),
		Events: make(chan sync.Event, 4096),
		done:   make(chan struct{}),
	}
	if err := c.disp.Attach(&lobby.LobbyReplyStub{
		MatchList: func(_ rmi.CallInfo, req uint32, r uint8, ms []lobby.MatchInfo, next, total uint32) error {
			offer(c.lists, listAnswer{req, Page{lobby.Result(r), ms, next, int(total), c.frame}})
			return nil
		},
		Joined: func(_ rmi.CallInfo, req uint32, r uint8, m uint32) error {
			offer(c.joins, joinAnswer{req, lobby.Result(r), net.HostID(m)})
			return nil
		},
		Left: func(_ rmi.CallInfo, req uint32, r uint8) error {
			offer(c.lefts, leftAnswer{req, lobby.Result(r)})
			return nil
		},
		ChatLine: func(_ rmi.CallInfo, from uint32, name, text string) error {
			offer(c.Chat, ChatLine{net.HostID(from), name, text})
			return nil
		},
	}); err != nil {
		sc.Close()
		return nil, err
	}
	// The pump lives as long as the client (Close ends it), not as long as
	// the dial's ctx.
	go c.pump() //nolint:gosec // G118: see above
	return c, nil
}

// offer hands an answer over without ever blocking the pump: when the
// channel is full (answers nobody waited for, such as a flood's), the
// oldest is dropped, so that the newest, the one a caller waits for, is
// never lost.
func offer[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

func (c *Client) pump() {
	defer close(c.done)
	defer close(c.Events) // the pump is its only writer
	for {
		e, err := c.Next(context.Background())
		if err != nil {
			return
		}
		if e.Kind == sync.EventMessage && e.Peer == net.ServerID && e.Group == net.NoHost {
			info := rmi.CallInfo{From: e.Peer, Context: rmi.Reliable, Received: e.Received}
			c.frame = len(e.Data)
			if err := c.disp.Dispatch(info, e.Data); err == nil {
				continue
			}
		}
		select {
		case c.Events <- e:
		default:
		}
	}
}

// Close disconnects and waits for the pump to end.
func (c *Client) Close() error {
	err := c.Client.Close()
	<-c.done
	return err
}

func wait[T any](ctx context.Context, ch chan T, match func(T) bool) (T, error) {
	for {
		select {
		case a := <-ch:
			if match(a) {
				return a, nil
			}
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("waiting for the lobby's answer: %w", ctx.Err())
		}
	}
}

// ErrRateLimited: the server answered RateLimited.
var ErrRateLimited = errors.New("lobby: rate limited")

// List returns every open match, asking for one page after another (and
// again, a little later, for a page refused as RateLimited).
func (c *Client) List(ctx context.Context) ([]lobby.MatchInfo, error) {
	var all []lobby.MatchInfo
	after := uint32(0)
	for {
		p, err := c.ListPage(ctx, after, 0)
		if err != nil {
			return all, err
		}
		if p.Result == lobby.RateLimited {
			// Over the call rate: ask again a little later.
			select {
			case <-time.After(250 * time.Millisecond):
				continue
			case <-ctx.Done():
				return all, fmt.Errorf("list after %d: %w (%w)", after, ErrRateLimited, ctx.Err())
			}
		}
		if p.Result != lobby.OK {
			return all, fmt.Errorf("list after %d: %v", after, p.Result)
		}
		all = append(all, p.Matches...)
		if p.Next == 0 {
			return all, nil
		}
		after = p.Next
	}
}

// ListPage asks for one page of the open matches: those above after, at
// most limit (0: as many as the server sends).
func (c *Client) ListPage(ctx context.Context, after uint32, limit uint8) (Page, error) {
	req := c.req.Add(1)
	if err := c.proxy.ListMatches(net.ServerID, rmi.Reliable, req, after, limit); err != nil {
		return Page{}, err
	}
	a, err := wait(ctx, c.lists, func(a listAnswer) bool { return a.req == req })
	return a.page, err
}

func (c *Client) awaitJoin(ctx context.Context, req uint32, err error) (lobby.Result, net.HostID, error) {
	if err != nil {
		return 0, 0, err
	}
	a, err := wait(ctx, c.joins, func(a joinAnswer) bool { return a.req == req })
	return a.result, a.match, err
}

// Create creates a match and joins it.
func (c *Client) Create(ctx context.Context, name string, max int, options []byte) (lobby.Result, net.HostID, error) {
	req := c.req.Add(1)
	return c.awaitJoin(ctx, req, c.proxy.CreateMatch(net.ServerID, rmi.Reliable, req, name, uint8(max), options))
}

// Join joins match id.
func (c *Client) Join(ctx context.Context, id net.HostID) (lobby.Result, net.HostID, error) {
	req := c.req.Add(1)
	return c.awaitJoin(ctx, req, c.proxy.JoinMatch(net.ServerID, rmi.Reliable, req, uint32(id)))
}

// RepeatJoin sends JoinMatch again with the previous request's ID, as a
// client that retried would.
func (c *Client) RepeatJoin(ctx context.Context, id net.HostID) (lobby.Result, net.HostID, error) {
	req := c.req.Load()
	return c.awaitJoin(ctx, req, c.proxy.JoinMatch(net.ServerID, rmi.Reliable, req, uint32(id)))
}

// QuickJoin joins the fullest open match or creates one.
func (c *Client) QuickJoin(ctx context.Context) (lobby.Result, net.HostID, error) {
	req := c.req.Add(1)
	return c.awaitJoin(ctx, req, c.proxy.QuickJoin(net.ServerID, rmi.Reliable, req))
}

// Say sends a lobby chat line.
func (c *Client) Say(text string) error { return c.proxy.Chat(net.ServerID, rmi.Reliable, text) }

// SetName sets the name the lobby shows with this client's chat lines.
func (c *Client) SetName(name string) error {
	return c.proxy.SetName(net.ServerID, rmi.Reliable, name)
}

// Leave leaves the current match.
func (c *Client) Leave(ctx context.Context) (lobby.Result, error) {
	req := c.req.Add(1)
	if err := c.proxy.LeaveMatch(net.ServerID, rmi.Reliable, req); err != nil {
		return 0, err
	}
	a, err := wait(ctx, c.lefts, func(a leftAnswer) bool { return a.req == req })
	return a.result, err
}
