// Package lobbytest is a synchronous lobby client for tests and load tools:
// each call sends a lobby request and waits for its answer, while a
// goroutine pumps the client's events.
package lobbytest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	stdsync "sync"
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
	reqs  *rmi.Requests
	disp  *rmi.Dispatcher
	// Chat receives the lobby's chat lines (dropped when full).
	Chat   chan ChatLine
	Events chan sync.Event
	done   chan struct{}
	frame  int // the size of the frame being dispatched (pump only)

	mu      stdsync.Mutex
	last    []byte // the last request frame sent, for RepeatJoin
	repeat  atomic.Uint32
	repeats chan joinAnswer
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
	result lobby.Result
	match  net.HostID
	err    error
}

// ChatLine is a lobby chat line.
type ChatLine struct {
	From net.HostID
	Name string // the name the sender set, or empty
	Text string
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
	return Wrap(sc)
}

// Wrap makes a Client of sc, a client connected to a match server (on
// any conn: an engine/net/vnet test's too), and starts pumping its events.
// The Client owns sc from now on; on an error, sc is closed.
func Wrap(sc *sync.Client) (*Client, error) {
	c := &Client{
		Client:  sc,
		disp:    rmi.NewDispatcher(),
		Chat:    make(chan ChatLine, 64),
		Events:  make(chan sync.Event, 4096),
		done:    make(chan struct{}),
		repeats: make(chan joinAnswer, 1),
	}
	c.reqs = rmi.NewRequests(recorder{c}, rmi.RequestConfig{})
	c.proxy = lobby.NewLobbyProxy(c.reqs)
	c.disp.SetRequests(c.reqs)
	if err := c.disp.Attach(&lobby.LobbyReplyStub{
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

// recorder sends through the client and keeps the last request frame.
type recorder struct{ c *Client }

func (r recorder) Send(to net.HostID, d net.Delivery, data []byte) error {
	if id, _, err := rmi.ParseHeader(data); err == nil && id >= lobby.Lobby_ListMatches && id <= lobby.Lobby_LeaveMatch {
		r.c.mu.Lock()
		r.c.last = append(r.c.last[:0], data...)
		r.c.mu.Unlock()
	}
	return r.c.Client.Send(to, d, data)
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
			if c.repeated(e.Data) {
				continue
			}
			c.frame = len(e.Data)
			if _, err := c.disp.DispatchSyncEvent(e); err == nil {
				continue
			}
		}
		if e.Kind == sync.EventDisconnected {
			_, _ = c.disp.DispatchSyncEvent(e) // ends the pending requests
		}
		select {
		case c.Events <- e:
		default:
		}
	}
}

// repeated takes the answer to a request RepeatJoin sent again: the
// Requests has no pending call for it any more.
func (c *Client) repeated(frame []byte) bool {
	seq := c.repeat.Load()
	if seq == 0 || len(frame) < rmi.ResponseHeaderSize || frame[0] != 0 || frame[1] != 0 || binary.BigEndian.Uint32(frame[2:]) != seq {
		return false
	}
	c.repeat.Store(0)
	a := joinAnswer{err: &rmi.StatusError{Status: rmi.Status(frame[rmi.ResponseHeaderSize-1])}}
	if a.err.(*rmi.StatusError).Status == rmi.StatusOK {
		d := rmi.NewDecoder(frame[rmi.ResponseHeaderSize:])
		if d.DecodeArrayHeader(2) {
			a.result.DecodeRMI(&d)
			a.match = net.HostID(d.DecodeUint32())
		}
		a.err = d.Finish()
	}
	offer(c.repeats, a)
	return true
}

// Close disconnects and waits for the pump to end.
func (c *Client) Close() error {
	err := c.Client.Close()
	<-c.done
	return err
}

// ErrRateLimited: the server answered RateLimited.
var ErrRateLimited = errors.New("lobby: rate limited")

// result turns a request's failure into a Result where the lobby has one:
// a call over the rate limit (rmi.ErrRateLimited) is ResultRateLimited,
// with no error, as the lobby's tests expect of it.
func result(r lobby.Result, err error) (lobby.Result, error) {
	if errors.Is(err, rmi.ErrRateLimited) {
		return lobby.ResultRateLimited, nil
	}
	return r, err
}

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
		if p.Result == lobby.ResultRateLimited {
			// Over the call rate: ask again a little later.
			select {
			case <-time.After(250 * time.Millisecond):
				continue
			case <-ctx.Done():
				return all, fmt.Errorf("list after %d: %w (%w)", after, ErrRateLimited, ctx.Err())
			}
		}
		if p.Result != lobby.ResultOK {
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
	var p Page
	err := rmi.Wait(ctx, func(done func(error)) (rmi.Pending, error) {
		return c.proxy.ListMatches(net.ServerID, rmi.Reliable, after, limit, func(r lobby.Result, ms []lobby.MatchInfo, next, total uint32, err error) {
			p = Page{r, ms, next, int(total), c.frame} // on the pump: c.frame is this answer's
			done(err)
		})
	})
	if p.Result, err = result(p.Result, err); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("waiting for the lobby's answer: %w", err)
		}
		return Page{}, err
	}
	return p, nil
}

// Create creates a match and joins it.
func (c *Client) Create(ctx context.Context, name string, max int, options []byte) (lobby.Result, net.HostID, error) {
	r, m, err := c.proxy.CreateMatchWait(ctx, net.ServerID, rmi.Reliable, name, uint8(max), options)
	r, err = result(r, err)
	return r, net.HostID(m), err
}

// Join joins match id.
func (c *Client) Join(ctx context.Context, id net.HostID) (lobby.Result, net.HostID, error) {
	r, m, err := c.proxy.JoinMatchWait(ctx, net.ServerID, rmi.Reliable, uint32(id))
	r, err = result(r, err)
	return r, net.HostID(m), err
}

// RepeatJoin sends the last request again, as it was (the same sequence
// number), as a client that retried would, and returns the server's
// answer to it (a join's results).
func (c *Client) RepeatJoin(ctx context.Context) (lobby.Result, net.HostID, error) {
	return c.Resend(ctx, c.LastRequest())
}

// LastRequest returns a copy of the last lobby request frame sent (nil
// before the first), for Resend.
func (c *Client) LastRequest() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return nil
	}
	return append([]byte(nil), c.last...)
}

// Resend sends frame, a request frame sent earlier (LastRequest), again as
// it was (its sequence number too), as a client that retried would, and
// returns the server's answer to it (a join's results; the answer's status
// as an *rmi.StatusError, such as rmi.ErrStale for a request older than
// the server's reply window).
func (c *Client) Resend(ctx context.Context, frame []byte) (lobby.Result, net.HostID, error) {
	if len(frame) < rmi.RequestHeaderSize {
		return 0, 0, errors.New("lobbytest: no request to repeat")
	}
	c.repeat.Store(binary.BigEndian.Uint32(frame[2:]))
	if err := c.Client.Send(net.ServerID, net.Delivery{Reliable: true}, frame); err != nil {
		return 0, 0, err
	}
	select {
	case a := <-c.repeats:
		r, err := result(a.result, a.err)
		return r, a.match, err
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("waiting for the lobby's answer: %w", ctx.Err())
	}
}

// QuickJoin joins the fullest open match or creates one.
func (c *Client) QuickJoin(ctx context.Context) (lobby.Result, net.HostID, error) {
	r, m, err := c.proxy.QuickJoinWait(ctx, net.ServerID, rmi.Reliable)
	r, err = result(r, err)
	return r, net.HostID(m), err
}

// Say sends a lobby chat line.
func (c *Client) Say(text string) error { return c.proxy.Chat(net.ServerID, rmi.Reliable, text) }

// SetName sets the name the lobby shows with this client's chat lines.
func (c *Client) SetName(name string) error {
	return c.proxy.SetName(net.ServerID, rmi.Reliable, name)
}

// Leave leaves the current match.
func (c *Client) Leave(ctx context.Context) (lobby.Result, error) {
	return result(c.proxy.LeaveMatchWait(ctx, net.ServerID, rmi.Reliable))
}
