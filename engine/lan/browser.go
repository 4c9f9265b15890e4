package lan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/ipv4"
)

// BrowserConfig configures a Browser. The zero value listens on DefaultPort
// for beacons of any kind from the LAN, by broadcast and multicast, and
// keeps entries for DefaultTTL after their last beacon.
type BrowserConfig struct {
	// Port is the UDP port to listen on. Zero means DefaultPort. Several
	// browsers on one machine share it.
	Port uint16
	// Scope is where beacons may come from: the LAN (default) or this
	// machine only (beacons from other addresses are dropped, DropScope).
	Scope Scope
	// Methods selects broadcast, multicast or both (zero: both). Without
	// Multicast the browser joins no group.
	Methods Method
	// Group is the multicast group. Unset means DefaultGroup.
	Group netip.Addr
	// Kind, when not empty, lists only beacons of this kind (the others
	// are counted in Ignored).
	Kind string
	// TTL is how long an entry lives after its last beacon. Zero means
	// DefaultTTL (five default intervals).
	TTL time.Duration
	// MaxEntries bounds the list; beacons of new advertisers beyond it
	// are dropped (DropFull). Zero means 256.
	MaxEntries int
	// Logger receives logs under the name "lan". Nil: no logs.
	Logger hclog.Logger
}

// DropReason says why a Browser dropped a datagram.
type DropReason int

const (
	// DropMalformed: truncated, a field over its limit or out of range,
	// bytes after the end (see ErrShort, ErrTooLarge, ErrMalformed).
	DropMalformed DropReason = iota
	// DropForeign: no beacon magic (another program uses the port).
	DropForeign
	// DropVersion: a beacon format version this package does not read.
	DropVersion
	// DropScope: from outside the browser's scope, or from an unspecified
	// source address.
	DropScope
	// DropFull: a new advertiser found the list at MaxEntries.
	DropFull
	// NumDropReasons is the number of drop reasons.
	NumDropReasons
)

func (r DropReason) String() string {
	switch r {
	case DropMalformed:
		return "malformed"
	case DropForeign:
		return "foreign"
	case DropVersion:
		return "version"
	case DropScope:
		return "scope"
	case DropFull:
		return "full"
	default: // NumDropReasons and anything past it
		return fmt.Sprintf("DropReason(%d)", int(r))
	}
}

// BrowserStats counts what a Browser received.
type BrowserStats struct {
	// Received counts datagrams read; Accepted the beacons listed (or
	// goodbyes applied); Ignored the valid beacons of another Kind.
	Received, Accepted, Ignored uint64
	// Drops counts the rest by reason.
	Drops [NumDropReasons]uint64
}

// ErrClosed: the Browser was closed.
var ErrClosed = errors.New("skein/lan: closed")

// rescanEvery is how often a Browser joins the group on new interfaces.
const rescanEvery = 5 * time.Second

// Browser listens for beacons and keeps the live list of advertisers. It
// only lists: it never connects anywhere, and everything in an Entry came
// from the network unchecked beyond the wire format.
type Browser struct {
	cfg  BrowserConfig
	log  hclog.Logger
	conn *net.UDPConn
	pc   *ipv4.PacketConn

	mu      sync.Mutex
	tab     *table
	changed chan struct{} // capacity 1

	stopCtx   func() bool
	closeOnce sync.Once
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup

	received, accepted, ignored atomic.Uint64
	drops                       [NumDropReasons]atomic.Uint64
}

// Browse starts listening for beacons until Close is called or ctx ends.
func Browse(ctx context.Context, cfg BrowserConfig) (*Browser, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	cfg.Methods = cfg.Methods.orBoth()
	g, err := groupOr(cfg.Group)
	if err != nil {
		return nil, err
	}
	cfg.Group = g
	// 0.0.0.0 hears broadcasts and multicast alike; Scope filters sources.
	conn, err := listenShared(fmt.Sprintf("0.0.0.0:%d", cfg.Port))
	if err != nil {
		return nil, fmt.Errorf("skein/lan: browser socket: %w", err)
	}
	b := &Browser{
		cfg:     cfg,
		log:     cfg.Logger.Named("lan").With("port", cfg.Port),
		conn:    conn,
		pc:      ipv4.NewPacketConn(conn),
		tab:     newTable(cfg.TTL, cfg.MaxEntries),
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	b.wg.Add(1)
	go b.loop()
	b.stopCtx = context.AfterFunc(ctx, b.shutdown)
	return b, nil
}

// Entries returns the live entries, sorted by name, then address.
func (b *Browser) Entries() []Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tab.entries(time.Now())
}

// Changed has a value when the list changed (an entry came, went, or
// changed what it shows) since it was last read: select on it, then call
// Entries.
func (b *Browser) Changed() <-chan struct{} { return b.changed }

// Wait returns the first live entry for which match returns true (any
// entry if match is nil), waiting for one until ctx ends (ctx.Err()) or the
// browser closes (ErrClosed). It reads Changed: do not use both at once.
func (b *Browser) Wait(ctx context.Context, match func(Entry) bool) (Entry, error) {
	for {
		for _, e := range b.Entries() {
			if match == nil || match(e) {
				return e, nil
			}
		}
		select {
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		case <-b.done:
			return Entry{}, ErrClosed
		case <-b.changed:
		}
	}
}

// Stats returns the browser's counters.
func (b *Browser) Stats() BrowserStats {
	s := BrowserStats{Received: b.received.Load(), Accepted: b.accepted.Load(), Ignored: b.ignored.Load()}
	for i := range s.Drops {
		s.Drops[i] = b.drops[i].Load()
	}
	return s
}

// Close stops listening. It is safe to call more than once.
func (b *Browser) Close() error {
	b.stopCtx()
	b.shutdown()
	return nil
}

// shutdown closes the socket, which ends the loop, and waits for it.
func (b *Browser) shutdown() {
	b.closeOnce.Do(func() {
		close(b.done)
		b.conn.Close()
	})
	b.wg.Wait()
}

func (b *Browser) loop() {
	defer b.wg.Done()
	joined := make(map[int]bool) // interface index -> member of the group
	rescan := time.Now()
	b.join(joined)
	buf := make([]byte, 2048) // larger than any beacon, to see oversized ones
	for {
		now := time.Now()
		if now.After(rescan) {
			b.join(joined)
			rescan = now.Add(rescanEvery)
		}
		b.mu.Lock()
		if b.tab.expire(now) {
			b.signal()
		}
		deadline := b.tab.next()
		b.mu.Unlock()
		if deadline.IsZero() || deadline.After(rescan) {
			deadline = rescan
		}
		if err := b.conn.SetReadDeadline(deadline); err != nil {
			// Only a closed socket refuses a deadline; reading without
			// one would stop the expiry of the list.
			if !errors.Is(err, net.ErrClosed) {
				b.log.Error("set read deadline", "error", err)
			}
			return
		}
		n, src, err := b.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				b.log.Error("read", "error", err)
			}
			return
		}
		b.handle(buf[:n], src, time.Now())
	}
}

// handle checks one datagram and applies it to the list.
func (b *Browser) handle(data []byte, src netip.AddrPort, now time.Time) {
	b.received.Add(1)
	from := src.Addr().Unmap()
	if !from.IsValid() || from.IsUnspecified() || (b.cfg.Scope == ScopeLoopback && !from.IsLoopback()) {
		b.drop(DropScope, src, nil)
		return
	}
	bc, err := DecodeBeacon(data)
	if err != nil {
		switch {
		case errors.Is(err, ErrMagic):
			b.drop(DropForeign, src, err)
		case errors.Is(err, ErrVersion):
			b.drop(DropVersion, src, err)
		default:
			b.drop(DropMalformed, src, err)
		}
		return
	}
	if b.cfg.Kind != "" && bc.Kind != b.cfg.Kind {
		b.ignored.Add(1)
		return
	}
	b.mu.Lock()
	changed, full := b.tab.observe(bc, from, now)
	if !full {
		// Counted before the waiters wake, so that a Wait that returns
		// finds the beacon in Stats too.
		b.accepted.Add(1)
	}
	if changed {
		b.signal()
	}
	b.mu.Unlock()
	if full {
		b.drop(DropFull, src, nil)
	}
}

func (b *Browser) drop(r DropReason, src netip.AddrPort, err error) {
	b.drops[r].Add(1)
	if b.log.IsDebug() {
		b.log.Debug("datagram dropped", "from", src, "reason", r, "error", err)
	}
}

// signal notes a change without blocking (b.mu held).
func (b *Browser) signal() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// join adds the group on the interfaces that came up since the last call.
func (b *Browser) join(joined map[int]bool) {
	if b.cfg.Methods&Multicast == 0 {
		return
	}
	grp := &net.UDPAddr{IP: b.cfg.Group.AsSlice()}
	for _, ifi := range multicastInterfaces(b.cfg.Scope) {
		if joined[ifi.Index] {
			continue
		}
		if err := b.pc.JoinGroup(&ifi, grp); err != nil {
			b.log.Debug("cannot join the multicast group", "interface", ifi.Name, "error", err)
			continue
		}
		joined[ifi.Index] = true
		b.log.Debug("joined the multicast group", "interface", ifi.Name, "group", b.cfg.Group)
	}
}
