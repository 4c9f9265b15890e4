package sync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	stdnet "net"
	"net/netip"
	"slices"
	stdsync "sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/portmap"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Net configures the underlying host. Net.ServerKeys pins the server's
	// key, Net.ServerCAs trusts the keys an operator signed, and
	// Net.VerifyServerKey checks it: DialClient then fails with a
	// *net.ServerKeyError for any other server, over UDP and TCP alike.
	// Empty: the client trusts the server on first use
	// (Host().ServerKey() gives the key to show or remember).
	Net net.Config
	// Logger receives the logs under the name "sync" (and the host's under
	// "net" if Net.Logger is nil). Nil: no logs.
	Logger hclog.Logger
	// EventQueue bounds the messages waiting for the application. Zero
	// means net.DefaultEventQueue (8192). Their bytes are bounded by
	// Net.EventQueueBytes, as in the net host's own queue.
	EventQueue int
	// ClockInterval is how often the client samples the server's clock
	// (the first few samples come faster). Zero means 1 s.
	ClockInterval time.Duration
	// UDPTimeout is how long DialClient waits for the server over UDP
	// before trying TCP. Zero means 2 s.
	UDPTimeout time.Duration
	// NoTCPFallback makes DialClient fail rather than use TCP.
	NoTCPFallback bool
	// Retry makes Connect dial again with back-off while the server does
	// not answer or refuses for a reason that may pass (busy, full), until
	// its context ends (net.Host.DialRetry). Off: one attempt.
	Retry bool
	// NoNATCheck skips the NAT-type check that otherwise runs in the
	// background once connected (Client.NAT, EventNATType).
	NoNATCheck bool
	// Credentials are sent sealed in the handshake for the server's
	// Net.Authenticate (net.DialOptions; at most net.MaxCredentials
	// bytes): a connect token (engine/token) or a profile. A one-time
	// token that reached the server over UDP is spent: if DialClient then
	// falls back to TCP, the server refuses it as replayed. A client that
	// restarts with the same credentials while its old session is
	// suspended takes that session over: the same HostID and groups
	// (docs/SEMANTICS.md, "Reconnect and resume").
	Credentials []byte
	// NoPortMap switches port mapping off. By default, once connected
	// over UDP on a real socket, the client asks its home router for a
	// mapping of its port (PCP, NAT-PMP, then UPnP-IGD; engine/portmap),
	// offers the mapped public address to its peers as a candidate, keeps
	// the mapping renewed and deletes it on Close. See PortMapping.
	NoPortMap bool
	// PortMap configures the port mapping (gateway, protocols, timeouts);
	// the zero value asks the default route's gateway with every protocol.
	// A nil PortMap.Logger means Logger.
	PortMap portmap.Config

	tcp bool // connected over TCP (set by DialClient)
}

// Client is a game's connection to a Server and to the peers it shares
// groups with. Its own goroutine handles engine messages (peer keys, member
// events, clock samples); the application takes events with FrameMove,
// Poll or Next.
type Client struct {
	*events
	log   hclog.Logger
	epoch time.Time
	cfg   ClientConfig
	clock clock
	start chan struct{} // closed once connected: clock sync begins

	mu      stdsync.RWMutex
	groups  map[net.HostID]*groupView
	peers   map[net.HostID]struct{}
	nat     *net.NATReport               // this client's, once checked
	peerNAT map[net.HostID]net.NATReport // as the server passed them on

	pm clientPortMap // client_portmap.go
}

// DialClient opens a UDP socket on local (for example ":0", or
// "127.0.0.1:0" in tests), starts a Client on it and connects it to the
// server at addr. If the server does not answer over UDP within
// cfg.UDPTimeout, it tries the server's TCP fallback on the same address
// (unless cfg.NoTCPFallback): the game then works with every peer relayed,
// and Transport says "tcp".
func DialClient(ctx context.Context, local string, addr netip.AddrPort, cfg ClientConfig) (*Client, error) {
	conn, err := net.ListenUDP(local)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	udpTimeout := cfg.UDPTimeout
	if udpTimeout <= 0 {
		udpTimeout = 2 * time.Second
	}
	uctx, cancel := context.WithTimeout(ctx, udpTimeout)
	err = c.Connect(uctx, addr)
	cancel()
	if err == nil {
		return c, nil
	}
	c.Close()
	if cfg.NoTCPFallback || !errors.Is(err, net.ErrHandshakeTimeout) || ctx.Err() != nil {
		return nil, err
	}
	tc, terr := net.DialTCP(ctx, addr)
	if terr != nil {
		return nil, fmt.Errorf("%w (and TCP: %w)", err, terr)
	}
	cfg.tcp = true
	c, err = NewClient(tc, cfg)
	if err != nil {
		tc.Close()
		return nil, err
	}
	if err := c.Connect(ctx, addr); err != nil {
		c.Close()
		return nil, err
	}
	c.log.Info("UDP blocked: connected over TCP, every peer will be relayed", "server", addr)
	return c, nil
}

// Transport reports how the client reaches the server: "udp", or "tcp"
// when UDP was blocked.
func (c *Client) Transport() string {
	if c.cfg.tcp {
		return "tcp"
	}
	return "udp"
}

// NewClient starts a Client on conn, which it owns from now on. Call
// Connect next.
func NewClient(conn net.PacketConn, cfg ClientConfig) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.EventQueue <= 0 {
		cfg.EventQueue = net.DefaultEventQueue
	}
	if cfg.ClockInterval <= 0 {
		cfg.ClockInterval = time.Second
	}
	ncfg := cfg.Net
	ncfg.Accept = false
	if ncfg.Logger == nil {
		ncfg.Logger = cfg.Logger
	}
	h, err := net.NewHost(conn, ncfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		events:  newEvents(cfg.EventQueue, cfg.Net.EventQueueBytes),
		log:     cfg.Logger.Named("sync"),
		epoch:   time.Now(),
		cfg:     cfg,
		start:   make(chan struct{}),
		groups:  make(map[net.HostID]*groupView),
		peers:   make(map[net.HostID]struct{}),
		peerNAT: make(map[net.HostID]net.NATReport),
	}
	c.h = h
	c.wg.Add(1)
	go c.loop()
	return c, nil
}

// Connect runs the handshake with the server at addr (again and again with
// back-off until ctx ends, if ClientConfig.Retry is set).
func (c *Client) Connect(ctx context.Context, addr netip.AddrPort) error {
	dial := c.h.DialWith
	if c.cfg.Retry {
		dial = c.h.DialRetryWith
	}
	if err := dial(ctx, addr, net.DialOptions{Credentials: c.cfg.Credentials}); err != nil {
		return err
	}
	// Tell the server our LAN addresses, for peers behind the same NAT.
	b := appendControl(nil, control{Op: opCandidates, Addrs: localCandidates(c.h.LocalAddr())})
	if err := c.h.Send(net.ServerID, net.Reliable, b); err != nil {
		return err
	}
	close(c.start)
	if !c.cfg.NoNATCheck {
		c.wg.Add(1)
		go c.checkNAT() //nolint:gosec // G118: the check outlives Connect's ctx (a dial deadline); it ends with the client (c.done) or natCheckTimeout
	}
	c.startPortMap()
	return nil
}

// localCandidates lists the addresses peers on our LAN may reach this
// socket at: its own address if bound to one, else every non-loopback
// IPv4 address of the machine's interfaces, and, when the socket is
// dual-stack (bound to "::"), its global IPv6 addresses, which peers with
// IPv6 of their own reach without any NAT (at most maxAddrs, IPv4 first).
func localCandidates(local netip.AddrPort) []netip.AddrPort {
	if !local.Addr().IsUnspecified() {
		return []netip.AddrPort{local}
	}
	var ifaddrs []netip.Addr
	addrs, _ := stdnet.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			ifaddrs = append(ifaddrs, p.Addr())
		}
	}
	return interfaceCandidates(local, ifaddrs)
}

// interfaceCandidates is localCandidates for a socket bound to an
// unspecified address, given the machine's interface addresses.
func interfaceCandidates(local netip.AddrPort, ifaddrs []netip.Addr) []netip.AddrPort {
	dual := local.Addr().Is6()
	var out, v6 []netip.AddrPort
	for _, a := range ifaddrs {
		switch {
		case a.IsLoopback() || a.IsLinkLocalUnicast():
		case a.Is4() || a.Is4In6():
			out = append(out, netip.AddrPortFrom(a.Unmap(), local.Port()))
		case dual && a.IsGlobalUnicast():
			v6 = append(v6, netip.AddrPortFrom(a, local.Port()))
		}
	}
	out = append(out, v6...)
	return out[:min(len(out), maxAddrs)]
}

// Host returns the underlying net host (for statistics and addresses).
func (c *Client) Host() *net.Host { return c.h }

// ID returns the HostID the server gave this client.
func (c *Client) ID() net.HostID { return c.h.ID() }

func (c *Client) loop() {
	defer c.wg.Done()
	var tick <-chan time.Time
	start := c.start
	sent := 0
	var t *time.Timer
	for {
		select {
		case <-c.done:
			if t != nil {
				t.Stop()
			}
			return
		case <-start:
			start = nil // a nil channel: this case fires once
			t = time.NewTimer(0)
			tick = t.C
		case <-tick:
			c.sampleClock()
			sent++
			next := c.cfg.ClockInterval
			if sent < clockSamples {
				next = min(next, 100*time.Millisecond)
			}
			t.Reset(next)
		case <-c.readyIfRoom(c.h):
			c.pump(c.h, c.handle)
		case <-c.resume:
		}
	}
}

func (c *Client) now() time.Duration { return time.Since(c.epoch) }

func (c *Client) sampleClock() {
	b := appendControl(nil, control{Op: opTimeReq, T1: int64(c.now())})
	if err := c.h.Send(net.ServerID, net.Unreliable.OnChannel(controlChannel), b); err != nil {
		// Unreliable anyway: the next sample is taken on schedule.
		c.log.Debug("clock sample not sent", "error", err)
	}
}

// handle processes one net event on the loop goroutine.
func (c *Client) handle(ev net.Event) {
	switch ev.Kind {
	case net.EventConnected:
		if ev.Peer == net.ServerID {
			c.q.Push(Event{Kind: EventConnected, Peer: net.ServerID, Received: ev.Received})
		}
	case net.EventPathChange:
		c.q.Push(Event{Kind: EventRelayStateChange, Peer: ev.Peer, Relayed: ev.Relayed, Err: ev.Err, Received: ev.Received})
	case net.EventAway:
		c.q.Push(Event{Kind: EventAway, Peer: ev.Peer, Err: ev.Err, Received: ev.Received})
	case net.EventBack:
		c.q.Push(Event{Kind: EventBack, Peer: ev.Peer, Received: ev.Received})
	case net.EventDisconnected:
		if ev.Peer == net.ServerID {
			c.mu.Lock()
			clear(c.groups)
			clear(c.peers)
			c.mu.Unlock()
			c.q.Push(Event{Kind: EventDisconnected, Peer: net.ServerID, Err: ev.Err, Received: ev.Received})
			return
		}
		c.log.Debug("peer link down", "peer", ev.Peer, "reason", ev.Err)
	case net.EventMessage:
		c.message(ev)
	}
}

// message handles a message from the server or a peer: engine control
// messages (from the server only) or an application message for the queue.
// Anything malformed or unexpected is dropped and counted (see Drops).
func (c *Client) message(ev net.Event) {
	if len(ev.Data) == 0 {
		c.drop(net.DropMalformed)
		c.log.Debug("empty message", "from", ev.Peer)
		return
	}
	if ev.Data[0] == tagControl {
		if ev.Peer != net.ServerID {
			c.drop(net.DropUnexpected)
			c.log.Debug("control message from a peer dropped", "peer", ev.Peer)
			return
		}
		ctl, err := parseControl(ev.Data[1:])
		if err != nil {
			c.drop(net.DropMalformed)
			c.log.Warn("bad control message from server", "error", err)
			return
		}
		switch ctl.Op {
		case opTimeReq, opCandidates, opNATReport:
			c.drop(net.DropUnexpected)
			c.log.Debug("control message a server does not send", "op", ctl.Op)
			return
		}
		c.control(ctl, ev.Received)
		return
	}
	m, ok := message(ev)
	if !ok {
		c.drop(net.DropMalformed)
		c.log.Debug("bad message", "peer", ev.Peer)
		return
	}
	c.q.Push(m)
}

// control applies a control message from the server.
func (c *Client) control(ctl control, now time.Time) {
	switch ctl.Op {
	case opPeerAdd:
		if err := c.h.AddPeer(ctl.Peer, ctl.Keys, c.h.RelayPath(ctl.Peer)); err != nil {
			c.log.Warn("add peer", "peer", ctl.Peer, "error", err)
			return
		}
		// Known as a peer before any event about it is queued: the
		// application may Send to it as soon as it sees one.
		c.mu.Lock()
		c.peers[ctl.Peer] = struct{}{}
		c.mu.Unlock()
		if c.cfg.tcp {
			c.q.Push(Event{Kind: EventRelayStateChange, Peer: ctl.Peer, Relayed: true, Err: net.ErrUDPBlocked, Received: now})
		} else if err := c.h.Punch(ctl.Peer, ctl.Addrs); err != nil {
			// The peer was added just above: only a Close in between
			// takes it away. Its traffic stays on the relay.
			c.log.Warn("punch", "peer", ctl.Peer, "error", err)
		}
		return
	case opPeerCandidates:
		c.peerCandidates(ctl)
		return
	case opPeerRemove:
		c.h.RemovePeer(ctl.Peer)
		c.mu.Lock()
		delete(c.peers, ctl.Peer)
		delete(c.peerNAT, ctl.Peer)
		c.mu.Unlock()
		return
	case opPeerNAT:
		c.peerNATReport(ctl.Peer, ctl.NAT)
		return
	case opTimeResp:
		c.clock.add(time.Duration(ctl.T1), time.Duration(ctl.T2), c.now())
		return
	}
	c.mu.Lock()
	g := c.groups[ctl.Group]
	switch ctl.Op {
	case opMemberJoin:
		if g == nil {
			g = &groupView{custom: ctl.Custom}
			c.groups[ctl.Group] = g
		}
		g.members = append(slices.Clone(g.members), ctl.Member)
	case opMemberLeave:
		if g != nil {
			g.members = slices.DeleteFunc(slices.Clone(g.members), func(x net.HostID) bool { return x == ctl.Member })
			if ctl.Member == c.h.ID() {
				delete(c.groups, ctl.Group)
			}
		}
	case opHostChange:
		if g != nil {
			g.host = ctl.Host
		}
	}
	c.mu.Unlock()
	if ev, ok := controlEvent(ctl, now); ok {
		c.q.Push(ev)
	}
}

// Send sends data to the server (net.ServerID), a peer in a common group, or
// every other member of a group this client is in. An unreliable group send
// goes up to the server once for every member reached through the relay
// (or every member, over Net.UplinkBudget or above Net.FanoutAbove), and
// the server sends each a copy (net.Host.SendGroup); reliable group sends
// to relayed members share datagrams up to the server. Any other ID is
// ErrNoGroup (and net.ErrUnknownPeer): a group that does not exist or that
// this client is not in, or a host it shares no group with. After Close the
// error is ErrClosed (and net.ErrHostClosed).
func (c *Client) Send(to net.HostID, d net.Delivery, data []byte) error {
	if !d.Reliable && d.Channel == controlChannel {
		return ErrReservedChannel
	}
	if len(data) == 0 {
		return net.ErrEmpty
	}
	if c.closed() {
		return &closedError{to: to}
	}
	c.mu.RLock()
	g := c.groups[to]
	var members []net.HostID
	if g != nil {
		members = g.members
	}
	_, isPeer := c.peers[to]
	c.mu.RUnlock()
	switch {
	case g != nil:
		me := c.h.ID()
		ids := make([]net.HostID, 0, len(members))
		for _, m := range members {
			if m != me {
				ids = append(ids, m)
			}
		}
		head := groupHead(to)
		return c.h.SendGroup(to, ids, d, head[:], data)
	case to == net.ServerID || isPeer:
		return c.h.SendParts(to, d, userHead, data)
	}
	return &noTargetError{to: to, client: true}
}

// PeerState is how this client reaches a peer.
type PeerState struct {
	// Relayed is true while traffic goes through the server.
	Relayed bool
	// Path describes the path ("direct 10.1.0.12:5000", "relayed via server").
	Path string
	// RTT is the smoothed round trip to the peer on its current path.
	RTT time.Duration
	// Since is when the path last changed.
	Since time.Time
}

// PeerState reports how the peer is reached; false if it is not a peer.
func (c *Client) PeerState(peer net.HostID) (PeerState, bool) {
	st, ok := c.h.LinkStats(peer)
	if !ok || peer == net.ServerID {
		return PeerState{}, false
	}
	return PeerState{Relayed: st.Relayed, Path: st.Path, RTT: st.RTT, Since: st.PathSince}, true
}

// ForceRelay sends traffic with peer through the server, both ways, even
// when a direct path works (force true), or lets hole punching resume
// (false). Both this client and the peer get an EventRelayStateChange
// (ErrForcedRelay); the pair stays relayed while either side forces it
// (net.Host.ForceRelay). Useful as a policy and to watch the fallback happen.
func (c *Client) ForceRelay(peer net.HostID, force bool) error { return c.h.ForceRelay(peer, force) }

// Peers returns the peers this client shares a group with.
func (c *Client) Peers() []net.HostID {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.peers))
}

// Groups returns the groups this client is in.
func (c *Client) Groups() []net.HostID {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.groups))
}

// Members returns the members of group g in join order, as this client
// knows them.
func (c *Client) Members(g net.HostID) []net.HostID {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v := c.groups[g]; v != nil {
		return slices.Clone(v.members)
	}
	return nil
}

// GroupHost returns the host (authority) of group g.
func (c *Client) GroupHost(g net.HostID) net.HostID {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v := c.groups[g]; v != nil {
		return v.host
	}
	return net.NoHost
}

// Custom returns group g's custom field.
func (c *Client) Custom(g net.HostID) []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v := c.groups[g]; v != nil {
		return v.custom
	}
	return nil
}

// ErrNoClock: no clock sample has come back from the server yet.
var ErrNoClock = errors.New("skein/sync: no server clock sample yet")

// ServerTime returns the estimated server clock: the time since the server
// started, as the server would read it now. Games use it to interpolate
// against a shared timeline.
func (c *Client) ServerTime() (time.Duration, error) {
	s, ok := c.clock.get()
	if !ok {
		return 0, ErrNoClock
	}
	return c.now() + s.offset, nil
}

// ServerClock returns the current estimate: offset of the server clock
// from this client's, and the round trip of the sample it rests on.
func (c *Client) ServerClock() (offset, rtt time.Duration, err error) {
	s, ok := c.clock.get()
	if !ok {
		return 0, 0, ErrNoClock
	}
	return s.offset, s.rtt, nil
}

// Close disconnects gracefully and deletes the port mapping; see Shutdown.
func (c *Client) Close() error {
	err := c.close()
	c.stopPortMap()
	return err
}

// Shutdown closes the server and peer links gracefully, waits until they
// are flushed or ctx ends, and stops. It then deletes the port mapping
// (waiting at most PortMap.Timeout for the router).
func (c *Client) Shutdown(ctx context.Context) error {
	err := c.shutdown(ctx)
	c.stopPortMap()
	return err
}
