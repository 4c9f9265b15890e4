package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// protoClient is one protocol's way to make, renew and delete a mapping.
type protoClient interface {
	proto() Protocol
	// mapPort asks for a mapping of internal; prev is the mapping to renew
	// (nil for a new one).
	mapPort(ctx context.Context, gw netip.Addr, internal uint16, prev *Mapping) (Mapping, error)
	unmap(ctx context.Context, m Mapping) error
}

// Mapper keeps a UDP port mapping for one local port: it makes it, renews
// it, reports it (Status, Stats) and deletes it on Close. Its goroutines
// (the Mapper's, and the one that hears the gateway's announcements) end on
// Close or when the context given to Start ends.
type Mapper struct {
	cfg    Config
	port   uint16
	log    hclog.Logger
	env    *env
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // capacity 1: an announcement asks for a renewal now
	wg     sync.WaitGroup

	mu     sync.Mutex
	status Status
	gw     netip.Addr // the gateway last asked (announcements must come from it)
}

// Start starts a Mapper for the local UDP port (the port of the socket peers
// should reach). It returns at once; the first attempt runs in the
// background (Status says Pending until it ends, and Config.OnChange is
// called when it does). The Mapper stops, deleting its mapping, on Close or
// when ctx ends.
func Start(ctx context.Context, port uint16, cfg Config) *Mapper {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	log := cfg.Logger.Named("portmap")
	m := &Mapper{
		cfg:    cfg,
		port:   port,
		log:    log,
		env:    &env{log: log},
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		wake:   make(chan struct{}, 1),
		status: Status{State: Pending, Since: time.Now()},
	}
	go m.run(ctx)
	return m
}

// Status reports the Mapper's current state, with its counters.
func (m *Mapper) Status() Status {
	m.mu.Lock()
	s := m.status
	m.mu.Unlock()
	s.Stats = m.Stats()
	return s
}

// Stats returns the Mapper's counters: requests, answers and
// announcements, mappings made, renewed and lost, gateway restarts seen,
// and the datagrams dropped by reason.
func (m *Mapper) Stats() Stats { return m.env.st.snapshot() }

// Close stops the Mapper and deletes its mapping (waiting at most
// Config.Timeout for the gateway), then returns. It is safe to call more than
// once.
func (m *Mapper) Close() error {
	m.cancel()
	<-m.done
	return nil
}

func (m *Mapper) set(s Status) {
	s.Since = time.Now()
	m.mu.Lock()
	m.status = s
	m.mu.Unlock()
	if m.cfg.OnChange != nil {
		s.Stats = m.Stats()
		m.cfg.OnChange(s)
	}
}

// gateway is the gateway last asked (invalid before the first attempt).
func (m *Mapper) gateway() netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gw
}

// setGateway records the gateway an attempt asks and, the first time,
// starts listening for its announcements (when PCP or NAT-PMP is among
// the protocols).
func (m *Mapper) setGateway(gw netip.Addr) {
	m.mu.Lock()
	first := !m.gw.IsValid()
	m.gw = gw
	m.mu.Unlock()
	if !first || !slices.ContainsFunc(m.cfg.Protocols, func(p Protocol) bool { return p == PCP || p == NATPMP }) {
		return
	}
	pc := m.listenAnnouncements(gw)
	if pc == nil {
		return
	}
	context.AfterFunc(m.ctx, func() { pc.Close() }) // ends the reader
	m.wg.Add(1)
	go m.readAnnouncements(pc)
}

func (m *Mapper) clients() []protoClient {
	var out []protoClient
	for _, p := range m.cfg.Protocols {
		switch p {
		case PCP:
			out = append(out, &pcpClient{cfg: m.cfg, env: m.env})
		case NATPMP:
			out = append(out, &natpmpClient{cfg: m.cfg, env: m.env})
		case UPnP:
			out = append(out, newUPnPClient(m.cfg, m.env))
		}
	}
	return out
}

func (m *Mapper) run(ctx context.Context) {
	defer close(m.done)
	defer m.wg.Wait() // the announcement reader ends with ctx
	var (
		cur    Mapping
		client protoClient
	)
	defer func() {
		if client != nil {
			dctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
			err := client.unmap(dctx, cur)
			cancel()
			if err != nil {
				m.log.Warn("mapping not deleted", "protocol", cur.Protocol, "external", cur.External, "error", err)
			} else {
				m.log.Debug("mapping deleted", "protocol", cur.Protocol, "external", cur.External)
			}
		}
		m.set(Status{State: Closed, Err: ErrClosed})
	}()
	for ctx.Err() == nil {
		var err error
		cur, client, err = m.attempt(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Debug("no port mapping", "error", err, "retry", m.cfg.Retry)
			m.set(Status{State: Unavailable, Err: err})
			woken, ok := m.pause(ctx, m.cfg.Retry)
			if !ok {
				return
			}
			if woken {
				m.env.st.remaps.Add(1)
				m.log.Info("the gateway announced itself: asking again now")
			}
			continue
		}
		m.env.st.mapped.Add(1)
		m.log.Info("port mapped", "protocol", cur.Protocol, "external", cur.External, "internal", cur.Internal, "lifetime", cur.Lifetime)
		m.set(Status{State: Mapped, Mapping: cur})
		if m.keep(ctx, client, &cur) {
			return // closing: the deferred func deletes cur
		}
		m.env.st.lapsed.Add(1)
		client = nil // lost: ask every protocol again
		m.set(Status{State: Pending, Err: fmt.Errorf("skein/portmap: mapping of %v lapsed", cur.External)})
	}
}

// attempt tries each protocol in order and returns the first mapping made.
func (m *Mapper) attempt(ctx context.Context) (Mapping, protoClient, error) {
	gw := m.cfg.Gateway
	if !gw.IsValid() {
		var err error
		if gw, err = defaultGateway(); err != nil {
			return Mapping{}, nil, err
		}
		if !homeRouter(gw) {
			return Mapping{}, nil, fmt.Errorf("%w: the default gateway %v is no home router's (not a private address)", ErrNoGateway, gw)
		}
	}
	m.setGateway(gw)
	var errs []error
	for _, c := range m.clients() {
		actx, cancel := context.WithTimeout(ctx, m.timeout(c))
		mp, err := c.mapPort(actx, gw, m.port, nil)
		cancel()
		if err == nil {
			mp.Expires = expiry(mp.Lifetime)
			return mp, c, nil
		}
		if ctx.Err() != nil {
			return Mapping{}, nil, ctx.Err()
		}
		m.log.Debug("protocol failed", "protocol", c.proto(), "gateway", gw, "error", err)
		errs = append(errs, fmt.Errorf("%s: %w", c.proto(), err))
	}
	return Mapping{}, nil, errors.Join(errs...)
}

// keep renews cur at half its lifetime, or at once when the gateway
// announces itself, until ctx ends (true: closing) or the mapping lapses
// (false). A permanent UPnP lease is re-added every 20 minutes, in case
// the router restarted.
func (m *Mapper) keep(ctx context.Context, c protoClient, cur *Mapping) bool {
	wait := renewWait(cur.Lifetime)
	for {
		woken, ok := m.pause(ctx, wait)
		if !ok {
			return true
		}
		if woken {
			m.env.st.remaps.Add(1)
			m.log.Info("the gateway announced itself: renewing now", "protocol", cur.Protocol, "external", cur.External)
		}
		actx, cancel := context.WithTimeout(ctx, m.timeout(c))
		next, err := c.mapPort(actx, cur.Gateway, m.port, cur)
		cancel()
		if ctx.Err() != nil {
			return true
		}
		if err == nil {
			m.env.st.renewed.Add(1)
			next.Expires = expiry(next.Lifetime)
			changed := next.External != cur.External
			*cur = next
			m.log.Debug("mapping renewed", "protocol", next.Protocol, "external", next.External, "lifetime", next.Lifetime)
			if changed {
				m.log.Info("mapping renewed at another address", "protocol", next.Protocol, "external", next.External)
			}
			m.set(Status{State: Mapped, Mapping: next})
			wait = renewWait(next.Lifetime)
			continue
		}
		left := time.Until(cur.Expires)
		if cur.Lifetime != 0 && left <= m.cfg.Timeout {
			m.log.Warn("mapping lapsed: renewal failed", "protocol", cur.Protocol, "external", cur.External, "error", err)
			return false
		}
		m.log.Debug("renewal failed, retrying", "protocol", cur.Protocol, "error", err)
		m.set(Status{State: Mapped, Mapping: *cur, Err: err})
		wait = max(left/2, m.cfg.Timeout)
		if cur.Lifetime == 0 {
			wait = time.Minute
		}
	}
}

// pause waits d, or less when the gateway announces itself (then a random
// wait of up to the announce jitter, if that ends sooner: woken), or until
// ctx ends (ok false).
func (m *Mapper) pause(ctx context.Context, d time.Duration) (woken, ok bool) {
	deadline := time.Now().Add(d)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return woken, true
		case <-ctx.Done():
			return woken, false
		case <-m.wake:
			if soon := time.Now().Add(m.jitter()); soon.Before(deadline) {
				deadline, woken = soon, true
				t.Reset(time.Until(deadline))
			}
		}
	}
}

// timeout bounds one attempt of c: Config.Timeout, twice that for UPnP
// (discovery, description and the SOAP call).
func (m *Mapper) timeout(c protoClient) time.Duration {
	if c.proto() == UPnP {
		return 2 * m.cfg.Timeout
	}
	return m.cfg.Timeout
}

// renewWait is how long keep waits before renewing a mapping granted for
// lifetime: half of it, or 20 minutes for a permanent UPnP lease.
func renewWait(lifetime time.Duration) time.Duration {
	if lifetime == 0 {
		return 20 * time.Minute
	}
	return lifetime / 2
}

func expiry(d time.Duration) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
