package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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
// it, reports it (Status) and deletes it on Close. Its one goroutine ends on
// Close or when the context given to Start ends.
type Mapper struct {
	cfg    Config
	port   uint16
	log    hclog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	status Status
}

// Start starts a Mapper for the local UDP port (the port of the socket peers
// should reach). It returns at once; the first attempt runs in the
// background (Status says Pending until it ends, and Config.OnChange is
// called when it does). The Mapper stops, deleting its mapping, on Close or
// when ctx ends.
func Start(ctx context.Context, port uint16, cfg Config) *Mapper {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	m := &Mapper{
		cfg:    cfg,
		port:   port,
		log:    cfg.Logger.Named("portmap"),
		cancel: cancel,
		done:   make(chan struct{}),
		status: Status{State: Pending, Since: time.Now()},
	}
	go m.run(ctx)
	return m
}

// Status reports the Mapper's current state.
func (m *Mapper) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

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
		m.cfg.OnChange(s)
	}
}

func (m *Mapper) clients() []protoClient {
	var out []protoClient
	for _, p := range m.cfg.Protocols {
		switch p {
		case PCP:
			out = append(out, &pcpClient{cfg: m.cfg})
		case NATPMP:
			out = append(out, &natpmpClient{cfg: m.cfg})
		case UPnP:
			out = append(out, newUPnPClient(m.cfg))
		}
	}
	return out
}

func (m *Mapper) run(ctx context.Context) {
	defer close(m.done)
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
			if !sleep(ctx, m.cfg.Retry) {
				return
			}
			continue
		}
		m.log.Info("port mapped", "protocol", cur.Protocol, "external", cur.External, "internal", cur.Internal, "lifetime", cur.Lifetime)
		m.set(Status{State: Mapped, Mapping: cur})
		if m.keep(ctx, client, &cur) {
			return // closing: the deferred func deletes cur
		}
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

// keep renews cur at half its lifetime until ctx ends (true: closing) or the
// mapping lapses (false). A permanent UPnP lease is re-added every 20
// minutes, in case the router restarted.
func (m *Mapper) keep(ctx context.Context, c protoClient, cur *Mapping) bool {
	wait := renewWait(cur.Lifetime)
	for {
		if !sleep(ctx, wait) {
			return true
		}
		actx, cancel := context.WithTimeout(ctx, m.timeout(c))
		next, err := c.mapPort(actx, cur.Gateway, m.port, cur)
		cancel()
		if ctx.Err() != nil {
			return true
		}
		if err == nil {
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
