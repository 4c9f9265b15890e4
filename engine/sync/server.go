package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	stdnet "net"
	"net/netip"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/net"
)

// Errors from group operations.
var (
	// ErrNoGroup: no group with that ID. A Send to an ID that is neither a
	// group the sender knows (for a Client: one it is in) nor a host it can
	// reach is both ErrNoGroup and net.ErrUnknownPeer to errors.Is, since
	// group and host IDs share one space.
	ErrNoGroup = errors.New("skein/sync: no such group")
	// ErrNotClient: the member is neither a connected client nor the server.
	ErrNotClient = errors.New("skein/sync: not a connected client")
	// ErrAlreadyMember: the host is already in the group.
	ErrAlreadyMember = errors.New("skein/sync: already a member")
	// ErrNotMember: the host is not in the group.
	ErrNotMember = errors.New("skein/sync: not a member")
	// ErrCustomTooLarge: the custom field exceeds MaxCustom bytes.
	ErrCustomTooLarge = errors.New("skein/sync: custom field too large")
	// ErrReservedChannel: unreliable channel 255 belongs to the engine.
	ErrReservedChannel = errors.New("skein/sync: channel 255 is reserved")
	// ErrClosed: the Server or Client was closed. Send's error after Close
	// is both ErrClosed and net.ErrHostClosed to errors.Is.
	ErrClosed = errors.New("skein/sync: closed")
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Net configures the underlying host; Accept, RelayPolicy and
	// GroupMembers are set by the Server.
	Net net.Config
	// Logger receives the logs under the name "sync" (and the host's under
	// "net" if Net.Logger is nil). Nil: no logs.
	Logger hclog.Logger
	// EventQueue bounds the messages waiting for the application. Zero
	// means net.DefaultEventQueue (8192). Their bytes are bounded by
	// Net.EventQueueBytes, as in the net host's own queue.
	EventQueue int
	// NoTCP turns off the TCP fallback in ListenServer.
	NoTCP bool
	// NATProbe lists up to three alternate UDP addresses (a second port,
	// and with a second IP address of the machine, that address on both
	// ports) on which ListenServer also listens for its clients' NAT-type
	// checks (RFC 5780 style; see Server.AddNATProbeConn). Empty: clients
	// learn only their public address, and their NAT type stays unknown.
	NATProbe []string
	// ShareUsers makes each member join carry the member's user ID (as
	// Net.Authenticate named it) to the group's members: a member learns
	// who its peers are (Event.User on EventMemberJoin). Off: peers see
	// HostIDs only; the server always knows (Server.User).
	ShareUsers bool
	// TCP configures the TCP fallback (ServeTCP): connections in all and
	// per source, deadlines. MaxConns zero means Net.MaxLinks
	// (net.DefaultMaxLinks if that is zero too); a nil Logger means Logger.
	TCP net.TCPConfig
}

// Server is the authority over P2P groups: it creates them, adds and
// removes members, names each group's host, hands peers their keys and
// relays between members. It wraps a listening net.Host.
type Server struct {
	*events
	log   hclog.Logger
	epoch time.Time
	jobs  chan func()

	// Owned by the loop goroutine.
	groups   map[net.HostID]*group
	memberOf map[net.HostID]map[net.HostID]struct{}
	lan      map[net.HostID][]netip.AddrPort // clients' LAN candidates
	nat      map[net.HostID]net.NATReport    // clients' NAT types, as they reported them
	updates  map[net.HostID]int              // candidate updates re-announced, per client (server_candidates.go)
	scratch  []byte

	// Read by other goroutines (relay policy on the reader, Send, queries).
	mu    stdsync.RWMutex
	pairs map[pairKey]int
	views map[net.HostID]groupView

	slowKicks  atomic.Uint64
	maxLinks   int
	shareUsers bool

	tcpCfg net.TCPConfig
	tcpMu  stdsync.Mutex
	tcp    []*net.TCPMux // guarded by tcpMu
}

type group struct {
	id      net.HostID
	members []net.HostID // join order
	custom  []byte
	host    net.HostID
}

type pairKey struct{ lo, hi net.HostID }

func pairOf(a, b net.HostID) pairKey {
	if a > b {
		a, b = b, a
	}
	return pairKey{a, b}
}

// ListenServer opens a UDP socket on addr and starts a Server on it. Unless
// cfg.NoTCP is set, it also accepts the TCP fallback (for clients whose
// network blocks UDP) on the same port number; if that port is taken over
// TCP, it logs a warning and serves UDP only.
func ListenServer(addr string, cfg ServerConfig) (*Server, error) {
	c, err := net.ListenUDP(addr)
	if err != nil {
		return nil, err
	}
	s, err := NewServer(c, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	for _, a := range cfg.NATProbe {
		pc, err := net.ListenUDP(a)
		if err == nil {
			if err = s.AddNATProbeConn(pc); err != nil {
				pc.Close()
			}
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("NAT probe address %s: %w", a, err)
		}
	}
	if !cfg.NoTCP {
		ln, err := stdnet.Listen("tcp", c.LocalAddr().String())
		if err != nil {
			s.log.Warn("no TCP fallback", "error", err)
		} else if err := s.ServeTCP(ln); err != nil {
			ln.Close()
		}
	}
	return s, nil
}

// ServeTCP accepts clients over TCP on ln, for networks that block UDP: the
// same protocol framed on a stream. Their peers are always relayed.
// The connections are limited and timed out as ServerConfig.TCP says.
func (s *Server) ServeTCP(ln stdnet.Listener) error {
	cfg := s.tcpCfg
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = s.maxLinks
	}
	mux := net.NewTCPMuxConfig(ln, cfg)
	if err := s.h.AddConn(mux); err != nil {
		mux.Close()
		return err
	}
	s.tcpMu.Lock()
	s.tcp = append(s.tcp, mux)
	s.tcpMu.Unlock()
	return nil
}

// TCPStats returns the counters of the TCP fallback, summed over every
// ServeTCP listener (zero without one).
func (s *Server) TCPStats() net.TCPStats {
	s.tcpMu.Lock()
	muxes := slices.Clone(s.tcp)
	s.tcpMu.Unlock()
	var sum net.TCPStats
	for _, m := range muxes {
		st := m.Stats()
		sum.Open += st.Open
		sum.Accepted += st.Accepted
		sum.AcceptErrors += st.AcceptErrors
		for r := range st.Closed {
			sum.Closed[r] += st.Closed[r]
		}
	}
	return sum
}

// NewServer starts a Server on conn, which it owns from now on.
func NewServer(conn net.PacketConn, cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.EventQueue <= 0 {
		cfg.EventQueue = net.DefaultEventQueue
	}
	s := &Server{
		events:   newEvents(cfg.EventQueue, cfg.Net.EventQueueBytes),
		log:      cfg.Logger.Named("sync"),
		epoch:    time.Now(),
		jobs:     make(chan func(), 256),
		groups:   make(map[net.HostID]*group),
		memberOf: make(map[net.HostID]map[net.HostID]struct{}),
		lan:      make(map[net.HostID][]netip.AddrPort),
		nat:      make(map[net.HostID]net.NATReport),
		pairs:    make(map[pairKey]int),
		views:    make(map[net.HostID]groupView),
	}
	s.tcpCfg = cfg.TCP
	if s.tcpCfg.Logger == nil {
		s.tcpCfg.Logger = cfg.Logger
	}
	ncfg := cfg.Net
	ncfg.Accept = true
	s.maxLinks = ncfg.MaxLinks
	s.shareUsers = cfg.ShareUsers
	if s.maxLinks <= 0 {
		s.maxLinks = net.DefaultMaxLinks
	}
	ncfg.RelayPolicy = s.mayRelay
	ncfg.GroupMembers = s.groupMembers
	if ncfg.Logger == nil {
		ncfg.Logger = cfg.Logger
	}
	h, err := net.NewHost(conn, ncfg)
	if err != nil {
		return nil, err
	}
	s.h = h
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// Host returns the underlying net host (for statistics and addresses).
func (s *Server) Host() *net.Host { return s.h }

// mayRelay is the host's relay policy: members of a common group only.
func (s *Server) mayRelay(from, to net.HostID) bool {
	s.mu.RLock()
	n := s.pairs[pairOf(from, to)]
	s.mu.RUnlock()
	return n > 0
}

// groupMembers is the host's fan-out policy: a group's members, so that
// only they fan out to the group, and only to each other.
func (s *Server) groupMembers(g net.HostID, dst []net.HostID) ([]net.HostID, bool) {
	s.mu.RLock()
	v, ok := s.views[g]
	dst = append(dst, v.members...)
	s.mu.RUnlock()
	return dst, ok
}

// SlowKicks counts clients dropped because their send queue was full.
func (s *Server) SlowKicks() uint64 { return s.slowKicks.Load() }

func (s *Server) loop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case job := <-s.jobs:
			job()
		case <-s.readyIfRoom(s.h):
			s.pump(s.h, s.handle)
		case <-s.resume:
		}
	}
}

// do runs fn on the loop goroutine and returns its error.
func (s *Server) do(fn func() error) error {
	errc := make(chan error, 1)
	select {
	case s.jobs <- func() { errc <- fn() }:
	case <-s.done:
		return ErrClosed
	}
	select {
	case err := <-errc:
		return err
	case <-s.done:
		return ErrClosed
	}
}

// handle processes one net event on the loop goroutine.
func (s *Server) handle(ev net.Event) {
	switch ev.Kind {
	case net.EventConnected:
		// The client counts as connected once it has reported its LAN
		// addresses (its first message), so that every peer it meets in a
		// group gets them.
	case net.EventDisconnected:
		if _, ready := s.memberOf[ev.Peer]; !ready {
			return
		}
		for _, g := range s.groupsOf(ev.Peer) {
			s.leave(s.groups[g], ev.Peer)
		}
		delete(s.memberOf, ev.Peer)
		delete(s.lan, ev.Peer)
		s.forgetNAT(ev.Peer)
		delete(s.updates, ev.Peer)
		s.log.Info("client disconnected", "client", ev.Peer, "reason", ev.Err)
		var user string
		if ev.User != nil {
			user = ev.User.ID
		}
		s.q.Push(Event{Kind: EventDisconnected, Peer: ev.Peer, Err: ev.Err, Received: ev.Received, User: user})
	case net.EventMessage:
		s.message(ev)
	case net.EventPathChange:
		// The link follows its client to the new address; groups know
		// clients by HostID, and peers keep punching or relaying as before.
	case net.EventAway, net.EventBack:
		s.awayOrBack(ev)
	}
}

// awayOrBack tells the other members of every group of a client whose
// link was suspended (net.EventAway) or resumed (net.EventBack), and the
// application. The client stays in its groups meanwhile, host role
// included: the game decides what an away host means (pause, or a
// LeaveGroup that elects another).
func (s *Server) awayOrBack(ev net.Event) {
	if _, ready := s.memberOf[ev.Peer]; !ready {
		return
	}
	op, kind := opMemberAway, EventAway
	if ev.Kind == net.EventBack {
		op, kind = opMemberBack, EventBack
	}
	if errors.Is(ev.Err, net.ErrSessionRestarted) {
		s.reintroduce(ev.Peer)
	}
	for _, g := range s.groupsOf(ev.Peer) {
		for _, m := range s.groups[g].members {
			if m != ev.Peer {
				s.control(m, control{Op: op, Group: g, Member: ev.Peer})
			}
		}
	}
	s.log.Info("client "+kind.String(), "client", ev.Peer)
	s.q.Push(Event{Kind: kind, Peer: ev.Peer, Err: ev.Err, Received: ev.Received})
}

// reintroduce tells a client that took over its suspended session with a
// new process (net.ErrSessionRestarted) everything it knew and lost: its
// peers, with new keys (each peer replaces its link to it: PeerRemove,
// then PeerAdd), and for each of its groups every member (MemberJoin, in
// join order, itself included) and the host (HostChange). The other
// members then get MemberBack (awayOrBack).
func (s *Server) reintroduce(id net.HostID) {
	groups := s.groupsOf(id)
	seen := map[net.HostID]bool{}
	for _, g := range groups {
		for _, e := range s.groups[g].members {
			if e == net.ServerID || e == id || seen[e] {
				continue
			}
			seen[e] = true
			keys := s.peerKeys(id, e)
			s.control(e, control{Op: opPeerRemove, Peer: id})
			s.control(id, control{Op: opPeerAdd, Peer: e, Keys: keys, Addrs: s.candidates(e, id)})
			s.control(e, control{Op: opPeerAdd, Peer: id, Keys: keys.Swap(), Addrs: s.candidates(id, e)})
		}
	}
	for _, g := range groups {
		gr := s.groups[g]
		count := uint16(len(gr.members))
		for _, e := range gr.members {
			s.control(id, control{Op: opMemberJoin, Group: g, Member: e, Count: count, Custom: gr.custom, User: s.sharedUser(e)})
		}
		if gr.host != net.NoHost {
			s.control(id, control{Op: opHostChange, Group: g, Host: gr.host})
		}
	}
	s.log.Info("client restarted: session taken over", "client", id, "groups", len(groups))
}

// message handles a message from a client: its addresses and clock
// requests (control), or an application message for the queue. Anything
// malformed or unexpected is dropped and counted (see Drops).
func (s *Server) message(ev net.Event) {
	if len(ev.Data) == 0 {
		s.drop(net.DropMalformed)
		s.log.Debug("empty message", "client", ev.Peer)
		return
	}
	if ev.Data[0] == tagControl {
		c, err := parseControl(ev.Data[1:])
		if err != nil {
			s.drop(net.DropMalformed)
			s.log.Debug("bad control message", "client", ev.Peer, "error", err)
			return
		}
		switch c.Op {
		case opCandidates:
			old, known := s.lan[ev.Peer]
			s.lan[ev.Peer] = c.Addrs
			if _, ready := s.memberOf[ev.Peer]; !ready {
				s.memberOf[ev.Peer] = make(map[net.HostID]struct{})
				u, _ := s.h.User(ev.Peer)
				s.log.Info("client connected", "client", ev.Peer, "user", u.ID, "lan", c.Addrs)
				s.q.Push(Event{Kind: EventConnected, Peer: ev.Peer, Received: ev.Received, User: u.ID})
			} else if known && !slices.Equal(old, c.Addrs) {
				s.candidatesChanged(ev.Peer)
			}
		case opNATReport:
			s.natReport(ev.Peer, c.NAT)
		case opTimeReq:
			resp := appendControl(s.scratch[:0], control{Op: opTimeResp, T1: c.T1, T2: int64(time.Since(s.epoch))})
			if err := s.h.Send(ev.Peer, net.Unreliable.OnChannel(controlChannel), resp); err != nil {
				s.log.Debug("clock answer not sent", "client", ev.Peer, "error", err)
			}
		default:
			s.drop(net.DropUnexpected)
			s.log.Debug("control message a client may not send", "client", ev.Peer, "op", c.Op)
		}
		return
	}
	if _, ready := s.memberOf[ev.Peer]; !ready {
		// Not connected as far as the application knows (it has not
		// announced its addresses yet): nothing it asks for can be done
		// for it (it cannot join a group), so nothing it sends is taken.
		s.drop(net.DropUnexpected)
		s.log.Debug("message before the client's addresses", "client", ev.Peer)
		return
	}
	m, ok := message(ev)
	if !ok {
		s.drop(net.DropMalformed)
		s.log.Debug("bad message", "client", ev.Peer)
		return
	}
	if ev.User != nil {
		m.User = ev.User.ID
	}
	s.q.Push(m)
}

// groupsOf lists the groups id is in, in ID order.
func (s *Server) groupsOf(id net.HostID) []net.HostID {
	return slices.Sorted(maps.Keys(s.memberOf[id]))
}

// CreateGroup creates a P2P group of members (clients, and ServerID to make
// the server a member; zero members is allowed) with the custom field
// custom, and returns its ID. Members join in the order given.
func (s *Server) CreateGroup(members []net.HostID, custom []byte) (net.HostID, error) {
	if len(custom) > MaxCustom {
		return net.NoHost, ErrCustomTooLarge
	}
	custom = slices.Clone(custom)
	var id net.HostID
	err := s.do(func() error {
		for i, m := range members {
			if err := s.checkMember(m); err != nil {
				return err
			}
			if slices.Contains(members[:i], m) {
				return fmt.Errorf("member %v twice: %w", m, ErrAlreadyMember)
			}
		}
		id = s.h.ReserveID()
		g := &group{id: id, custom: custom}
		s.groups[id] = g
		for _, m := range members {
			s.join(g, m, false)
		}
		s.elect(g)
		s.log.Debug("group created", "group", id, "members", len(members))
		return nil
	})
	return id, err
}

// JoinGroup adds member to group g.
func (s *Server) JoinGroup(g, member net.HostID) error {
	return s.do(func() error {
		gr := s.groups[g]
		if gr == nil {
			return fmt.Errorf("join %v: %w", g, ErrNoGroup)
		}
		if err := s.checkMember(member); err != nil {
			return err
		}
		if slices.Contains(gr.members, member) {
			return fmt.Errorf("join %v: %w", g, ErrAlreadyMember)
		}
		s.join(gr, member, true)
		if gr.host == net.NoHost {
			s.elect(gr)
		}
		return nil
	})
}

// LeaveGroup removes member from group g. The group stays, possibly empty,
// until DestroyGroup.
func (s *Server) LeaveGroup(g, member net.HostID) error {
	return s.do(func() error {
		gr := s.groups[g]
		if gr == nil {
			return fmt.Errorf("leave %v: %w", g, ErrNoGroup)
		}
		if !slices.Contains(gr.members, member) {
			return fmt.Errorf("leave %v: %w", g, ErrNotMember)
		}
		s.leave(gr, member)
		return nil
	})
}

// DestroyGroup removes every member (last joined first) and the group.
func (s *Server) DestroyGroup(g net.HostID) error {
	return s.do(func() error {
		gr := s.groups[g]
		if gr == nil {
			return fmt.Errorf("destroy %v: %w", g, ErrNoGroup)
		}
		for len(gr.members) > 0 {
			s.leave(gr, gr.members[len(gr.members)-1])
		}
		delete(s.groups, g)
		s.mu.Lock()
		delete(s.views, g)
		s.mu.Unlock()
		s.h.ReleaseID(g)
		return nil
	})
}

// Members returns the members of g in join order.
func (s *Server) Members(g net.HostID) []net.HostID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.views[g].members)
}

// GroupHost returns the host (authority) of g.
func (s *Server) GroupHost(g net.HostID) net.HostID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.views[g].host
}

// Groups returns the IDs of all groups.
func (s *Server) Groups() []net.HostID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.views))
}

func (s *Server) checkMember(m net.HostID) error {
	if m == net.ServerID {
		return nil
	}
	if _, ok := s.memberOf[m]; !ok {
		return fmt.Errorf("member %v: %w", m, ErrNotClient)
	}
	return nil
}

// join adds m to g with the member events of the package doc.
func (s *Server) join(g *group, m net.HostID, announceHost bool) {
	if m != net.ServerID {
		for _, e := range g.members {
			if e == net.ServerID {
				continue
			}
			s.mu.Lock()
			k := pairOf(m, e)
			s.pairs[k]++
			first := s.pairs[k] == 1
			s.mu.Unlock()
			if first {
				keys := s.peerKeys(m, e)
				s.control(m, control{Op: opPeerAdd, Peer: e, Keys: keys, Addrs: s.candidates(e, m)})
				s.control(e, control{Op: opPeerAdd, Peer: m, Keys: keys.Swap(), Addrs: s.candidates(m, e)})
				s.tellNAT(m, e)
				s.tellNAT(e, m)
			}
		}
		s.memberOf[m][g.id] = struct{}{}
	}
	existing := g.members
	g.members = append(g.members, m)
	count := uint16(len(g.members))
	mu := s.sharedUser(m)
	for _, e := range existing {
		s.control(e, control{Op: opMemberJoin, Group: g.id, Member: m, Count: count, Custom: g.custom, User: mu})
	}
	for _, e := range existing {
		s.control(m, control{Op: opMemberJoin, Group: g.id, Member: e, Count: count, Custom: g.custom, User: s.sharedUser(e)})
	}
	s.control(m, control{Op: opMemberJoin, Group: g.id, Member: m, Count: count, Custom: g.custom, User: mu})
	if announceHost && g.host != net.NoHost {
		s.control(m, control{Op: opHostChange, Group: g.id, Host: g.host})
	}
	s.publish(g)
}

// sharedUser is the user ID a member join names m with: its user, if the
// server shares users (ShareUsers), else empty.
func (s *Server) sharedUser(m net.HostID) string {
	if !s.shareUsers || m == net.ServerID {
		return ""
	}
	u, _ := s.h.User(m)
	return u.ID
}

// User returns who client id is, as Net.Authenticate said (false for an
// unknown client or a server without the hook).
func (s *Server) User(id net.HostID) (net.User, bool) { return s.h.User(id) }

// leave removes m from g with the member events of the package doc, and
// names a new host if m was the host.
func (s *Server) leave(g *group, m net.HostID) {
	g.members = slices.DeleteFunc(g.members, func(x net.HostID) bool { return x == m })
	count := uint16(len(g.members))
	for _, r := range g.members {
		s.control(r, control{Op: opMemberLeave, Group: g.id, Member: m, Count: count})
	}
	for _, r := range g.members {
		s.control(m, control{Op: opMemberLeave, Group: g.id, Member: r, Count: count})
	}
	s.control(m, control{Op: opMemberLeave, Group: g.id, Member: m, Count: count})
	if m != net.ServerID {
		delete(s.memberOf[m], g.id)
		for _, r := range g.members {
			if r == net.ServerID {
				continue
			}
			s.mu.Lock()
			k := pairOf(m, r)
			s.pairs[k]--
			last := s.pairs[k] <= 0
			if last {
				delete(s.pairs, k)
			}
			s.mu.Unlock()
			if last {
				s.control(m, control{Op: opPeerRemove, Peer: r})
				s.control(r, control{Op: opPeerRemove, Peer: m})
			}
		}
	}
	if g.host == m {
		s.elect(g)
	} else {
		s.publish(g)
	}
}

// peerKeys draws the keys of a new peer link: AES-256-GCM when both peers'
// server links use it (both have AES hardware), ChaCha20-Poly1305 otherwise.
func (s *Server) peerKeys(a, b net.HostID) net.Keys {
	k := net.NewKeys()
	k.Cipher = net.ChaCha20Poly1305
	sa, _ := s.h.LinkStats(a)
	sb, _ := s.h.LinkStats(b)
	if sa.Cipher == net.AES256GCM && sb.Cipher == net.AES256GCM {
		k.Cipher = net.AES256GCM
	}
	return k
}

// candidates lists where peer may be reached by to: its public address
// (as the server sees it) and its LAN addresses, the LAN ones first when
// both are behind the same public address (same NAT: its public address
// only works if the NAT hairpins).
func (s *Server) candidates(peer, to net.HostID) []netip.AddrPort {
	pub, ok := s.h.RemoteAddr(peer)
	toPub, _ := s.h.RemoteAddr(to)
	if net.IsTCPAddr(pub) || net.IsTCPAddr(toPub) {
		return nil // one of them is on TCP: only the relay can join them
	}
	lan := s.lan[peer]
	out := make([]netip.AddrPort, 0, len(lan)+1)
	if ok && pub.Addr() != toPub.Addr() {
		out = append(out, pub)
	}
	for _, a := range lan {
		if a != pub && len(out) < maxAddrs-1 && reachable(a, toPub, s.lan[to]) {
			out = append(out, a)
		}
	}
	if ok && pub.Addr() == toPub.Addr() && !slices.Contains(out, pub) {
		out = append(out, pub)
	}
	return out
}

// reachable reports whether a candidate address of a peer is worth
// offering to a client whose public address is toPub and whose own
// candidates are toCands: any IPv4 address, and an IPv6 one only when the
// client has IPv6 itself (it reached the server over IPv6 or announced an
// IPv6 address). IPv6 has no NAT, so a peer's global IPv6 address is
// offered whatever the public IPv4 addresses are.
func reachable(a, toPub netip.AddrPort, toCands []netip.AddrPort) bool {
	return a.Addr().Is4() || toPub.Addr().Is6() ||
		slices.ContainsFunc(toCands, func(c netip.AddrPort) bool { return c.Addr().Is6() })
}

// elect names the best-connected client member host of g (lowest RTT to the
// server, then earliest joined) and tells every member.
func (s *Server) elect(g *group) {
	best := net.NoHost
	var bestRTT time.Duration
	for _, m := range g.members {
		if m == net.ServerID {
			continue
		}
		st, _ := s.h.LinkStats(m)
		rtt := st.RTT
		if rtt == 0 {
			rtt = time.Hour // not measured yet: after any measured member
		}
		if best == net.NoHost || cmp.Less(rtt, bestRTT) {
			best, bestRTT = m, rtt
		}
	}
	changed := best != g.host
	g.host = best
	s.publish(g)
	if changed {
		s.log.Debug("group host", "group", g.id, "host", best)
		for _, m := range g.members {
			s.control(m, control{Op: opHostChange, Group: g.id, Host: best})
		}
	}
}

// publish updates the snapshot other goroutines read.
func (s *Server) publish(g *group) {
	s.mu.Lock()
	s.views[g.id] = groupView{members: slices.Clone(g.members), host: g.host, custom: g.custom}
	s.mu.Unlock()
}

// control sends a control message to a client, or turns it into an event
// when the server itself is the member concerned.
func (s *Server) control(to net.HostID, c control) {
	if to == net.ServerID {
		if ev, ok := controlEvent(c, time.Now()); ok {
			s.q.Push(ev)
		}
		return
	}
	s.scratch = appendControl(s.scratch[:0], c)
	if err := s.send(to, net.Reliable, nil, s.scratch); err != nil {
		// The client is gone or being kicked (send says which): its
		// disconnect event takes it out of its groups.
		s.log.Debug("control message not sent", "client", to, "op", c.Op, "error", err)
	}
}

// send sends to one client; a client whose send queue is full is too slow
// to keep and is dropped, so it cannot hold up anyone else.
func (s *Server) send(to net.HostID, d net.Delivery, head, body []byte) error {
	err := s.h.SendParts(to, d, head, body)
	if errors.Is(err, net.ErrSendQueueFull) {
		s.slowKicks.Add(1)
		s.log.Warn("dropping slow client", "client", to)
		if kerr := s.h.Kick(to, "too slow: send queue full"); kerr != nil {
			s.log.Debug("kick", "client", to, "error", kerr)
		}
	}
	return err
}

// Send sends data to a client, or to every client member of a group. An ID
// that is neither is ErrNoGroup (and net.ErrUnknownPeer); after Close the
// error is ErrClosed (and net.ErrHostClosed).
func (s *Server) Send(to net.HostID, d net.Delivery, data []byte) error {
	if !d.Reliable && d.Channel == controlChannel {
		return ErrReservedChannel
	}
	if len(data) == 0 {
		return net.ErrEmpty
	}
	if s.closed() {
		return &closedError{to: to}
	}
	s.mu.RLock()
	v, isGroup := s.views[to]
	s.mu.RUnlock()
	if !isGroup {
		err := s.send(to, d, userHead, data)
		if errors.Is(err, net.ErrUnknownPeer) {
			return &noTargetError{to: to}
		}
		return err
	}
	head := groupHead(to)
	var first error
	for _, m := range v.members {
		if m == net.ServerID {
			continue
		}
		if err := s.send(m, d, head[:], data); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Kick disconnects a client with a message it will see.
func (s *Server) Kick(id net.HostID, message string) error { return s.h.Kick(id, message) }

// Close shuts the server down gracefully; see Shutdown.
func (s *Server) Close() error { return s.close() }

// Shutdown tells every client the server is shutting down, waits until they
// are disconnected or ctx ends, and stops.
func (s *Server) Shutdown(ctx context.Context) error { return s.shutdown(ctx) }
