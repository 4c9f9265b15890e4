package net

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Reconnect and resume (docs/SEMANTICS.md, "Reconnect and resume";
// docs/PROTOCOL.md, "Resume").
//
// With Config.ResumeGrace set, a confirmed link that times out is not
// removed: it is suspended. It keeps its HostID, its keys, its KCP cores
// both ways and everything queued in them, and an EventAway is pushed.
// While suspended:
//
//   - its KCP core gets no updates: nothing is retransmitted into the dead
//     path, and reliable sends queue in the stream (still bounded by
//     Config.SendQueue); unreliable sends are not sent;
//   - what it holds stays charged to Config.HostReceiveBudget;
//   - it keeps its ordinary keepalive ping, and a client also sends a
//     resume probe (a ping) on each of its suspended links every
//     resumeProbe, so that the first datagram through a restored path
//     reaches the other end at once (and opens the client's NAT mapping
//     again).
//
// The first authenticated datagram with a fresh packet number from the
// peer, on the link's path, resumes the link: EventBack is pushed and the
// KCP core is flushed, which sends every segment still unacknowledged
// (their retransmission timers ran out while suspended) and everything
// queued meanwhile. Both streams continue where they stopped: nothing
// lost, nothing twice, in order. A datagram from a new address (the NAT
// rebound, the client moved) starts a path challenge there (pathval.go);
// the link resumes when the answer moves its path.
//
// Resuming needs no new handshake: the link's keys prove the peer, the
// replay window refuses a datagram seen before, and path validation
// refuses to follow a forged source address. After ResumeGrace the link is
// removed with the usual EventDisconnected (ErrTimeout).

// resumeProbe is how often a client sends a resume probe on each of its
// suspended links: the wait between a restored path and the resumed
// session, on top of one trip.
const resumeProbe = 50 * time.Millisecond

// resumeProbeTicks is resumeProbe in timer ticks.
const resumeProbeTicks = int(resumeProbe / tick)

// DefaultResumeGrace is the grace window the match server and the arena
// use (Config.ResumeGrace).
const DefaultResumeGrace = 25 * time.Second

// ResumeStats counts a host's suspended links (Config.ResumeGrace).
type ResumeStats struct {
	// Suspended is the number of links suspended now.
	Suspended int
	// Resumed counts links that came back within the grace window.
	Resumed uint64
	// Expired counts suspended links removed at the end of the window.
	Expired uint64
}

// resumeState is a host's set of suspended links, for the resume probes
// and the counters. Its mutex is a leaf: it is taken under link.mu, never
// the other way round.
type resumeState struct {
	mu        sync.Mutex
	suspended map[*link]struct{}

	resumed, expired atomic.Uint64
}

func (r *resumeState) add(l *link) {
	r.mu.Lock()
	if r.suspended == nil {
		r.suspended = make(map[*link]struct{})
	}
	r.suspended[l] = struct{}{}
	r.mu.Unlock()
}

func (r *resumeState) remove(l *link) {
	r.mu.Lock()
	delete(r.suspended, l)
	r.mu.Unlock()
}

func (r *resumeState) list(dst []*link) []*link {
	r.mu.Lock()
	for l := range r.suspended {
		dst = append(dst, l)
	}
	r.mu.Unlock()
	return dst
}

func (r *resumeState) stats() ResumeStats {
	r.mu.Lock()
	n := len(r.suspended)
	r.mu.Unlock()
	return ResumeStats{Suspended: n, Resumed: r.resumed.Load(), Expired: r.expired.Load()}
}

// suspendLocked suspends l, which timed out, if the host resumes links and
// l may be resumed (confirmed, not closing). It reports whether it did;
// if not, the caller removes the link. Call with l.mu held.
func (h *Host) suspendLocked(l *link, now time.Time) bool {
	if h.cfg.ResumeGrace <= 0 || !l.confirmed || l.closing != nil || l.remoteClosed != nil || l.suspended {
		return false
	}
	l.suspended = true
	l.away.Store(true)
	l.suspendedAt = now
	l.pathCheck = nil
	h.resume.add(l)
	h.events.Push(Event{Kind: EventAway, Peer: l.id, Err: ErrTimeout, Received: now})
	h.log.Debug("link suspended", "peer", l.id, "grace", h.cfg.ResumeGrace)
	return true
}

// unsuspendLocked ends l's suspension: it resumed, or it goes. Call with
// l.mu held.
func (h *Host) unsuspendLocked(l *link) {
	l.suspended = false
	l.away.Store(false)
	h.resume.remove(l)
}

// suspendExpiredLocked reports whether l is suspended past the grace
// window, and counts it. Call with l.mu held.
func (h *Host) suspendExpiredLocked(l *link, now time.Time) bool {
	if !l.suspended || now.Sub(l.suspendedAt) < h.cfg.ResumeGrace {
		return false
	}
	h.resume.expired.Add(1)
	return true
}

// onPathLocked reports whether a datagram that came from addr (relayed:
// through the server's relay) came on l's path: then the caller resumes a
// suspended link at once (handleData, recv.go). One from another address resumes it only once
// the address has answered a path challenge (resumeMoved): a datagram
// captured on the way and sent again from elsewhere, before the real one
// arrived, proves nothing about where the peer is. Call with l.mu held.
func (h *Host) onPathLocked(l *link, from netip.AddrPort, relayed bool) bool {
	a, direct := directAddr(l.path)
	return relayed || !direct || a == from
}

// resumeLocked brings a suspended link back: its peer was heard on the
// link's path. Its KCP core is flushed, which sends every segment whose
// retransmission timer ran out while suspended (all of them, by then),
// everything queued meanwhile, and acks. Call with l.mu held.
func (h *Host) resumeLocked(l *link, now time.Time) {
	h.unsuspendLocked(l)
	h.resume.resumed.Add(1)
	l.lastPing = now
	h.events.Push(Event{Kind: EventBack, Peer: l.id, Received: now})
	h.log.Debug("link resumed", "peer", l.id, "away", now.Sub(l.suspendedAt), "path", pathString(l.path))
	l.markActiveLocked()
	l.movePendLocked(true) // what was sent while suspended
	kcpFlush(l.kcp, kcpFlushFull)
}

// resumeMoved resumes l, if suspended, now that its path moved to an
// address that answered a path challenge. Call without l.mu.
func (h *Host) resumeMoved(l *link, now time.Time) {
	l.mu.Lock()
	if l.suspended && !l.removed {
		h.resumeLocked(l, now)
	}
	out, p := l.takeLocked()
	l.mu.Unlock()
	l.writeOut(out, p)
}

// probeSuspended sends a resume probe (a ping) on each suspended link of
// a client. The timer goroutine calls it every resumeProbe.
func (h *Host) probeSuspended(now time.Time, scratch []*link) []*link {
	if h.cfg.Accept {
		return scratch
	}
	links := h.resume.list(scratch[:0])
	for _, l := range links {
		l.mu.Lock()
		if l.removed || !l.suspended {
			l.mu.Unlock()
			continue
		}
		l.queuePingLocked(now)
		out, p := l.takeLocked()
		l.mu.Unlock()
		l.writeOut(out, p)
	}
	clear(links)
	return links[:0]
}

// Back-off of DialRetry between attempts: from dialRetryMin, doubling, at
// most dialRetryMax, each wait drawn at random between half and all of it
// (so that clients a server dropped at once do not come back in step).
const (
	dialRetryMin = 250 * time.Millisecond
	dialRetryMax = 5 * time.Second
)

// DialRetry is Dial, attempted again and again with back-off while the
// failure is one that may pass: no answer in time (each attempt is
// bounded by Config.HandshakeTimeout), the server busy or full, the
// cookie refused. It returns when an attempt succeeds, on any other
// error (a version mismatch, a server key refused), or when ctx ends,
// with the last attempt's error.
func (h *Host) DialRetry(ctx context.Context, addr netip.AddrPort) error {
	return h.DialRetryWith(ctx, addr, DialOptions{})
}

// DialRetryWith is DialRetry with the options of DialWith (credentials).
func (h *Host) DialRetryWith(ctx context.Context, addr netip.AddrPort, opts DialOptions) error {
	wait := dialRetryMin
	for {
		actx, cancel := context.WithTimeout(ctx, h.cfg.HandshakeTimeout)
		err := h.DialWith(actx, addr, opts)
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return fmt.Errorf("dial %v: %w", addr, ctx.Err())
			}
			return err
		}
		d := wait/2 + rand.N(wait/2+1)
		h.log.Debug("dial again", "server", addr, "in", d, "error", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		case <-h.done:
			t.Stop()
			return ErrHostClosed
		}
		wait = min(2*wait, dialRetryMax)
	}
}

// retryable reports whether a Dial error may pass by itself.
func retryable(err error) bool {
	var ske *ServerKeyError
	if errors.As(err, &ske) {
		return false
	}
	return errors.Is(err, ErrHandshakeTimeout) || errors.Is(err, ErrServerBusy) ||
		errors.Is(err, ErrServerFull) || errors.Is(err, ErrBadCookie) || errors.Is(err, context.DeadlineExceeded)
}

// ErrSessionRestarted is the Err of an EventBack on a server for a client
// that came back with a new handshake rather than on its link: a login of
// the user of a suspended session (Config.Authenticate) takes the session
// over, with its HostID, when its client process restarted or lost its
// keys (under SessionMany only a login from the session's own address).
// The reliable streams start again: what was in flight both ways when the
// session was suspended is lost (what the server sent is not sent again).
// docs/SEMANTICS.md, "Reconnect and resume".
var ErrSessionRestarted = errors.New("skein/net: session resumed by a new login")

// takeOver ends the suspended session id of user, which a new login of
// the same user takes over: the link goes as removeLink takes a link out
// (removeLinkLocked: its TCP connection closed, a birthday attempt ended)
// but without an event (the new link reports EventBack with
// ErrSessionRestarted once confirmed), and the HostID passes to the new
// link, which came from the address from. If the session came back on
// its own meanwhile, it is kicked as a replaced session would be.
func (h *Host) takeOver(id HostID, user string, from netip.AddrPort) {
	l := h.link(id)
	if l == nil {
		return
	}
	l.mu.Lock()
	if !l.suspended || l.removed {
		l.mu.Unlock()
		h.log.Info("session came back during a new login: replaced", "user", user, "id", id)
		_ = h.closeLink(id, ErrSessionReplaced, "signed in elsewhere")
		return
	}
	h.removeLinkLocked(l, nil, from) // unlocks l.mu
	h.log.Info("suspended session taken over by a new login", "user", user, "id", id)
}
