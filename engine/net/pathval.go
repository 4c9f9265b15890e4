package net

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Path validation (RFC 9000 sections 8.2 and 9, adapted). A link's direct
// path moves to a new peer address only once the peer has answered a path
// challenge sent there: an authenticated datagram proves who sealed it,
// not where it came from, since a peer holding the link's keys can make
// its datagrams appear to come from any address. Until the new address
// answers, the link's traffic (the reliable stream, pings, and a server's
// relayed and fanned copies, which all follow the link's path) stays on
// the validated path, and only challenges go to the new address, within
// an anti-amplification budget of 3x the bytes that came from it.
//
// Challenges and responses, like punch probes and acks, are sealed in the
// link's probe packet-number space (probePNBase and up): they go to
// addresses off the link's path, so when they are lost the peer's loss
// estimate, which counts gaps in the data numbers, does not see it, and a
// challenge (never the newest data datagram) cannot itself move a path.

// probePNBase is where the probe packet-number space starts. Data
// datagrams are numbered from 1 and never get this far (2^47 datagrams);
// punch probes and acks, path challenges and responses are numbered from
// probePNBase+1, with their own counter and replay window, so no nonce is
// used twice under one key.
const probePNBase = 1 << 47

// isProbePN reports whether pn is in the probe packet-number space.
func isProbePN(pn uint64) bool { return pn > probePNBase }

// amplificationLimit bounds the bytes sent to an address that has not
// answered a challenge, as a multiple of the bytes received from it.
const amplificationLimit = 3

// pathDatagram is the size of a challenge or response datagram.
const pathDatagram = dataHeaderSize + frameHeader + 8 + sealOverhead

// Path check timing: a challenge is sent again after twice the link's RTT
// (at least pathRetryMin) until the new address answers or pathCheckTimeout
// has passed since the check began; the next newest datagram from the
// address then starts another check.
const (
	pathRetryMin     = 100 * time.Millisecond
	pathCheckTimeout = 3 * time.Second
)

// pathCheck is a link's validation of a new address of its peer, under
// link.mu.
type pathCheck struct {
	addr    netip.AddrPort
	conn    PacketConn // the socket the address was seen on
	token   uint64     // unpredictable: only a host that sees traffic to addr learns it
	rx, tx  int        // authenticated bytes received from addr, bytes sent to it
	started time.Time
	sent    time.Time // the last challenge
}

// charge takes n bytes from the check's anti-amplification budget, or
// reports false when they do not fit.
func (pc *pathCheck) charge(n int) bool {
	if pc.tx+n > amplificationLimit*pc.rx {
		return false
	}
	pc.tx += n
	return true
}

// probeWindow is the replay window of the probe packet-number space: the
// highest number accepted and a bitmap of the 63 below it. Probes are few
// and paced, so a small window is enough; one reordered further than that
// is dropped as a replay.
type probeWindow struct {
	max  uint64
	bits uint64 // bit i: max-i was accepted
}

// accept records pn and reports whether it is new.
func (w *probeWindow) accept(pn uint64) bool {
	if pn > w.max {
		if d := pn - w.max; d >= 64 {
			w.bits = 0
		} else {
			w.bits <<= d
		}
		w.bits |= 1
		w.max = pn
		return true
	}
	d := w.max - pn
	if d >= 64 || w.bits&(1<<d) != 0 {
		return false
	}
	w.bits |= 1 << d
	return true
}

// startProbeDatagram returns a buffer holding a data header with a fresh
// number from the probe space.
func (l *link) startProbeDatagram() ([]byte, uint64) {
	pn := probePNBase + l.probePN.Add(1)
	return appendDataHeader(getBuf(), dataHeader{From: l.localID, PN: pn}), pn
}

// isPathFrame reports whether a frame type belongs in the probe space.
func isPathFrame(typ frameType) bool {
	return typ == framePunch || typ == framePathChallenge || typ == framePathResponse || typ == frameNAT
}

// framesFitSpace reports whether frames may travel in a datagram of the
// probe space (probe true: only punch and path frames) or of the data
// space (none of them).
func framesFitSpace(frames []frame, probe bool) bool {
	for _, f := range frames {
		if isPathFrame(f.Type) != probe {
			return false
		}
	}
	return true
}

// pathSeenLocked accounts an authenticated datagram of n bytes that came
// from addr over conn, not through the relay. newest: it is a data
// datagram with the highest packet number yet. When the newest datagram
// comes from an address other than the link's direct path, a check of
// that address begins (or goes on): a challenge goes there, within its
// budget. The newest datagram from the validated address ends a check:
// the peer is still there.
func (h *Host) pathSeenLocked(l *link, conn PacketConn, from netip.AddrPort, n int, newest bool, now time.Time, out []directProbe) []directProbe {
	pc := l.pathCheck
	if pc != nil && pc.addr == from {
		pc.rx += n
	}
	if !newest {
		return out
	}
	cur, direct := directAddr(l.path)
	if l.punch != nil || !direct || cur == from {
		// Hole punching validates its own paths (probe and ack); a
		// relayed link has no address to move; the peer is where it was.
		l.pathCheck = nil
		return out
	}
	if pc == nil || pc.addr != from {
		pc = &pathCheck{addr: from, conn: conn, token: newToken(), rx: n, started: now}
		l.pathCheck = pc
		if h.log.IsDebug() { // a spoofing peer can start one per datagram
			h.log.Debug("path check", "peer", l.id, "from", cur, "to", from)
		}
	}
	if pc.sent.IsZero() || now.Sub(pc.sent) >= h.pathRetry(l) {
		out = h.challengeLocked(l, pc, now, out)
	}
	return out
}

// pathRetry is how long to wait for an answer before challenging again.
func (h *Host) pathRetry(l *link) time.Duration {
	return max(2*l.rtt.srtt, pathRetryMin)
}

// challengeLocked seals a challenge to the checked address, if it fits the
// budget; otherwise it is dropped and counted (DropUnvalidated).
func (h *Host) challengeLocked(l *link, pc *pathCheck, now time.Time, out []directProbe) []directProbe {
	pc.sent = now
	if !pc.charge(pathDatagram) {
		h.dropOn(l, DropUnvalidated)
		return out
	}
	var body [8]byte
	binary.LittleEndian.PutUint64(body[:], pc.token)
	b, pn := l.startProbeDatagram()
	b = appendFrame(b, framePathChallenge, body[:])
	return append(out, directProbe{conn: pc.conn, to: pc.addr, b: l.sealDatagram(b, pn)})
}

// pathTickLocked is the timer's work on a link's path check: challenge
// again, or give up after pathCheckTimeout.
func (h *Host) pathTickLocked(l *link, now time.Time, out []directProbe) []directProbe {
	pc := l.pathCheck
	if pc == nil {
		return out
	}
	if now.Sub(pc.started) >= pathCheckTimeout {
		l.pathCheck = nil
		h.log.Debug("path check failed", "peer", l.id, "addr", pc.addr, "sent", pc.tx, "received", pc.rx)
		return out
	}
	if now.Sub(pc.sent) >= h.pathRetry(l) {
		out = h.challengeLocked(l, pc, now, out)
	}
	return out
}

// answerChallengeLocked answers a path challenge (its 8-byte token) that
// came from addr over conn: one response per datagram, sent back where it
// came from. Only the link's validated address and the address being
// validated (within its budget) are answered; a challenge from anywhere
// else is dropped and counted (DropUnvalidated), so a peer cannot use the
// answers to send to an address of its choice.
func (h *Host) answerChallengeLocked(l *link, token []byte, conn PacketConn, from netip.AddrPort, out []directProbe) []directProbe {
	cur, direct := directAddr(l.path)
	switch pc := l.pathCheck; {
	case direct && cur == from:
	case pc != nil && pc.addr == from:
		if !pc.charge(pathDatagram) {
			h.dropOn(l, DropUnvalidated)
			return out
		}
	default:
		h.dropOn(l, DropUnvalidated)
		return out
	}
	b, pn := l.startProbeDatagram()
	b = appendFrame(b, framePathResponse, token)
	return append(out, directProbe{conn: conn, to: from, b: l.sealDatagram(b, pn)})
}

// pathResponseLocked handles a path response that came from addr. The
// current check's token, from the checked address, validates it: the
// link's path moves there, and the old and new paths are returned (nil
// when nothing moved). Any other response (a late duplicate, a wrong
// token or address) is counted as unexpected on the link.
func (h *Host) pathResponseLocked(l *link, body []byte, from netip.AddrPort, now time.Time) (old, moved Path) {
	pc := l.pathCheck
	if pc == nil || l.punch != nil || pc.addr != from || binary.LittleEndian.Uint64(body) != pc.token {
		l.drops.add(DropUnexpected)
		return nil, nil
	}
	l.pathCheck = nil
	old = l.path
	l.path = directPath{pc.conn, pc.addr}
	l.pathSince = now
	h.log.Debug("path validated", "peer", l.id, "from", pathString(old), "to", pc.addr, "took", now.Sub(pc.started))
	return old, l.path
}
