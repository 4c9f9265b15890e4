package net

import (
	"sync"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

const kcpFlushFull = kcp.IKCP_FLUSH_FULL

// tick is the timer goroutine's period: KCP's update interval.
const tick = kcpInterval * time.Millisecond

// housekeepEvery ticks, the timer goroutine walks every link for
// keepalives, timeouts and closes.
const housekeepEvery = 10

// scheduler holds the work lists the timer goroutine serves: links whose
// KCP core needs updates (active), links with a deferred flush, and links
// whose messages wait for room in the event queue (stalled). Its mutex is a
// leaf: it is taken under link.mu, never the other way round.
type scheduler struct {
	mu      sync.Mutex
	active  []*link
	flush   []*link
	stalled []*link
	watched []*link // links on a direct path, checked every tick (failover.go)
	spare   []*link
	flushCh chan struct{}
	resume  chan struct{}
	events  []Event // the timer goroutine's scratch for resumed deliveries
}

func (s *scheduler) init() {
	s.flushCh = make(chan struct{}, 1)
	s.resume = make(chan struct{}, 1)
}

func (s *scheduler) addActive(l *link) {
	s.mu.Lock()
	s.active = append(s.active, l)
	s.mu.Unlock()
}

func (s *scheduler) addFlush(l *link) {
	s.mu.Lock()
	s.flush = append(s.flush, l)
	s.mu.Unlock()
	select {
	case s.flushCh <- struct{}{}:
	default:
	}
}

func (s *scheduler) addWatched(l *link) {
	s.mu.Lock()
	s.watched = append(s.watched, l)
	s.mu.Unlock()
}

func (s *scheduler) addStalled(l *link) {
	s.mu.Lock()
	s.stalled = append(s.stalled, l)
	s.mu.Unlock()
}

func (s *scheduler) wakeResume() {
	select {
	case s.resume <- struct{}{}:
	default:
	}
}

func (s *scheduler) take(list *[]*link) []*link {
	s.mu.Lock()
	l := *list
	*list = s.spare[:0]
	s.spare = nil
	s.mu.Unlock()
	return l
}

func (s *scheduler) give(l []*link) {
	clear(l)
	s.mu.Lock()
	if s.spare == nil {
		s.spare = l[:0]
	}
	s.mu.Unlock()
}

// timerLoop is the host's timer goroutine.
func (h *Host) timerLoop() {
	defer h.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	n := 0
	var probing []*link
	for {
		select {
		case <-h.done:
			return
		case <-h.sched.flushCh:
			h.flushDeferred()
		case <-h.sched.resume:
			h.resumeStalled()
		case now := <-t.C:
			h.bt.tick()
			h.updateActive()
			h.failoverTick(now)
			n++
			if n%resumeProbeTicks == 0 {
				probing = h.probeSuspended(now, probing)
			}
			if n%housekeepEvery == 0 {
				h.housekeep(now)
				h.resumeStalled()
			}
		}
	}
}

// flushDeferred flushes links whose sends were deferred while data was in
// flight, so that everything queued meanwhile shares datagrams.
func (h *Host) flushDeferred() {
	list := h.sched.take(&h.sched.flush)
	for _, l := range list {
		l.mu.Lock()
		l.flushPending = false
		if !l.removed {
			l.flushLocked(FlushDeferred)
		}
		out, p := l.takeLocked()
		l.mu.Unlock()
		l.writeOut(out, p)
	}
	h.sched.give(list)
}

// updateActive drives the KCP cores that have data in flight or acks due.
func (h *Host) updateActive() {
	list := h.sched.take(&h.sched.active)
	for _, l := range list {
		l.mu.Lock()
		if l.removed || l.suspended {
			// A suspended link is flushed when it resumes (resume.go).
			l.active = false
			l.mu.Unlock()
			continue
		}
		l.movePendLocked(true)
		l.flow.startFlush(FlushTick)
		l.kcp.Update()
		l.flushAcksLocked()
		l.flow.endFlush()
		if l.kcp.WaitSnd() == 0 && l.closing == nil {
			l.idleTicks++
		} else {
			l.idleTicks = 0
		}
		// A closing link ends as soon as its data is acknowledged, not at
		// the next housekeeping walk.
		reason := l.finishCloseLocked(time.Now())
		// Two idle updates in a row: acks are out, nothing in flight.
		if l.idleTicks >= 2 || reason != nil {
			l.active = false
		} else {
			h.sched.addActive(l)
		}
		out, p := l.takeLocked()
		l.mu.Unlock()
		l.writeOut(out, p)
		if reason != nil {
			h.removeLink(l, reason)
		}
	}
	h.sched.give(list)
}

// finishCloseLocked ends a local close once nothing reliable is left
// unacknowledged or its deadline passed: it queues the close frames and
// returns the reason to remove the link with (nil: not yet). It does so
// once per link.
func (l *link) finishCloseLocked(now time.Time) error {
	if l.closing == nil || l.closeQueued || (l.waitingLocked() > 0 && now.Before(l.closeDeadline)) {
		return nil
	}
	l.closeQueued = true
	ce := l.closing.(*CloseError)
	code := closeCode(ce.Reason)
	if code == closeShutdown && !l.h.cfg.Accept {
		// A client closing its own host leaves: the server and its peers
		// see ErrClosedByPeer. ErrShutdown to the other end means a
		// server going away.
		code = closeNormal
	}
	body := append([]byte{code}, ce.Message...)
	for range 3 { // unacknowledged: send a few copies
		l.queueFrameLocked(frameClose, body)
	}
	if errorsIsShutdown(ce) {
		return ErrShutdown
	}
	return ErrClosedLocally
}

// resumeStalled moves waiting reliable messages into the event queue now
// that it has room.
func (h *Host) resumeStalled() {
	list := h.sched.take(&h.sched.stalled)
	var ended, broken []*link
	for _, l := range list {
		l.mu.Lock()
		l.stalled = false
		if !l.removed {
			if !l.pumpLocked(time.Now(), l.path != nil && l.path.Relayed(), &h.sched.events) {
				broken = append(broken, l)
			}
			l.syncHeldLocked() // only gives bytes back
			if l.remoteClosed != nil && l.drainedLocked() {
				ended = append(ended, l)
			}
		}
		l.mu.Unlock()
	}
	h.sched.give(list)
	for _, l := range broken {
		h.shed(l, shedBrokenStream)
	}
	for _, l := range ended {
		h.removeLink(l, l.remoteClosed)
	}
}

// pingDue reports whether to ping l now. A peer that pinged us within the
// interval already keeps the link alive both ways (its ping and our pong),
// so we skip our own ping then, except every fourth interval to refresh our
// RTT: an idle link costs about one ping and one pong per interval, not two
// of each.
func (h *Host) pingDue(l *link, now time.Time) bool {
	since := now.Sub(l.lastPing)
	if since < h.cfg.PingInterval {
		return false
	}
	return now.Sub(l.lastPingIn) >= h.cfg.PingInterval || since >= 4*h.cfg.PingInterval
}

// housekeep sends keepalives, detects timeouts and finishes local closes.
func (h *Host) housekeep(now time.Time) {
	h.mu.RLock()
	links := make([]*link, 0, len(h.byID))
	for _, l := range h.byID {
		links = append(links, l)
	}
	h.mu.RUnlock()
	type ending struct {
		l      *link
		reason error
	}
	var ended []ending
	for _, l := range links {
		l.mu.Lock()
		if l.removed {
			l.mu.Unlock()
			continue
		}
		switch {
		case l.closing != nil:
			if reason := l.finishCloseLocked(now); reason != nil {
				ended = append(ended, ending{l, reason})
			}
		case h.pendingExpiredLocked(l, now):
			ended = append(ended, ending{l, ErrTimeout})
		case h.suspendExpiredLocked(l, now):
			ended = append(ended, ending{l, ErrTimeout})
		case !l.suspended && now.Sub(l.lastHeard) >= h.cfg.Timeout:
			if !h.suspendLocked(l, now) {
				ended = append(ended, ending{l, ErrTimeout})
			}
		case h.pingDue(l, now):
			l.queuePingLocked(now)
		}
		if now.Sub(l.lastLossUpdate) >= h.cfg.PingInterval {
			l.lastLossUpdate = now
			l.loss.update()
		}
		probes := h.pathTickLocked(l, now, h.punchTickLocked(l, now))
		out, p := l.takeLocked()
		l.mu.Unlock()
		l.writeOut(out, p)
		h.writeProbes(l, probes)
	}
	for _, e := range ended {
		h.removeLink(e.l, e.reason)
	}
	h.sweepSources(now)
	h.sweepAuth(now)
}
