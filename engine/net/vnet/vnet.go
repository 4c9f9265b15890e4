// Package vnet is an in-memory virtual network for tests.
//
// A Network holds conns (one per address, or more with Conn.AddAddr, as a
// dual-stack socket has an IPv4 and an IPv6 address) that exchange
// datagrams through memory, with seeded, configurable impairment: loss, duplication, reordering,
// delay and jitter, an MTU and a bandwidth limit, set for the whole network or
// per directed pair of hosts, and changeable at run time. Each *Conn satisfies
// the PacketConn interface of package engine/net (ReadFrom, WriteTo, LocalAddr,
// Close) without importing it.
//
// # Virtual time
//
// Every delay is a timer and every wait is a channel receive, so a Network
// created inside a testing/synctest bubble runs on the bubble's fake clock:
// a 500 ms delay costs no wall time, and a goroutine blocked in ReadFrom is
// durably blocked. Create the Network and its conns inside the bubble
// (synctest.Test(t, func(t *testing.T) { n := vnet.New(1); ... })). Outside a
// bubble it runs on the real clock.
//
// # Determinism
//
// All randomness comes from one math/rand/v2 source seeded by New. Datagrams
// due at the same instant are delivered in the order they were written. The
// same script of writes, issued in the same order, therefore gives the same
// deliveries, drops and timings.
//
// # Path of a datagram
//
// WriteTo copies the datagram and then:
//
//  1. translates it through the NATs added with AddNAT (see nat.go);
//  2. passes it to the Router set with SetRouter, which may rewrite its
//     addresses or drop it;
//  3. passes it to the filter set with SetFilter, which may drop it;
//  4. applies the Conditions of the link between the sending host and the
//     receiving host: MTU, loss, bandwidth, reorder, delay and jitter,
//     duplication;
//  5. when due, puts it in the receiving conn's bounded queue, or drops it
//     if no conn has that address or the queue is full.
//
// Every drop is counted by reason in Stats.
package vnet

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultQueueLen is the receive queue length of a conn, in datagrams, when
// Network.QueueLen is zero.
const DefaultQueueLen = 1024

// firstEphemeralPort is where the search for a free port starts when Listen
// is given port 0.
const firstEphemeralPort = 49152

// reorderHold is how long a reordered datagram is held back on a link with no
// Delay, so that the datagrams written after it overtake it.
const reorderHold = time.Millisecond

// ErrAddrInUse is returned (wrapped) by Listen when the address is taken.
var ErrAddrInUse = errors.New("vnet: address in use")

// Conditions describes how a link impairs datagrams. The zero value is a
// perfect link: no loss, no delay, no limit.
type Conditions struct {
	// Loss is the probability (0..1) that a datagram is dropped.
	Loss float64
	// Duplicate is the probability (0..1) that a datagram is delivered
	// twice. The copy gets its own jitter and reorder draws and does not
	// use Bandwidth.
	Duplicate float64
	// Reorder is the probability (0..1) that a datagram takes another
	// path: on a link with a Delay it skips the delay (and the jitter) and
	// overtakes the datagrams in flight; on a link without one it is held
	// back 1 ms so that the datagrams written after it overtake it.
	Reorder float64
	// Delay is the one-way latency added to every datagram.
	Delay time.Duration
	// Jitter adds a uniformly random amount in [-Jitter, +Jitter] to
	// Delay (the sum is never below zero). Jitter alone reorders too.
	Jitter time.Duration
	// MTU drops datagrams larger than MTU bytes; 0 means no limit.
	MTU int
	// Bandwidth is the link capacity in bytes per second; 0 means
	// unlimited. Datagrams are serialized one after another at this rate;
	// a datagram that would find more than QueueBytes waiting ahead of it
	// is dropped.
	Bandwidth int
	// QueueBytes bounds the bytes waiting for Bandwidth. 0 means 250 ms of
	// traffic at Bandwidth, but at least 1500 bytes. An idle link always
	// accepts one datagram.
	QueueBytes int
}

// validate reports an error for a probability outside 0..1 or a negative
// amount.
func (c Conditions) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"Loss", c.Loss}, {"Duplicate", c.Duplicate}, {"Reorder", c.Reorder}} {
		if !(p.v >= 0 && p.v <= 1) { // also rejects NaN
			return fmt.Errorf("vnet: Conditions.%s = %v, want 0..1", p.name, p.v)
		}
	}
	if c.Delay < 0 || c.Jitter < 0 || c.MTU < 0 || c.Bandwidth < 0 || c.QueueBytes < 0 {
		return fmt.Errorf("vnet: negative value in %+v", c)
	}
	return nil
}

// queueBytes returns the effective bound on bytes waiting for bandwidth.
func (c *Conditions) queueBytes() int64 {
	if c.QueueBytes > 0 {
		return int64(c.QueueBytes)
	}
	return max(int64(c.Bandwidth)/4, 1500)
}

// Packet is a datagram on its way, as a Router sees it.
type Packet struct {
	// Sender is the local address of the conn that wrote the datagram.
	// Routers must not change it.
	Sender netip.AddrPort
	// From is the source address the receiver will see. It starts as
	// Sender; a NAT rewrites it to its public mapping.
	From netip.AddrPort
	// To is the destination. It starts as the address given to WriteTo;
	// after routing it must be the local address of the receiving conn.
	To netip.AddrPort
	// Data is the network's own copy of the datagram. A Router may modify
	// it in place (to corrupt it, say) but must not keep it.
	Data []byte
}

// Router is the routing extension point: it sees every datagram after NAT
// translation and before the filter and link conditions, and may rewrite
// From and To, modify Data in place, or drop the datagram by returning false.
// Route is called on the writer's goroutine, without any network lock held,
// possibly from many goroutines at once.
type Router interface {
	Route(p *Packet) (deliver bool)
}

// RouterFunc adapts a function to Router.
type RouterFunc func(p *Packet) bool

// Route calls f(p).
func (f RouterFunc) Route(p *Packet) bool { return f(p) }

// Drops counts dropped datagrams by reason.
type Drops struct {
	Loss      uint64 // Conditions.Loss
	MTU       uint64 // larger than Conditions.MTU
	Bandwidth uint64 // Conditions.Bandwidth queue full
	QueueFull uint64 // receiving conn's queue full
	NoRoute   uint64 // no conn has the destination address (when due)
	NAT       uint64 // refused by a NAT (no mapping, filtering, no hairpin, UDP blocked)
	Router    uint64 // Router returned false
	Filter    uint64 // the SetFilter function returned true
}

// Total returns the sum of all drops.
func (d Drops) Total() uint64 {
	return d.Loss + d.MTU + d.Bandwidth + d.QueueFull + d.NoRoute + d.NAT + d.Router + d.Filter
}

// Stats counts datagrams. For Network.Stats every field covers the whole
// network. For Conn.Stats, Sent, Duplicated and every drop except QueueFull
// count datagrams the conn wrote, while Delivered and Dropped.QueueFull count
// datagrams sent to it.
type Stats struct {
	Sent       uint64 // datagrams accepted by WriteTo
	Delivered  uint64 // datagrams put in a receive queue (copies included)
	Duplicated uint64 // extra copies made by Conditions.Duplicate
	Dropped    Drops
}

// Network is an in-memory network of conns. Create it with New.
type Network struct {
	// QueueLen is the receive queue length, in datagrams, of conns created
	// by later calls to Listen; 0 means DefaultQueueLen. Set it before
	// Listen, not concurrently with it.
	QueueLen int

	router atomic.Pointer[Router]
	filter atomic.Pointer[func(from, to netip.AddrPort, b []byte) bool]
	nats   natTable

	mu       sync.Mutex
	closed   bool
	rng      *rand.Rand
	conns    map[netip.AddrPort]*Conn
	defaults Conditions
	links    map[linkKey]*link
	stats    Stats
	pending  eventHeap
	seq      uint64
	timer    *time.Timer
}

// linkKey names a directed pair of hosts.
type linkKey struct{ from, to netip.Addr }

// link is the state of one directed pair of hosts.
type link struct {
	cond      Conditions // used when override is set
	override  bool
	busyUntil time.Time // when the bandwidth limiter is free again
}

// New returns an empty Network whose randomness is seeded by seed.
func New(seed int64) *Network {
	s := uint64(seed)
	return &Network{
		rng:   rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)),
		conns: make(map[netip.AddrPort]*Conn),
		links: make(map[linkKey]*link),
	}
}

// SetConditions sets the conditions of every link that has no conditions of
// its own. It panics if a probability is outside 0..1 or an amount is
// negative. Datagrams already in flight keep their schedule.
func (n *Network) SetConditions(c Conditions) {
	if err := c.validate(); err != nil {
		panic(err)
	}
	n.mu.Lock()
	n.defaults = c
	n.mu.Unlock()
}

// SetLinkConditions sets the conditions of datagrams sent by host from to host
// to (whatever the ports), replacing the network-wide defaults for that
// direction only. The hosts are the real ones: for a host behind a NAT, its
// private address. It panics on invalid conditions like SetConditions.
func (n *Network) SetLinkConditions(from, to netip.Addr, c Conditions) {
	if err := c.validate(); err != nil {
		panic(err)
	}
	n.mu.Lock()
	l := n.linkLocked(linkKey{from.Unmap(), to.Unmap()})
	l.cond, l.override = c, true
	n.mu.Unlock()
}

// ClearLinkConditions makes the link from host from to host to use the
// network-wide conditions again.
func (n *Network) ClearLinkConditions(from, to netip.Addr) {
	n.mu.Lock()
	if l := n.links[linkKey{from.Unmap(), to.Unmap()}]; l != nil {
		l.cond, l.override = Conditions{}, false
	}
	n.mu.Unlock()
}

// SetFilter sets a function called for every datagram after routing, with the
// source the receiver will see, the receiving conn's address and the datagram;
// returning true drops it (counted in Drops.Filter). It may modify b in place
// but must not keep it. It runs on the writer's goroutine without any network
// lock held, possibly concurrently. nil removes the filter.
func (n *Network) SetFilter(drop func(from, to netip.AddrPort, b []byte) bool) {
	if drop == nil {
		n.filter.Store(nil)
		return
	}
	n.filter.Store(&drop)
}

// SetRouter sets the Router every datagram goes through after NAT translation.
// nil removes it (datagrams then go to the address they were written to).
func (n *Network) SetRouter(r Router) {
	if r == nil {
		n.router.Store(nil)
		return
	}
	n.router.Store(&r)
}

// Stats returns the network-wide counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Listen creates a conn on addr. Port 0 picks a free port. The address must be
// a specific (not unspecified) IP address; IPv4-mapped IPv6 addresses are
// unmapped. It fails with ErrAddrInUse if a conn already has the address.
func (n *Network) Listen(addr netip.AddrPort) (*Conn, error) {
	ip := addr.Addr().Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		return nil, fmt.Errorf("vnet: listen %v: need a specific IP address", addr)
	}
	qlen := n.QueueLen
	if qlen <= 0 {
		qlen = DefaultQueueLen
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("vnet: listen %v: %w", addr, net.ErrClosed)
	}
	port := addr.Port()
	if port == 0 {
		for p := firstEphemeralPort; ; p++ {
			if p > 65535 {
				return nil, fmt.Errorf("vnet: listen %v: no free port: %w", addr, ErrAddrInUse)
			}
			if _, taken := n.conns[netip.AddrPortFrom(ip, uint16(p))]; !taken {
				port = uint16(p)
				break
			}
		}
	}
	local := netip.AddrPortFrom(ip, port)
	if _, taken := n.conns[local]; taken {
		return nil, fmt.Errorf("vnet: listen %v: %w", local, ErrAddrInUse)
	}
	c := &Conn{
		n:     n,
		local: local,
		rx:    make(chan datagram, qlen),
		done:  make(chan struct{}),
	}
	n.conns[local] = c
	return c, nil
}

// Close closes every conn and discards the datagrams in flight. Later calls
// to Listen fail. Close is idempotent and always returns nil.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	for _, c := range n.conns {
		c.closeLocked()
	}
	clear(n.conns)
	if n.timer != nil {
		n.timer.Stop()
	}
	n.pending = nil
	return nil
}

// linkLocked returns the state of link k, creating it. n.mu must be held.
func (n *Network) linkLocked(k linkKey) *link {
	l := n.links[k]
	if l == nil {
		l = &link{}
		n.links[k] = l
	}
	return l
}

// dropReason says which hook dropped a datagram before the link conditions.
type dropReason int

const (
	keep dropReason = iota
	dropNAT
	dropRouter
	dropFilter
)

// route runs the NATs, the Router and the filter on one datagram and returns
// the source the receiver sees, the receiving address, and why it was
// dropped, if it was.
func (n *Network) route(sender netip.AddrPort, data []byte, to netip.AddrPort) (from, dst netip.AddrPort, why dropReason) {
	p := &Packet{Sender: sender, From: sender, To: to, Data: data}
	if n.nats.active.Load() && !n.nats.route(p, time.Now()) {
		return p.From, p.To, dropNAT
	}
	if r := n.router.Load(); r != nil && !(*r).Route(p) {
		return p.From, p.To, dropRouter
	}
	if f := n.filter.Load(); f != nil && (*f)(p.From, p.To, p.Data) {
		return p.From, p.To, dropFilter
	}
	return p.From, p.To, keep
}

// send is the path of one datagram written by src (see the package doc).
// data is already the network's own copy.
func (n *Network) send(src *Conn, data []byte, to netip.AddrPort) {
	sender := src.source(to)
	from, why := sender, keep
	if n.nats.active.Load() || n.router.Load() != nil || n.filter.Load() != nil {
		from, to, why = n.route(sender, data, to)
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.count(src, func(s *Stats) { s.Sent++ })
	switch why {
	case keep:
		// Delivered below, under the link's conditions.
	case dropNAT:
		n.count(src, func(s *Stats) { s.Dropped.NAT++ })
		return
	case dropRouter:
		n.count(src, func(s *Stats) { s.Dropped.Router++ })
		return
	case dropFilter:
		n.count(src, func(s *Stats) { s.Dropped.Filter++ })
		return
	}

	k := linkKey{sender.Addr(), to.Addr()}
	c := &n.defaults
	l := n.links[k]
	if l != nil && l.override {
		c = &l.cond
	}
	if c.MTU > 0 && len(data) > c.MTU {
		n.count(src, func(s *Stats) { s.Dropped.MTU++ })
		return
	}
	if c.Loss > 0 && n.rng.Float64() < c.Loss {
		n.count(src, func(s *Stats) { s.Dropped.Loss++ })
		return
	}
	now := time.Now()
	at := now
	if c.Bandwidth > 0 {
		if l == nil {
			l = n.linkLocked(k)
		}
		start := now
		if l.busyUntil.After(now) {
			start = l.busyUntil
			backlog := int64(start.Sub(now)) * int64(c.Bandwidth) / int64(time.Second)
			if backlog+int64(len(data)) > c.queueBytes() {
				n.count(src, func(s *Stats) { s.Dropped.Bandwidth++ })
				return
			}
		}
		l.busyUntil = start.Add(time.Duration(int64(len(data)) * int64(time.Second) / int64(c.Bandwidth)))
		at = l.busyUntil
	}
	dup := c.Duplicate > 0 && n.rng.Float64() < c.Duplicate
	n.scheduleLocked(src, from, to, data, at.Add(n.delayLocked(c)))
	if dup {
		n.count(src, func(s *Stats) { s.Duplicated++ })
		cp := make([]byte, len(data))
		copy(cp, data)
		n.scheduleLocked(src, from, to, cp, at.Add(n.delayLocked(c)))
	}
}

// delayLocked draws the delay of one datagram under conditions c.
func (n *Network) delayLocked(c *Conditions) time.Duration {
	if c.Reorder > 0 && n.rng.Float64() < c.Reorder {
		if c.Delay > 0 {
			return 0
		}
		return reorderHold
	}
	d := c.Delay
	if c.Jitter > 0 {
		d += time.Duration(n.rng.Int64N(2*int64(c.Jitter)+1)) - c.Jitter
	}
	return max(d, 0)
}

// count applies f to the network counters and to src's.
func (n *Network) count(src *Conn, f func(*Stats)) {
	f(&n.stats)
	f(&src.stats)
}

// event is a datagram waiting for its delivery time.
type event struct {
	at   time.Time
	seq  uint64 // write order, to break ties deterministically
	src  *Conn
	from netip.AddrPort
	to   netip.AddrPort
	data []byte
}

// eventHeap orders events by (at, seq).
type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// scheduleLocked delivers a datagram now if at has come and nothing due is
// waiting ahead of it, else queues it for the timer.
func (n *Network) scheduleLocked(src *Conn, from, to netip.AddrPort, data []byte, at time.Time) {
	if !at.After(time.Now()) && (len(n.pending) == 0 || n.pending[0].at.After(at)) {
		n.deliverLocked(src, from, to, data)
		return
	}
	n.seq++
	e := &event{at: at, seq: n.seq, src: src, from: from, to: to, data: data}
	heap.Push(&n.pending, e)
	if n.pending[0] == e {
		n.armLocked(at)
	}
}

// armLocked makes the timer fire at at.
func (n *Network) armLocked(at time.Time) {
	d := time.Until(at)
	if n.timer == nil {
		n.timer = time.AfterFunc(d, n.fire)
		return
	}
	n.timer.Reset(d)
}

// fire delivers every due datagram and rearms the timer for the next one.
// A spurious call (after a Reset raced with a firing) does no harm.
func (n *Network) fire() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	now := time.Now()
	for len(n.pending) > 0 && !n.pending[0].at.After(now) {
		e := heap.Pop(&n.pending).(*event)
		n.deliverLocked(e.src, e.from, e.to, e.data)
	}
	if len(n.pending) > 0 {
		n.armLocked(n.pending[0].at)
	}
}

// deliverLocked puts a datagram in the queue of the conn at to.
func (n *Network) deliverLocked(src *Conn, from, to netip.AddrPort, data []byte) {
	dst := n.conns[to]
	if dst == nil {
		n.count(src, func(s *Stats) { s.Dropped.NoRoute++ })
		return
	}
	select {
	case dst.rx <- datagram{from: from, data: data}:
		n.stats.Delivered++
		dst.stats.Delivered++
	default:
		n.stats.Dropped.QueueFull++
		dst.stats.Dropped.QueueFull++
	}
}

// datagram is an entry of a receive queue.
type datagram struct {
	from netip.AddrPort
	data []byte
}

// Conn is one endpoint of a Network. It satisfies the PacketConn interface of
// package engine/net and is safe for concurrent use.
type Conn struct {
	n      *Network
	local  netip.AddrPort
	extra  atomic.Pointer[[]netip.AddrPort] // more addresses (AddAddr)
	rx     chan datagram
	done   chan struct{} // closed by Close
	closed atomic.Bool
	stats  Stats // guarded by n.mu
}

// ReadFrom blocks until a datagram arrives and copies it into b (truncating it
// if b is too short, like a UDP socket). After Close it returns an error that
// satisfies errors.Is(err, net.ErrClosed), even if datagrams are queued.
func (c *Conn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	select {
	case <-c.done:
		return 0, netip.AddrPort{}, c.opErr("read")
	default:
	}
	select {
	case d := <-c.rx:
		return copy(b, d.data), d.from, nil
	case <-c.done:
		return 0, netip.AddrPort{}, c.opErr("read")
	}
}

// WriteTo sends a copy of b to the conn at to and returns len(b), nil. It never
// blocks: a datagram that is lost, too large or finds a full queue is dropped
// silently and counted. It fails only if the conn is closed or to is invalid.
func (c *Conn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("write")
	}
	if !to.Addr().IsValid() {
		return 0, fmt.Errorf("vnet: write from %v to %v: invalid address", c.local, to)
	}
	data := make([]byte, len(b))
	copy(data, b)
	c.n.send(c, data, netip.AddrPortFrom(to.Addr().Unmap(), to.Port()))
	return len(b), nil
}

// LocalAddr returns the conn's address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// AddAddr gives the conn another address, as a dual-stack socket has an
// IPv4 and an IPv6 one: datagrams sent to addr reach c too, and a datagram
// c writes to an address of addr's family (IPv4 or IPv6) other than its
// LocalAddr's leaves from addr (the first one added of that family). The
// address must be specific and free, like Listen's; it is freed when c
// closes.
func (c *Conn) AddAddr(addr netip.AddrPort) error {
	ip := addr.Addr().Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || addr.Port() == 0 {
		return fmt.Errorf("vnet: add address %v: need a specific IP address and port", addr)
	}
	addr = netip.AddrPortFrom(ip, addr.Port())
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || c.closed.Load() {
		return c.opErr("add address")
	}
	if _, taken := n.conns[addr]; taken {
		return fmt.Errorf("vnet: add address %v: %w", addr, ErrAddrInUse)
	}
	n.conns[addr] = c
	var list []netip.AddrPort
	if old := c.extra.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, addr)
	c.extra.Store(&list)
	return nil
}

// source is the address a datagram to "to" leaves from: LocalAddr, or an
// address of to's family added with AddAddr when LocalAddr's differs.
func (c *Conn) source(to netip.AddrPort) netip.AddrPort {
	if c.local.Addr().Is4() == to.Addr().Is4() {
		return c.local
	}
	if extra := c.extra.Load(); extra != nil {
		for _, a := range *extra {
			if a.Addr().Is4() == to.Addr().Is4() {
				return a
			}
		}
	}
	return c.local
}

// Close closes the conn: blocked and later ReadFrom and WriteTo calls fail
// with net.ErrClosed, and the address becomes free. Closing twice returns an
// error that satisfies errors.Is(err, net.ErrClosed).
func (c *Conn) Close() error {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	if c.closed.Load() {
		return c.opErr("close")
	}
	c.closeLocked()
	if c.n.conns[c.local] == c {
		delete(c.n.conns, c.local)
	}
	if extra := c.extra.Load(); extra != nil {
		for _, a := range *extra {
			if c.n.conns[a] == c {
				delete(c.n.conns, a)
			}
		}
	}
	return nil
}

// closeLocked marks c closed and wakes its readers. n.mu must be held.
func (c *Conn) closeLocked() {
	if !c.closed.Swap(true) {
		close(c.done)
	}
}

// Stats returns the conn's counters (see Stats for what they cover).
func (c *Conn) Stats() Stats {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	return c.stats
}

// opErr returns the error of operation op on a closed conn.
func (c *Conn) opErr(op string) error {
	return &net.OpError{Op: op, Net: "vnet", Addr: net.UDPAddrFromAddrPort(c.local), Err: net.ErrClosed}
}
