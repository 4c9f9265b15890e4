package net

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// rxData is one authenticated data datagram while handleData handles its
// frames under the link's lock: where it came from, and what its frames
// leave for finishData to do once the lock is released (nothing is sent,
// forwarded or delivered to user code under the lock).
type rxData struct {
	l       *link
	from    netip.AddrPort
	now     time.Time
	conn    PacketConn // the socket it came from: path answers go back through it
	size    int        // the datagram's size, charged to fan-out
	relayed bool       // it came through the server's relay

	probes    []directProbe // punch probes and path answers to write
	relay     []relayRecord // relay records to forward (server)
	fan       []fanoutMsg   // fan-out (server) or fanned (client) messages
	challenge []byte        // the last path challenge: one answer per datagram
	natReply  bool          // a NAT probe was answered: one answer per datagram

	oldPath, migrated Path   // a path response moved the link from oldPath to migrated
	sawKCP            bool   // KCP segments arrived: pump the stream
	shedWhy           string // not empty: the reliable stream overflowed or broke, shed the link
	confirmedNow      bool   // the datagram confirmed a client's link (server)
	overHost          bool   // the host is over its held-memory budget
	ended             bool   // the peer closed and its stream is drained
}

// handleFrameLocked dispatches one frame of an authenticated datagram to
// the handler of its type. parseFrames has checked every frame's type and
// fixed-size fields, and framesFitSpace that it belongs to the datagram's
// packet number space. Called with d.l.mu held.
func (h *Host) handleFrameLocked(d *rxData, f frame) {
	switch f.Type {
	case frameKCP:
		h.handleKCPFrameLocked(d, f.Body)
	case frameUnreliable:
		h.handleUnreliableFrameLocked(d, f.Body)
	case framePing:
		h.handlePingFrameLocked(d, f.Body)
	case framePong:
		h.handlePongFrameLocked(d, f.Body)
	case frameClose:
		h.handleCloseFrameLocked(d, f.Body)
	case frameRelay:
		h.handleRelayFrameLocked(d, f.Body)
	case frameFanout:
		h.handleFanoutFrameLocked(d, f.Body)
	case frameFanned:
		h.handleFannedFrameLocked(d, f.Body)
	case framePunch:
		h.handlePunchFrameLocked(d, f.Body)
	case framePathChallenge:
		h.handlePathChallengeFrameLocked(d, f.Body)
	case framePathResponse:
		h.handlePathResponseFrameLocked(d, f.Body)
	case frameForceRelay:
		h.handleForceRelayFrameLocked(d, f.Body)
	case frameNAT:
		h.handleNATFrameLocked(d, f.Body)
	}
}

// handleKCPFrameLocked feeds KCP segments to the link's reliable stream.
// Once the stream has overflowed its receive window, the datagram's other
// KCP frames are skipped: the link is shed.
func (h *Host) handleKCPFrameLocked(d *rxData, body []byte) {
	if d.shedWhy != "" {
		return
	}
	l := d.l
	d.sawKCP = true
	if len(l.pend) > 0 {
		// Messages sent while the window was full: in KCP before its
		// input, so that an acknowledgement opening the window sends
		// them in the flush it makes.
		l.movePendLocked(true)
	}
	waiting := l.kcp.WaitSnd()
	verdict := l.inputKCPLocked(body)
	if l.kcp.WaitSnd() >= waiting {
		// Nothing of ours was acknowledged: not an answer, so the
		// acknowledgements KCP flushed (its ack clocking) go at once.
		l.flushAcksLocked()
	}
	switch verdict {
	case kcpInputOK:
		// Taken by the KCP core: read out once every frame is handled
		// (sawKCP).
	case kcpInputMalformed:
		l.drops.add(DropMalformed)
	case kcpInputShed:
		d.shedWhy = "reliable data past the receive window"
	}
	l.markActiveLocked()
}

// handleUnreliableFrameLocked delivers an unreliable sequenced message.
func (h *Host) handleUnreliableFrameLocked(d *rxData, body []byte) {
	h.unreliableLocked(d.l, body, d.now, d.relayed)
}

// handlePingFrameLocked answers a ping with a pong that echoes its send
// time and carries this side's loss estimate (per mille).
func (h *Host) handlePingFrameLocked(d *rxData, body []byte) {
	l := d.l
	l.lastPingIn = d.now
	var pong [10]byte
	copy(pong[:8], body)
	binary.LittleEndian.PutUint16(pong[8:], uint16(l.loss.loss*1000))
	l.queueFrameLocked(framePong, pong[:])
}

// handlePongFrameLocked takes an RTT sample from the echoed send time and
// the peer's loss estimate.
func (h *Host) handlePongFrameLocked(d *rxData, body []byte) {
	l := d.l
	sent := time.Duration(binary.LittleEndian.Uint64(body))
	l.rtt.sample(d.now.Sub(h.epoch) - sent)
	l.peerLoss = float64(binary.LittleEndian.Uint16(body[8:])) / 1000
}

// handleCloseFrameLocked records the peer's close (the first one counts).
// The link is removed once its reliable stream is drained (handleData).
func (h *Host) handleCloseFrameLocked(d *rxData, body []byte) {
	l := d.l
	if l.remoteClosed == nil {
		l.remoteClosed = &CloseError{Reason: closeReason(body[0]), Message: string(body[1:])}
	}
}

// handleRelayFrameLocked collects a client's relay records for the server
// to forward (relay.go). Only a server takes them, and only directly from
// the client.
func (h *Host) handleRelayFrameLocked(d *rxData, body []byte) {
	if !h.cfg.Accept || d.relayed {
		d.l.drops.add(DropUnexpected)
		return
	}
	for b := body; len(b) > 0; {
		to, inner, rest, _ := nextRelayRecord(b) // checked by parseFrames
		d.relay = append(d.relay, relayRecord{to: to, inner: inner})
		b = rest
	}
}

// handleFanoutFrameLocked collects a client's fan-out message for the
// server to copy to its recipients (fanout.go). Only a server takes it,
// and only directly from the client.
func (h *Host) handleFanoutFrameLocked(d *rxData, body []byte) {
	if !h.cfg.Accept || d.relayed {
		d.l.drops.add(DropUnexpected)
		return
	}
	d.fan = append(d.fan, fanoutMsg{body: body, size: d.size})
}

// handleFannedFrameLocked collects a message the server fanned out, for
// delivery (fanout.go). Only a client takes it, and only from the server.
func (h *Host) handleFannedFrameLocked(d *rxData, body []byte) {
	if h.cfg.Accept || d.relayed || d.l.id != ServerID {
		d.l.drops.add(DropUnexpected)
		return
	}
	d.fan = append(d.fan, fanoutMsg{body: body, size: d.size})
}

// handlePunchFrameLocked handles a hole-punching frame (punch.go). Punches
// only count on a direct path.
func (h *Host) handlePunchFrameLocked(d *rxData, body []byte) {
	if d.relayed {
		d.l.drops.add(DropUnexpected)
		return
	}
	d.probes = h.punchFrameLocked(d.l, body, d.conn, d.from, d.now, d.probes)
}

// handlePathChallengeFrameLocked keeps a path challenge to answer once
// every frame is handled: one answer per datagram, to the last challenge
// (pathval.go). Challenges only count on a direct path.
func (h *Host) handlePathChallengeFrameLocked(d *rxData, body []byte) {
	if d.relayed {
		d.l.drops.add(DropUnexpected)
		return
	}
	d.challenge = body
}

// handlePathResponseFrameLocked checks a path response (pathval.go); a
// valid one moves the link to the address it came from. Responses only
// count on a direct path.
func (h *Host) handlePathResponseFrameLocked(d *rxData, body []byte) {
	if d.relayed {
		d.l.drops.add(DropUnexpected)
		return
	}
	if old, p := h.pathResponseLocked(d.l, body, d.from, d.now); p != nil {
		d.oldPath, d.migrated = old, p
	}
}

// handleForceRelayFrameLocked handles a peer's notice that it forced or
// released the relay for this link (forcerelay.go). It counts on either
// path: it is how a peer on the direct path learns to leave it.
func (h *Host) handleForceRelayFrameLocked(d *rxData, body []byte) {
	d.probes = h.forceRelayFrameLocked(d.l, body, d.now, d.probes)
}
