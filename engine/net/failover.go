package net

import (
	"net/netip"
	"time"
)

// Failover: how a punched peer's direct path is found dead while traffic
// flows, and how the pair returns to it (docs/SEMANTICS.md, "Relay
// state"; docs/PROTOCOL.md, "Failover").
//
// Detection uses the traffic itself. Every datagram this host sends on the
// direct path (reliable segments, unreliable messages, pings, keepalive
// probes) starts a clock if none runs (failover.waitSince); any
// authenticated datagram from the peer's direct address stops it (a KCP
// ack, the peer's own traffic, a probe's ack). A clock that runs longer
// than the link's thresholds, all scaled with the direct path's measured
// RTT (lossTimes), means the path stopped delivering:
//
//   - after probe, short probes go to the direct address every gap, so a
//     one-way flow or a few lost datagrams do not look like a dead path;
//   - after mirror (a probe unanswered for a round trip; at once when the
//     peer has been streaming to us, at most every probe/2, or when its
//     traffic comes through the relay although it has had time to go
//     direct), unreliable messages also go on the relay, each in its own datagram,
//     so that fewer are lost in the window (the receiver keeps the first
//     copy of each, DropStale counts the other);
//   - after lost, the link moves to the relay (ErrPathLost) and every
//     reliable segment not acknowledged is resent there at once
//     (kcpResendNow), not after its backed-off timeout.
//
// An idle link sends only its keepalive probes, so it is judged on those:
// a keepalive that goes unanswered starts the same clock.
//
// Flapping: a direct path lost within flapWindow of being taken doubles the
// thresholds and the recheck interval (up to maxFlaps doublings, never past
// PunchConfig.Lost and RetryMax); one that lasts longer resets them.
//
// Return: while relayed after a loss, one probe goes to the last direct
// address every PunchConfig.Recheck (scaled by the flaps, and doubled after
// every recheckRun unanswered, up to 8 times), in the attempt's token; an
// ack moves the link back at once. New candidates (Punch), a probe from
// the peer (a NAT or address change on its side, or its own
// recheck) start a full attempt at once, as before; the full attempts'
// back-off (RetryMin to RetryMax) applies only to the other candidates.

// Failover thresholds: floors under the RTT-scaled times, and the flapping
// bounds.
const (
	probeFloor = 50 * time.Millisecond  // least silence before a loss probe
	gapFloor   = 20 * time.Millisecond  // least time between loss probes
	lostFloor  = 150 * time.Millisecond // least silence before the switch
	// noRTT stands for the RTT before any is measured.
	noRTT       = 100 * time.Millisecond
	flapWindow  = 10 * time.Second
	maxFlaps    = 4
	recheckRun  = 30                    // rechecks at one interval before it doubles
	mirrorSlack = 10 * time.Millisecond // a probe's answer may be this late
)

// failover is a punched link's direct-path loss detection and return
// state, part of punchState, under link.mu.
type failover struct {
	lastRx      time.Time      // the last authenticated datagram from the direct address
	rxGap       time.Duration  // the mean time between those datagrams (smoothed)
	waitSince   time.Time      // the first send on the direct path since lastRx; zero: none
	probeSent   time.Time      // the last loss probe
	probeOut    time.Time      // the oldest unanswered probe on the direct path, for an RTT sample
	mirror      bool           // unreliable messages go on the relay too
	watched     bool           // in the scheduler's failover list
	rtt         rttEstimator   // the direct path's RTT, from probe acks
	directSince time.Time      // when the current direct path was taken
	lastDirect  netip.AddrPort // the last direct address, rechecked while relayed
	nextCheck   time.Time      // the next recheck of lastDirect
	rechecks    int            // rechecks since the path was lost
	flaps       int            // direct paths lost soon after being taken, in a row
}

// lossTimes are a link's failover thresholds, as silence since the first
// unanswered send.
type lossTimes struct {
	probe, gap, mirror, lost time.Duration
}

// lossTimesLocked computes l's failover thresholds from the direct path's
// RTT (the link's, before a probe measured it) and the flaps.
func (h *Host) lossTimesLocked(l *link) lossTimes {
	ps := l.punch
	est := ps.rtt
	if est.samples == 0 {
		est = l.rtt
	}
	srtt, rto := noRTT, 2*noRTT
	if est.samples > 0 {
		// As TCP's retransmission timeout: the longest an answer
		// plausibly takes.
		srtt, rto = est.srtt, max(est.srtt+4*est.jitter, time.Millisecond)
	}
	t := lossTimes{
		probe: max(srtt+rto, probeFloor),
		gap:   max(rto/2, gapFloor),
	}
	t.lost = max(t.probe+2*rto+t.gap, lostFloor)
	t.probe <<= ps.flaps
	t.lost <<= ps.flaps
	t.lost = min(t.lost, h.punchCfg.Lost)
	t.probe = min(t.probe, t.lost/2)
	t.mirror = min(t.probe+rto+mirrorSlack, t.lost)
	if ps.rxGap > 0 && 2*ps.rxGap <= t.probe {
		// The peer streams to us: a silence as long as probe is
		// already unusual, so mirror without waiting for the probe's
		// answer.
		t.mirror = t.probe
	}
	return t
}

// sentDirectLocked notes a datagram sent on a punched link's direct path:
// it starts the silence clock unless one runs. Call with l.mu held.
func (l *link) sentDirectLocked() {
	if ps := l.punch; ps != nil && ps.direct.IsValid() && ps.waitSince.IsZero() {
		ps.waitSince = time.Now()
	}
}

// mirrorLocked returns the relay path when unreliable messages must go on
// it too (the direct path is silent), or nil.
func (l *link) mirrorLocked() Path {
	if ps := l.punch; ps != nil && ps.mirror && ps.direct.IsValid() {
		return ps.relay
	}
	return nil
}

// heardLocked accounts an authenticated datagram from the peer of a
// punched link: from its direct address, it stops the silence clock (the
// path delivers); through the relay while this side is direct, it starts
// the clock (the peer may have left the path), so that probes check it,
// and once the peer has had time to go direct too, it mirrors unreliable
// messages on the relay meanwhile.
func (h *Host) heardLocked(l *link, from netip.AddrPort, relayed bool, now time.Time) {
	ps := l.punch
	if ps == nil || !ps.direct.IsValid() {
		return
	}
	if relayed {
		if ps.waitSince.IsZero() {
			ps.waitSince = now
		}
		if !ps.mirror && now.Sub(ps.directSince) > h.lossTimesLocked(l).lost {
			// The peer has had time to go direct since this side did, and
			// sends through the relay: it left the path (it lost it, or
			// it is cut one way). Mirror until the path answers.
			ps.mirror = true
		}
		return
	}
	if from != ps.direct {
		return
	}
	if gap := min(now.Sub(ps.lastRx), time.Second); ps.rxGap == 0 {
		ps.rxGap = gap
	} else {
		ps.rxGap += (gap - ps.rxGap) / 8
	}
	ps.lastRx = now
	ps.clearSilence()
}

// probeDirectLocked seals a probe to the direct address (a keepalive or a
// loss probe), started on the silence clock and timed for an RTT sample.
func (h *Host) probeDirectLocked(l *link, now time.Time, out []directProbe) []directProbe {
	ps := l.punch
	if ps.probeOut.IsZero() || now.Sub(ps.probeOut) > h.punchCfg.Keepalive/2 {
		// Probes share the attempt's token, so an ack does not say which
		// one it answers: time from the oldest unanswered one, and take
		// one unanswered for this long as lost, so that a lost probe does
		// not make the next sample (and the jitter) huge.
		ps.probeOut = now
	}
	l.sentDirectLocked()
	return h.probesLocked(l, ps.directConn(), []netip.AddrPort{ps.direct}, punchProbe, ps.token, out)
}

// clearSilence forgets a silence of the direct path: nothing is awaited
// on it, no loss probe is out, unreliable messages stop going on the relay
// too. Under link.mu.
func (ps *punchState) clearSilence() {
	ps.waitSince = time.Time{}
	ps.mirror = false
	ps.probeSent = time.Time{}
}

// ackedDirectLocked takes an RTT sample from an ack of a probe on the
// direct path.
func (ps *punchState) ackedDirectLocked(now time.Time) {
	if !ps.probeOut.IsZero() {
		ps.rtt.sample(now.Sub(ps.probeOut))
		ps.probeOut = time.Time{}
	}
}

// wentDirectLocked starts the failover state of a link that just took the
// direct path to addr.
func (h *Host) wentDirectLocked(l *link, now time.Time) {
	ps := l.punch
	ps.lastRx = now
	ps.rxGap = 0
	ps.clearSilence()
	ps.directSince = now
	ps.lastDirect = ps.direct
	ps.rechecks = 0
	if !ps.watched {
		ps.watched = true
		h.sched.addWatched(l)
	}
}

// failoverTickLocked is the timer's work on a direct link at every tick:
// probe a silent path, mirror unreliable messages on the relay, or give it
// up. It returns the probes to write; a switch queues the resent segments
// in l's out batch.
func (h *Host) failoverTickLocked(l *link, now time.Time, out []directProbe) []directProbe {
	ps := l.punch
	if ps.waitSince.IsZero() || ps.held() || h.cfg.DisableP2P {
		return out
	}
	t := h.lossTimesLocked(l)
	silent := now.Sub(ps.waitSince)
	if silent >= t.lost {
		h.pathLostLocked(l, now)
		return out
	}
	if silent >= t.mirror && !ps.mirror {
		ps.mirror = true
		h.log.Debug("direct path silent: unreliable messages on the relay too", "peer", l.id, "silent", silent)
	}
	if silent >= t.probe && now.Sub(ps.probeSent) >= t.gap {
		ps.probeSent = now
		out = h.probeDirectLocked(l, now, out)
	}
	return out
}

// pathLostLocked moves a link whose direct path stopped delivering to the
// relay (ErrPathLost), and schedules the rechecks and the next attempt.
func (h *Host) pathLostLocked(l *link, now time.Time) {
	ps := l.punch
	if now.Sub(ps.directSince) < flapWindow {
		ps.flaps = min(ps.flaps+1, maxFlaps)
	} else {
		ps.flaps = 0
	}
	h.toRelayLocked(l, ErrPathLost, now)
	// Reported: the retries that fail from here on change nothing.
	ps.reported = true
	ps.nextCheck = now.Add(h.recheckAfter(ps))
	ps.retryAt = now.Add(ps.backoff)
	ps.backoff = min(2*ps.backoff, h.punchCfg.RetryMax)
}

// recheckAfter is the time between probes to the last direct address while
// relayed: Recheck, doubled by the flaps and after every recheckRun
// unanswered rechecks, up to 8 times (and never past RetryMax), so that a
// long outage costs a probe every few seconds, not one a second.
func (h *Host) recheckAfter(ps *punchState) time.Duration {
	return min(h.punchCfg.Recheck<<min(ps.flaps+ps.rechecks/recheckRun, 3), h.punchCfg.RetryMax)
}

// leftDirectLocked clears the failover state of a link that left the
// direct path, and resends at once on the new path every reliable segment
// the old one may have swallowed.
func (l *link) leftDirectLocked() {
	ps := l.punch
	ps.clearSilence()
	ps.probeOut = time.Time{}
	if kcpResendNow(l.kcp) > 0 {
		kcpFlush(l.kcp, kcpFlushFull)
		l.markActiveLocked()
	}
}

// recheckLocked probes the last direct address of a link relayed after a
// loss, every recheckAfter: an ack moves the link back (punchFrameLocked).
func (h *Host) recheckLocked(l *link, now time.Time) []directProbe {
	ps := l.punch
	ps.rechecks++
	ps.nextCheck = now.Add(h.recheckAfter(ps))
	return h.probesLocked(l, nil, []netip.AddrPort{ps.lastDirect}, punchProbe, ps.token, nil)
}

// failoverTick runs failoverTickLocked on every link on a direct path
// (the timer goroutine, every tick).
func (h *Host) failoverTick(now time.Time) {
	list := h.sched.take(&h.sched.watched)
	if len(list) == 0 {
		h.sched.give(list)
		return
	}
	var probes []directProbe
	for _, l := range list {
		l.mu.Lock()
		ps := l.punch
		if l.removed || ps == nil || !ps.direct.IsValid() {
			if ps != nil {
				ps.watched = false
			}
			l.mu.Unlock()
			continue
		}
		probes = h.failoverTickLocked(l, now, probes[:0])
		if ps.direct.IsValid() {
			h.sched.addWatched(l)
		} else {
			ps.watched = false
		}
		out, p := l.takeLocked()
		l.mu.Unlock()
		l.writeOut(out, p)
		h.writeProbes(l, probes)
		clear(probes)
	}
	h.sched.give(list)
}
