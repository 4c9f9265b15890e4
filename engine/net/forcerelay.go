package net

import (
	"encoding/binary"
	"time"
)

// ForceRelay works both ways: the host that forces the relay for a peer
// (or releases it) tells the peer in a force notice (frameForceRelay, sent
// on the link's current path, three copies like a close), and the peer
// moves its side onto the relay too, with an EventPathChange of its own
// (ErrForcedRelay). Notices are numbered, so a late copy of an old one
// changes nothing. A forcing host also stops answering the peer's punch
// probes, so a peer that missed every copy still loses the direct path
// within PunchConfig.Lost (ErrPathLost) and finds no new one.

// forceRelayBody is a force notice's size: on(1) seq(4).
const forceRelayBody = 5

// held reports whether either side forces the relay.
func (ps *punchState) held() bool { return ps.forced || ps.peerForced }

// sendForceNoticeLocked queues a force notice (on: forced, else released)
// for the peer of l; the caller writes it out after unlocking. Servers and
// the server link have no peer to tell.
func (h *Host) sendForceNoticeLocked(l *link, on bool) {
	if h.cfg.Accept || l.id == ServerID || l.removed {
		return
	}
	ps := l.punch
	ps.forceSeq++
	var body [forceRelayBody]byte
	if on {
		body[0] = 1
	}
	binary.LittleEndian.PutUint32(body[1:], ps.forceSeq)
	for range 3 { // unacknowledged: send a few copies
		l.queueFrameLocked(frameForceRelay, body[:])
	}
}

// forceRelayFrameLocked applies a peer's force notice (checked by
// checkFrame): forced, the link leaves the direct path and punching stops;
// released, punching resumes unless this host forces the relay itself.
func (h *Host) forceRelayFrameLocked(l *link, body []byte, now time.Time, out []directProbe) []directProbe {
	if h.cfg.Accept || l.id == ServerID {
		l.drops.add(DropUnexpected)
		return out
	}
	ps := h.punchStateLocked(l)
	seq := binary.LittleEndian.Uint32(body[1:])
	if int32(seq-ps.peerSeq) <= 0 {
		return out // a copy, or older than one already applied
	}
	ps.peerSeq = seq
	on := body[0] == 1
	if on == ps.peerForced {
		return out
	}
	ps.peerForced = on
	switch {
	case on && ps.forced:
		// Already relayed by this host's own choice.
	case on:
		h.forcedRelayLocked(l, now)
	case !ps.forced && !h.cfg.DisableP2P:
		out = append(out, h.startAttemptLocked(l, now)...)
	}
	return out
}

// forcedRelayLocked puts l on the relay because one side forces it: no
// probing, no birthday attempt, and the path event says why.
func (h *Host) forcedRelayLocked(l *link, now time.Time) {
	ps := l.punch
	ps.probing = false
	h.birthdayEndLocked(l, now)
	if ps.direct.IsValid() {
		h.toRelayLocked(l, ErrForcedRelay, now)
	} else {
		h.pathEvent(l, true, ErrForcedRelay, now)
	}
}
