package lan

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/ipv4"
)

// AdvertiserConfig configures an Advertiser. The zero value advertises on
// the LAN, by broadcast and multicast, to DefaultPort every second.
type AdvertiserConfig struct {
	// Port is the UDP port browsers listen on. Zero means DefaultPort.
	Port uint16
	// Scope is where beacons go: the LAN (default) or this machine only.
	Scope Scope
	// Methods selects broadcast, multicast or both (zero: both).
	Methods Method
	// Group is the multicast group. Unset means DefaultGroup.
	Group netip.Addr
	// Targets, when not empty, replaces Scope, Methods and Port: beacons go
	// to exactly these addresses (broadcast, multicast or unicast, for
	// example a friend's address over a VPN).
	Targets []netip.AddrPort
	// Interval is the time between beacons (each one jittered by up to
	// ±10% so that advertisers do not fall in step). Zero means
	// DefaultInterval. Browsers should keep entries for a few intervals.
	Interval time.Duration
	// Logger receives logs under the name "lan". Nil: no logs.
	Logger hclog.Logger
}

// AdvertiserStats counts what an Advertiser sent.
type AdvertiserStats struct {
	// Rounds counts beacon rounds (one beacon to every target).
	Rounds uint64
	// Sent counts datagrams sent; SendErrors the ones the OS refused (an
	// interface without a route, a platform without loopback broadcast).
	Sent, SendErrors uint64
}

// minGap bounds how often Update makes an Advertiser send.
const minGap = 100 * time.Millisecond

// Advertiser announces one Beacon on the LAN until it is closed. Nothing is
// advertised unless a game calls Advertise.
type Advertiser struct {
	cfg  AdvertiserConfig
	log  hclog.Logger
	conn *net.UDPConn
	pc   *ipv4.PacketConn

	mu     sync.Mutex
	beacon Beacon

	kick      chan struct{} // capacity 1: send soon
	done      chan struct{}
	closeOnce sync.Once
	stopCtx   func() bool
	wg        sync.WaitGroup

	rounds, sent, errs atomic.Uint64
}

// Advertise starts announcing b: one beacon at once, then one every
// Interval, until Close is called or ctx ends. It picks b.Instance when it
// is zero, and fails when b does not Validate or the socket cannot be
// opened.
func Advertise(ctx context.Context, cfg AdvertiserConfig, b Beacon) (*Advertiser, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
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
	cfg.Targets = append([]netip.AddrPort(nil), cfg.Targets...)
	b.Leaving = false
	for b.Instance == 0 {
		b.Instance = rand.Uint64()
	}
	b.Info = append([]byte(nil), b.Info...)
	if err := b.Validate(); err != nil {
		return nil, err
	}
	local := "0.0.0.0:0"
	if cfg.Scope == ScopeLoopback && len(cfg.Targets) == 0 {
		local = "127.0.0.1:0" // multicast on lo then carries a usable source address
	}
	conn, err := listenShared(local)
	if err != nil {
		return nil, fmt.Errorf("skein/lan: advertiser socket: %w", err)
	}
	pc := ipv4.NewPacketConn(conn)
	// The LAN segment only (TTL 1 is also the default), and seen by
	// browsers on this machine. A socket that refuses either still sends
	// unicast beacons (Targets) and multicast with the system's defaults.
	if err := pc.SetMulticastTTL(1); err != nil {
		cfg.Logger.Named("lan").Debug("multicast TTL", "error", err)
	}
	if err := pc.SetMulticastLoopback(true); err != nil {
		cfg.Logger.Named("lan").Debug("multicast loopback", "error", err)
	}
	a := &Advertiser{
		cfg:    cfg,
		log:    cfg.Logger.Named("lan").With("instance", fmt.Sprintf("%016x", b.Instance)),
		conn:   conn,
		pc:     pc,
		beacon: b,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	a.log.Debug("advertising", "name", b.Name, "kind", b.Kind, "port", cfg.Port, "scope", cfg.Scope)
	a.wg.Add(1)
	go a.loop()
	a.stopCtx = context.AfterFunc(ctx, a.shutdown)
	return a, nil
}

// Instance returns the advertiser's instance ID (browsers key entries by
// it; a game that also browses uses it to skip its own entry).
func (a *Advertiser) Instance() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.beacon.Instance
}

// Beacon returns a copy of the beacon being advertised.
func (a *Advertiser) Beacon() Beacon {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.beacon
	b.Info = append([]byte(nil), b.Info...)
	return b
}

// Update changes the beacon (for example the player count) with fn, which
// gets a copy to edit. The instance cannot change. The new beacon goes out
// at once, but not more often than every 100 ms.
func (a *Advertiser) Update(fn func(*Beacon)) error {
	a.mu.Lock()
	b := a.beacon
	b.Info = append([]byte(nil), b.Info...)
	fn(&b)
	b.Instance, b.Leaving = a.beacon.Instance, false
	if err := b.Validate(); err != nil {
		a.mu.Unlock()
		return err
	}
	a.beacon = b
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
	return nil
}

// Stats returns the advertiser's counters.
func (a *Advertiser) Stats() AdvertiserStats {
	return AdvertiserStats{Rounds: a.rounds.Load(), Sent: a.sent.Load(), SendErrors: a.errs.Load()}
}

// Close sends a goodbye beacon (browsers drop the entry at once), stops
// advertising and closes the socket. It is safe to call more than once.
func (a *Advertiser) Close() error {
	a.stopCtx()
	a.shutdown()
	return nil
}

// shutdown stops the loop (after its goodbye) and waits for it.
func (a *Advertiser) shutdown() {
	a.closeOnce.Do(func() { close(a.done) })
	a.wg.Wait()
}

func (a *Advertiser) loop() {
	defer a.wg.Done()
	defer a.conn.Close()
	failing := make(map[string]bool) // targets whose last send failed
	var last time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			a.round(failing, true)
			return
		case <-a.kick:
			if wait := minGap - time.Since(last); wait > 0 {
				t.Reset(wait)
				continue
			}
		case <-t.C:
		}
		a.round(failing, false)
		last = time.Now()
		jitter := time.Duration(rand.Int64N(int64(a.cfg.Interval)/5+1)) - a.cfg.Interval/10
		t.Reset(a.cfg.Interval + jitter)
	}
}

// round sends the beacon (or the goodbye) to every target.
func (a *Advertiser) round(failing map[string]bool, goodbye bool) {
	a.mu.Lock()
	b := a.beacon
	a.mu.Unlock()
	b.Leaving = goodbye
	buf, err := AppendBeacon(make([]byte, 0, MaxBeaconSize), &b)
	if err != nil { // Validate ran in Advertise and Update
		a.log.Error("beacon does not encode", "error", err)
		return
	}
	ts, err := a.targets()
	if err != nil {
		a.log.Warn("listing interfaces", "error", err)
	}
	a.rounds.Add(1)
	for _, t := range ts {
		key := t.String()
		if t.ifi != nil {
			err = a.pc.SetMulticastInterface(t.ifi)
		}
		if err == nil {
			_, err = a.conn.WriteToUDPAddrPort(buf, t.addr)
		}
		if err != nil {
			a.errs.Add(1)
			if !failing[key] {
				a.log.Warn("beacon not sent", "to", key, "error", err)
			} else if a.log.IsTrace() {
				a.log.Trace("beacon not sent", "to", key, "error", err)
			}
			failing[key] = true
			err = nil
			continue
		}
		a.sent.Add(1)
		if failing[key] {
			a.log.Info("beacon sent again", "to", key)
			delete(failing, key)
		}
	}
}

func (a *Advertiser) targets() ([]target, error) {
	if len(a.cfg.Targets) > 0 {
		ts := make([]target, len(a.cfg.Targets))
		for i, t := range a.cfg.Targets {
			ts[i] = target{addr: t}
		}
		return ts, nil
	}
	return findTargets(a.cfg.Scope, a.cfg.Methods, a.cfg.Group, a.cfg.Port)
}
