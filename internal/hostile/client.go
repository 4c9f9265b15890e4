package hostile

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	stdnet "net"
	"net/netip"
	stdsync "sync"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/server/lobby"
)

// Errors a handshake returns.
var (
	// ErrRejected: the server answered with a reject packet.
	ErrRejected = errors.New("hostile: rejected")
	// ErrNoAnswer: the server did not answer in time.
	ErrNoAnswer = errors.New("hostile: no answer")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("hostile: closed")
)

// RejectError says why the server refused a handshake.
type RejectError struct{ Reason byte }

func (e *RejectError) Error() string { return fmt.Sprintf("hostile: rejected, reason %d", e.Reason) }

// Unwrap makes errors.Is(err, ErrRejected) true.
func (e *RejectError) Unwrap() error { return ErrRejected }

// Listen opens a UDP socket on a loopback address ("127.0.0.9:0").
func Listen(local string) (*stdnet.UDPConn, error) {
	a, err := stdnet.ResolveUDPAddr("udp4", local)
	if err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	c, err := stdnet.ListenUDP("udp4", a)
	if err != nil {
		return nil, fmt.Errorf("hostile: listen %s: %w", local, err)
	}
	return c, nil
}

// Handshake is the state of a client handshake driven step by step.
type Handshake struct {
	priv   *ecdh.PrivateKey
	Pub    []byte
	Cookie []byte
	// Hello is the hello with the cookie as sent (for replays).
	Hello []byte
	AES   bool
	// ServerKey, if set, is the server's static key the client expects:
	// the hello names it and Finish refuses a welcome that proves another
	// (ErrServerKey). Empty: any key (ServerStatic reports it).
	ServerKey []byte
	// ServerStatic is the static key the server proved in Finish.
	ServerStatic []byte
	// Credentials, if not nil, are sent in an auth block (hello flag bit
	// 2): GetCookie learns the server's key from the cookie reply and
	// seals them to it (Auth), and the hellos with the cookie carry them.
	Credentials []byte
	// CookieKey is the static key the cookie reply named (with
	// Credentials).
	CookieKey []byte
	// Auth is the sealed auth block (with Credentials, after GetCookie).
	Auth []byte
}

// ErrServerKey: the server proved a static key other than
// Handshake.ServerKey.
var ErrServerKey = errors.New("hostile: server proved another key")

func (h *Handshake) hello(cookie []byte) []byte {
	var id [KeyIDSize]byte
	if len(h.ServerKey) > 0 {
		id = KeyID(h.ServerKey)
	}
	if h.Credentials != nil {
		var auth []byte
		if cookie != nil {
			auth = h.Auth
		}
		return AppendHelloAuth(nil, Version, h.flags(), h.Pub, id, cookie, auth)
	}
	return AppendHelloKey(nil, Version, h.flags(), h.Pub, id, cookie)
}

// NewHandshake draws an ephemeral X25519 key.
func NewHandshake(aes bool) (*Handshake, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("hostile: x25519: %w", err)
	}
	return &Handshake{priv: priv, Pub: priv.PublicKey().Bytes(), AES: aes}, nil
}

func (h *Handshake) flags() byte {
	if h.AES {
		return FlagAES
	}
	return 0
}

// exchange sends the hello pkt to server until an answer of one of kinds
// arrives. A cookie reply or a reject whose dial tag is not pkt's (a late
// answer to an earlier handshake on the same socket) is passed over, as
// engine/net's Dial drops it; the version mismatch reject carries no tag.
func exchange(ctx context.Context, c *stdnet.UDPConn, server netip.AddrPort, pkt []byte, kinds ...byte) ([]byte, error) {
	tag := pkt[4 : 4+DialTagSize]
	buf := make([]byte, 2048)
	wait := 200 * time.Millisecond
	for {
		if _, err := c.WriteToUDPAddrPort(pkt, server); err != nil {
			return nil, fmt.Errorf("hostile: send: %w", err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = c.SetReadDeadline(deadline)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				var ne stdnet.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, fmt.Errorf("hostile: read: %w", err)
			}
			if from != server || n == 0 || !tagged(buf[:n], tag) {
				continue
			}
			if buf[0] == KindReject {
				r, _, err := ParseReject(buf[:n])
				if err != nil {
					return nil, err
				}
				return nil, &RejectError{Reason: r}
			}
			for _, k := range kinds {
				if buf[0] == k {
					_ = c.SetReadDeadline(time.Time{})
					return append([]byte(nil), buf[:n]...), nil
				}
			}
		}
		if ctx.Err() != nil {
			_ = c.SetReadDeadline(time.Time{})
			return nil, fmt.Errorf("%w: %w", ErrNoAnswer, ctx.Err())
		}
		wait = min(wait*3/2, time.Second)
	}
}

// tagged reports whether b, if it is a cookie reply or a tagged reject,
// echoes tag; other packets pass.
func tagged(b, tag []byte) bool {
	switch {
	case b[0] == KindCookie && len(b) >= 3+DialTagSize:
		return bytes.Equal(b[3:3+DialTagSize], tag)
	case b[0] == KindReject && len(b) == RejectSize:
		return bytes.Equal(b[4:], tag)
	}
	return true
}

// GetCookie sends a hello without a cookie and waits for the cookie.
func (h *Handshake) GetCookie(ctx context.Context, c *stdnet.UDPConn, server netip.AddrPort) error {
	hello := h.hello(nil)
	b, err := exchange(ctx, c, server, hello, KindCookie)
	if err != nil {
		return err
	}
	var tag, cookie, key []byte
	if h.Credentials == nil {
		tag, cookie, err = ParseCookieTag(b)
	} else {
		tag, cookie, key, err = ParseCookieKey(b)
	}
	if err != nil {
		return err
	}
	if err := h.checkTag(tag); err != nil {
		return err
	}
	if h.Credentials != nil {
		if len(h.ServerKey) > 0 && !bytes.Equal(h.ServerKey, key) {
			return fmt.Errorf("%w (cookie reply): %x", ErrServerKey, key)
		}
		es, err := h.dh(key)
		if err != nil {
			return err
		}
		if h.Auth, err = SealCredentials(es, hello, key, h.Credentials); err != nil {
			return err
		}
		h.CookieKey = append([]byte(nil), key...)
	}
	h.Cookie = append([]byte(nil), cookie...)
	return nil
}

// dh is X25519 of the handshake's ephemeral key with peer.
func (h *Handshake) dh(peer []byte) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("hostile: server key: %w", err)
	}
	s, err := h.priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("hostile: ecdh: %w", err)
	}
	return s, nil
}

// checkTag checks a cookie reply's dial tag against the hello's key.
func (h *Handshake) checkTag(tag []byte) error {
	if !bytes.Equal(tag, h.Pub[:DialTagSize]) {
		return fmt.Errorf("%w: the cookie reply's dial tag %x is not the hello's %x", ErrMalformed, tag, h.Pub[:DialTagSize])
	}
	return nil
}

// EchoCookie sends the hello with the cookie once and does not wait: the
// server creates a link and sends a welcome that nobody confirms.
func (h *Handshake) EchoCookie(c *stdnet.UDPConn, server netip.AddrPort) error {
	h.Hello = h.hello(h.Cookie)
	if _, err := c.WriteToUDPAddrPort(h.Hello, server); err != nil {
		return fmt.Errorf("hostile: send: %w", err)
	}
	return nil
}

// Finish sends the hello with the cookie until the welcome arrives, opens
// it and returns the link keys and the welcome body.
func (h *Handshake) Finish(ctx context.Context, c *stdnet.UDPConn, server netip.AddrPort) (Keys, WelcomeBody, error) {
	h.Hello = h.hello(h.Cookie)
	b, err := exchange(ctx, c, server, h.Hello, KindWelcome)
	if err != nil {
		return Keys{}, WelcomeBody{}, err
	}
	w, err := ParseWelcome(b)
	if err != nil {
		return Keys{}, WelcomeBody{}, err
	}
	if h.CookieKey != nil && !bytes.Equal(h.CookieKey, w.Static) {
		return Keys{}, WelcomeBody{}, fmt.Errorf("%w: the welcome proves %x, the cookie reply named %x", ErrServerKey, w.Static, h.CookieKey)
	}
	ee, err := h.dh(w.ServerPub)
	if err != nil {
		return Keys{}, WelcomeBody{}, err
	}
	es, err := h.dh(w.Static)
	if err != nil {
		return Keys{}, WelcomeBody{}, err
	}
	k, err := DeriveClientKeys(ee, es, Transcript(h.Hello, b), w.Cipher)
	if err != nil {
		return Keys{}, WelcomeBody{}, err
	}
	body, err := w.Open(k)
	if err != nil {
		return k, body, err
	}
	h.ServerStatic = append([]byte(nil), w.Static...)
	if len(h.ServerKey) > 0 && !bytes.Equal(h.ServerKey, w.Static) {
		return Keys{}, WelcomeBody{}, fmt.Errorf("%w: %x", ErrServerKey, w.Static)
	}
	return k, body, nil
}

// Peer is a peer link the server announced (PeerAdd).
type Peer struct {
	ID   uint32
	seal *Sealer
	pn   atomic.Uint64
}

// Client is a connected hostile client: it holds a real server link (keys,
// packet numbers, a KCP stream for lobby calls, keepalive pings) and lets
// its owner send anything on it.
type Client struct {
	Conn   *stdnet.UDPConn
	Server netip.AddrPort
	ID     uint32
	HS     *Handshake
	seal   *Sealer
	pn     atomic.Uint64

	mu    stdsync.Mutex
	kcp   *kcp.KCP
	rx    streamReader // the server link's reliable messages
	sn    uint32       // the next sequence number of the server-link stream
	out   [][]byte     // KCP output waiting to be sealed and sent
	peers map[uint32]*Peer

	proxy *lobby.LobbyProxy
	disp  *rmi.Dispatcher
	reqs  *rmi.Requests

	// Counters of what crossed this client's socket.
	BytesOut, DatagramsOut, BytesIn, DatagramsIn atomic.Uint64
	// ReliableIn counts reliable messages from the server and their bytes.
	ReliableIn, ReliableBytesIn atomic.Uint64
	// PeerIn counts authenticated datagrams from peers (relayed or fanned).
	PeerIn atomic.Uint64
	// ServerClosed is set when the server closed the link (close frame).
	ServerClosed atomic.Bool
	// StreamBroken is set when the server's reliable stream could not be
	// read on (a length over MaxReliable or of more than 3 bytes, a KCP
	// message longer than a segment): nothing more is read from it.
	StreamBroken atomic.Bool
	// MaxIn is the largest datagram received.
	MaxIn atomic.Int64
	muted atomic.Bool

	done chan struct{}
	wg   stdsync.WaitGroup
}

// Answer is the server's answer to a lobby call.
type Answer struct {
	Result lobby.Result
	Match  uint32 // Joined
	// Matches, Next and Total are a MatchList page.
	Matches     []lobby.MatchInfo
	Next, Total uint32
}

// Dial runs the whole handshake from a new socket bound to local and
// starts the client's reader and ticker.
func Dial(ctx context.Context, local string, server netip.AddrPort) (*Client, error) {
	c, err := Listen(local)
	if err != nil {
		return nil, err
	}
	cl, err := DialOn(ctx, c, server)
	if err != nil {
		c.Close()
		return nil, err
	}
	return cl, nil
}

// DialOn is Dial on an open socket, which the client then owns.
// The socket is closed with the client, or on failure after the
// handshake.
func DialOn(ctx context.Context, conn *stdnet.UDPConn, server netip.AddrPort) (*Client, error) {
	hs, err := NewHandshake(false)
	if err != nil {
		return nil, err
	}
	if err := hs.GetCookie(ctx, conn, server); err != nil {
		return nil, err
	}
	keys, body, err := hs.Finish(ctx, conn, server)
	if err != nil {
		return nil, err
	}
	seal, err := NewSealer(keys)
	if err != nil {
		return nil, err
	}
	c := &Client{Conn: conn, Server: server, ID: body.ClientID, HS: hs, seal: seal, peers: map[uint32]*Peer{}, done: make(chan struct{})}
	c.kcp = kcp.NewKCP(KCPConv, func(buf []byte, size int) {
		c.out = append(c.out, append([]byte(nil), buf[:size]...))
	})
	c.kcp.NoDelay(1, 10, 2, 1)
	c.kcp.WndSize(1024, 1024)
	c.kcp.SetMtu(KCPMTU)
	c.reqs = rmi.NewRequests(rmi.SenderFunc(func(_ net.HostID, _ net.Delivery, data []byte) error {
		return c.SendReliable(append([]byte{TagUser}, data...))
	}), rmi.RequestConfig{MaxOutstanding: 1024})
	c.proxy = lobby.NewLobbyProxy(c.reqs)
	c.disp = rmi.NewDispatcher()
	c.disp.SetRequests(c.reqs)
	if err := c.disp.Attach(&lobby.LobbyReplyStub{
		ChatLine: func(rmi.CallInfo, uint32, string, string) error { return nil },
	}); err != nil {
		return nil, err
	}
	// Confirm the link at once, as engine/net does.
	if err := c.SendFrames(AppendFrame(nil, FramePing, make([]byte, 8))); err != nil {
		return nil, err
	}
	c.wg.Add(2)
	go c.read()
	go c.tick()
	// engine/sync counts a client as connected once it reported its LAN
	// addresses (none here): its first reliable message.
	if err := c.SendReliable([]byte{TagControl, opCandidates, 0}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// NextPN takes the next packet number of the server link.
func (c *Client) NextPN() uint64 { return c.pn.Add(1) }

// Seal returns a sealed datagram on the server link carrying plaintext
// (one or more frames), with the next packet number, without sending it.
func (c *Client) Seal(plaintext []byte) []byte {
	return c.seal.Seal(make([]byte, 0, DataHeaderSize+len(plaintext)+TagSize), c.ID, c.NextPN(), plaintext)
}

// SendRaw writes b to the server as it is.
func (c *Client) SendRaw(b []byte) error {
	n, err := c.Conn.WriteToUDPAddrPort(b, c.Server)
	if err != nil {
		return fmt.Errorf("hostile: send: %w", err)
	}
	c.BytesOut.Add(uint64(n))
	c.DatagramsOut.Add(1)
	return nil
}

// SendFrames seals plaintext (frames) on the server link and sends it.
func (c *Client) SendFrames(plaintext []byte) error { return c.SendRaw(c.Seal(plaintext)) }

// SendSegments sends hand-made KCP segments in one KCP frame.
func (c *Client) SendSegments(segs ...Segment) error {
	var body []byte
	for _, s := range segs {
		body = AppendSegment(body, s)
	}
	return c.SendFrames(AppendFrame(nil, FrameKCP, body))
}

// SendReliable sends a message on the client's real KCP stream, framed as
// Skein frames it (docs/PROTOCOL.md, "Reliable stream framing"): its
// length as a uvarint, then its bytes, cut into KCP messages of one
// segment each.
func (c *Client) SendReliable(m []byte) error {
	c.mu.Lock()
	framed := append(binary.AppendUvarint(nil, uint64(len(m))), m...)
	r := 0
	for len(framed) > 0 && r >= 0 {
		k := min(len(framed), KCPMTU-KCPOverhead)
		if r = c.kcp.Send(framed[:k]); r >= 0 {
			c.sn++
		}
		framed = framed[k:]
	}
	c.kcp.Update()
	out := c.takeOut()
	c.mu.Unlock()
	c.sendOut(out)
	if r < 0 {
		return fmt.Errorf("hostile: kcp send %d bytes: %d", len(m), r)
	}
	return nil
}

// TakeSN reserves n sequence numbers of the server-link stream for
// hand-made segments and returns the first. The client's own KCP core does
// not know: use the lobby calls before, not after.
func (c *Client) TakeSN(n uint32) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	sn := c.sn
	c.sn += n
	return sn
}

// Mute stops everything the client sends by itself (keepalive pings,
// pongs, KCP acks and retransmissions), so that its link can be moved to a
// spoofed address and stay there.
func (c *Client) Mute() { c.muted.Store(true) }

func (c *Client) takeOut() [][]byte {
	out := c.out
	c.out = nil
	return out
}

func (c *Client) sendOut(out [][]byte) {
	if c.muted.Load() {
		return
	}
	for _, seg := range out {
		_ = c.SendFrames(AppendFrame(nil, FrameKCP, seg))
	}
}

// Peer returns the peer link the server announced for id, if any.
func (c *Client) Peer(id uint32) *Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers[id]
}

// Peers returns the IDs of the announced peers.
func (c *Client) Peers() []uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint32, 0, len(c.peers))
	for id := range c.peers {
		ids = append(ids, id)
	}
	return ids
}

// SealPeer seals plaintext as a datagram of the peer link to p, as this
// client (with the peer link's next packet number).
func (c *Client) SealPeer(p *Peer, plaintext []byte) []byte {
	return p.seal.Seal(nil, c.ID, p.pn.Add(1), plaintext)
}

// SendRelayed wraps datagrams in relay records for to, in one relay frame
// on the server link.
func (c *Client) SendRelayed(to uint32, inner ...[]byte) error {
	var body []byte
	for _, d := range inner {
		body = AppendRelayRecord(body, to, d)
	}
	return c.SendFrames(AppendFrame(nil, FrameRelay, body))
}

// answerOf returns the Answer of a request's results: a call over the rate
// limit (rmi.ErrRateLimited) is an Answer with lobby.ResultRateLimited.
func answerOf(a Answer, err error) (Answer, error) {
	if errors.Is(err, rmi.ErrRateLimited) {
		return Answer{Result: lobby.ResultRateLimited}, nil
	}
	return a, err
}

// answerWait carries a request's Answer, or its error, from the request's
// callback to wait.
type answerWait struct {
	ch   chan Answer
	errc chan error
}

func newAnswerWait() answerWait {
	return answerWait{make(chan Answer, 1), make(chan error, 1)}
}

// deliver is the request callback's end: the Answer, through answerOf.
func (w answerWait) deliver(a Answer, err error) {
	if a, err := answerOf(a, err); err != nil {
		w.errc <- err
	} else {
		w.ch <- a
	}
}

// wait waits for the answer of a request sent (pend, err), delivered to w.
func (c *Client) wait(ctx context.Context, w answerWait, pend rmi.Pending, err error) (Answer, error) {
	if err != nil {
		return Answer{}, err
	}
	select {
	case a := <-w.ch:
		return a, nil
	case err := <-w.errc:
		return Answer{}, err
	case <-ctx.Done():
		pend.Cancel()
		return Answer{}, fmt.Errorf("hostile: lobby answer: %w", ctx.Err())
	case <-c.done:
		return Answer{}, ErrClosed
	}
}

// joinCall sends a request answered by a Result and a match, and waits.
func (c *Client) joinCall(ctx context.Context, send func(done func(lobby.Result, uint32, error)) (rmi.Pending, error)) (Answer, error) {
	w := newAnswerWait()
	pend, err := send(func(r lobby.Result, m uint32, err error) {
		w.deliver(Answer{Result: r, Match: m}, err)
	})
	return c.wait(ctx, w, pend, err)
}

// Lobby is the client's lobby proxy, for calls sent without waiting.
func (c *Client) Lobby() *lobby.LobbyProxy { return c.proxy }

// List asks for the first page of the match list (ListMatches after 0,
// the server's page size) and waits for the answer.
func (c *Client) List(ctx context.Context) (Answer, error) { return c.ListPage(ctx, 0, 0) }

// ListRaw sends a ListMatches request with sequence number seq as it is,
// past the client's rmi.Requests (which would hold a flood to its
// outstanding limit); its answer is not waited for.
func (c *Client) ListRaw(seq, after uint32, limit uint8) error {
	e := rmi.StartRequest(lobby.Lobby_ListMatches, 2)
	defer rmi.PutEncoder(e)
	e.EncodeUint32(after)
	e.EncodeUint8(limit)
	frame := append([]byte{TagUser}, e.Bytes()...)
	binary.BigEndian.PutUint32(frame[1+rmi.HeaderSize:], seq)
	return c.SendReliable(frame)
}

// ListPage calls ListMatches and waits for the answer.
func (c *Client) ListPage(ctx context.Context, after uint32, limit uint8) (Answer, error) {
	w := newAnswerWait()
	pend, err := c.proxy.ListMatches(net.ServerID, rmi.Reliable, after, limit, func(r lobby.Result, ms []lobby.MatchInfo, next, total uint32, err error) {
		w.deliver(Answer{Result: r, Matches: ms, Next: next, Total: total}, err)
	})
	return c.wait(ctx, w, pend, err)
}

// Create calls CreateMatch and waits for the answer.
func (c *Client) Create(ctx context.Context, name string, max uint8, options []byte) (Answer, error) {
	return c.joinCall(ctx, func(done func(lobby.Result, uint32, error)) (rmi.Pending, error) {
		return c.proxy.CreateMatch(net.ServerID, rmi.Reliable, name, max, options, done)
	})
}

// Join calls JoinMatch and waits for the answer.
func (c *Client) Join(ctx context.Context, match uint32) (Answer, error) {
	return c.joinCall(ctx, func(done func(lobby.Result, uint32, error)) (rmi.Pending, error) {
		return c.proxy.JoinMatch(net.ServerID, rmi.Reliable, match, done)
	})
}

// QuickJoin calls QuickJoin and waits for the answer.
func (c *Client) QuickJoin(ctx context.Context) (Answer, error) {
	return c.joinCall(ctx, func(done func(lobby.Result, uint32, error)) (rmi.Pending, error) {
		return c.proxy.QuickJoin(net.ServerID, rmi.Reliable, done)
	})
}

// Leave calls LeaveMatch and waits for the answer.
func (c *Client) Leave(ctx context.Context) (Answer, error) {
	w := newAnswerWait()
	pend, err := c.proxy.LeaveMatch(net.ServerID, rmi.Reliable, func(r lobby.Result, err error) {
		w.deliver(Answer{Result: r}, err)
	})
	return c.wait(ctx, w, pend, err)
}

// WaitPeer waits until the server announced a peer link to id.
func (c *Client) WaitPeer(ctx context.Context, id uint32) (*Peer, error) {
	for {
		if p := c.Peer(id); p != nil {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("hostile: waiting for peer %d: %w", id, ctx.Err())
		case <-c.done:
			return nil, ErrClosed
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (c *Client) read() {
	defer c.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := c.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-c.done:
				return
			default:
			}
			var ne stdnet.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		c.BytesIn.Add(uint64(n))
		c.DatagramsIn.Add(1)
		if int64(n) > c.MaxIn.Load() {
			c.MaxIn.Store(int64(n))
		}
		c.handle(buf[:n], from)
	}
}

func (c *Client) handle(b []byte, from netip.AddrPort) {
	sender, _, err := ParseDataHeader(b)
	if err != nil {
		return
	}
	if sender != ServerID {
		c.mu.Lock()
		p := c.peers[sender]
		c.mu.Unlock()
		if p != nil {
			if _, _, _, err := p.seal.Open(b); err == nil {
				c.PeerIn.Add(1)
			}
		}
		return
	}
	_, _, plain, err := c.seal.Open(b)
	if err != nil {
		return
	}
	frames, err := ParseFrames(plain)
	if err != nil {
		return
	}
	var reply []byte
	for _, f := range frames {
		switch f.Type {
		case FrameKCP:
			c.mu.Lock()
			c.kcp.Input(f.Body, kcp.IKCP_PACKET_REGULAR, true)
			var msgs [][]byte
			for {
				n := c.kcp.PeekSize()
				if n < 0 {
					break
				}
				m := make([]byte, n)
				c.kcp.Recv(m)
				msgs = c.rx.push(msgs, m)
			}
			if c.rx.broken {
				c.StreamBroken.Store(true)
			}
			out := c.takeOut()
			c.mu.Unlock()
			c.sendOut(out)
			for _, m := range msgs {
				c.message(m)
			}
		case FramePing:
			if len(f.Body) == 8 {
				reply = AppendFrame(reply, FramePong, append(append([]byte(nil), f.Body...), 0, 0))
			}
		case FrameFanned:
			c.PeerIn.Add(1)
		case FrameClose:
			c.ServerClosed.Store(true)
		}
	}
	if reply != nil && !c.muted.Load() {
		_ = c.SendFrames(reply)
	}
}

// streamReader cuts a link's reliable stream (docs/PROTOCOL.md, "Reliable
// stream framing": each message's length as a uvarint, then its bytes)
// into messages.
type streamReader struct {
	rx     []byte // the bytes not yet read as messages
	broken bool
}

// maxStreamHeld bounds streamReader.rx: one message being reassembled
// (its length and MaxReliable bytes) and one segment.
const maxStreamHeld = 3 + MaxReliable + StreamSegment

// push takes one KCP message of the stream and appends the messages it
// completes to msgs. A stream that cannot be read on, as engine/net
// decides it (a length over MaxReliable or of more than 3 bytes, a KCP
// message longer than a segment), is broken: its buffer is freed and
// nothing more is read from it, so it never holds more than
// maxStreamHeld bytes.
func (r *streamReader) push(msgs [][]byte, m []byte) [][]byte {
	if r.broken {
		return msgs
	}
	if len(m) > StreamSegment {
		r.fail()
		return msgs
	}
	r.rx = append(r.rx, m...)
	cut := false
	for {
		n, h := binary.Uvarint(r.rx)
		if h < 0 || h > 3 || (h == 0 && len(r.rx) >= 3) || n > MaxReliable {
			r.fail()
			return msgs
		}
		if h == 0 || uint64(len(r.rx)-h) < n {
			break
		}
		msgs = append(msgs, r.rx[h:h+int(n)])
		r.rx = r.rx[h+int(n):]
		cut = true
	}
	if cut {
		// Keep the rest in a fresh array: the messages keep the old one.
		r.rx = append([]byte(nil), r.rx...)
	}
	return msgs
}

// fail breaks the stream and frees its buffer.
func (r *streamReader) fail() {
	r.broken = true
	r.rx = nil
}

func (c *Client) message(m []byte) {
	c.ReliableIn.Add(1)
	c.ReliableBytesIn.Add(uint64(len(m)))
	if p, ok, err := ParsePeerAdd(m); ok && err == nil {
		s, err := NewSealer(p.Keys)
		if err != nil {
			return
		}
		c.mu.Lock()
		c.peers[p.Peer] = &Peer{ID: p.Peer, seal: s}
		c.mu.Unlock()
		return
	}
	if len(m) > 1 && m[0] == TagUser {
		_ = c.disp.Dispatch(rmi.CallInfo{From: net.ServerID, Context: rmi.Reliable}, m[1:])
	}
}

func (c *Client) tick() {
	defer c.wg.Done()
	// KCP's 10 ms interval only while reliable data is in flight; an idle
	// client wakes every 100 ms (thousands of them run in one test).
	t := time.NewTimer(10 * time.Millisecond)
	defer t.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.mu.Lock()
			c.kcp.Update()
			out := c.takeOut()
			busy := c.kcp.WaitSnd() > 0
			c.mu.Unlock()
			if busy {
				t.Reset(10 * time.Millisecond)
			} else {
				t.Reset(100 * time.Millisecond)
			}
			c.sendOut(out)
			if now.Sub(lastPing) >= time.Second && !c.muted.Load() {
				lastPing = now
				var ping [8]byte
				binary.LittleEndian.PutUint64(ping[:], uint64(now.UnixNano()))
				_ = c.SendFrames(AppendFrame(nil, FramePing, ping[:]))
			}
		}
	}
}

// Close stops the client without telling the server (an attacker's
// goodbye is silence) and closes its socket.
func (c *Client) Close() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	close(c.done)
	err := c.Conn.Close()
	c.wg.Wait()
	return err
}
