package net

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"
)

// NAT probes (docs/PROTOCOL.md, "NAT-type probes"). A client asks the
// server where it sees it from, at the server's main address and at its
// alternate ones (AddProbeConn), and may ask for the answer to come from
// another address or port, so that it can tell its NAT's mapping and
// filtering behaviour (RFC 5780, sections 4.3 and 4.4).
//
// Requests and replies are frameNAT frames, sealed on the client's server
// link in the probe packet-number space (like punch probes, they go to
// addresses off the link's path). Only a client holding the link's keys
// can ask. Request and reply have the same fixed body, so a reply is never
// larger than the request it answers; a server answers one request per
// datagram, once, to the address it came from, within a per-client rate
// (natProbeRate).

// frameNAT body: kind(1) token(8) flags(1) seen(1) mapped(18)
// count(1) count×endpoint(18), padded to natBodySize.
const (
	natRequest byte = 1
	natReply   byte = 2

	// Request flags: answer from an alternate endpoint whose IP address
	// (natChangeAddr) and/or port (natChangePort) differs from the one
	// the request reached.
	natChangeAddr byte = 1 << 0
	natChangePort byte = 1 << 1

	natAddrSize      = 16 + 2
	maxNATEndpoints  = 3 // alternate endpoints listed in a reply
	natBodySize      = 1 + 8 + 1 + 1 + natAddrSize + 1 + maxNATEndpoints*natAddrSize
	natProbeRate     = 20 // requests a second a client may make (burst as many)
	natEndpointsOff  = 1 + 8 + 1 + 1 + natAddrSize
	hairpinSize      = 1 + 16 // kindHairpin, token
	maxNATProbeConns = maxNATEndpoints
)

// natMsg is a decoded frameNAT body.
type natMsg struct {
	kind      byte
	token     uint64
	flags     byte
	seen      byte           // reply: which server endpoint got the request (0: the main one)
	mapped    netip.AddrPort // reply: where the request came from
	endpoints []netip.AddrPort
}

func appendNATAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().As16()
	if !a.IsValid() {
		ip = [16]byte{}
	}
	b = append(b, ip[:]...)
	return binary.LittleEndian.AppendUint16(b, a.Port())
}

func parseNATAddr(b []byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])).Unmap(), binary.LittleEndian.Uint16(b[16:]))
}

// appendNATBody appends m's frame body, always natBodySize bytes.
func appendNATBody(b []byte, m natMsg) []byte {
	start := len(b)
	b = append(b, m.kind)
	b = binary.LittleEndian.AppendUint64(b, m.token)
	b = append(b, m.flags, m.seen)
	b = appendNATAddr(b, m.mapped)
	n := min(len(m.endpoints), maxNATEndpoints)
	b = append(b, byte(n))
	for _, e := range m.endpoints[:n] {
		b = appendNATAddr(b, e)
	}
	for len(b)-start < natBodySize {
		b = append(b, 0)
	}
	return b
}

// checkNATBody validates a frameNAT body's fixed fields.
func checkNATBody(b []byte) error {
	if len(b) != natBodySize || (b[0] != natRequest && b[0] != natReply) ||
		b[9]&^(natChangeAddr|natChangePort) != 0 || b[natEndpointsOff] > maxNATEndpoints {
		return errMalformed
	}
	return nil
}

// parseNATBody decodes a body checkNATBody accepted.
func parseNATBody(b []byte) natMsg {
	m := natMsg{kind: b[0], token: binary.LittleEndian.Uint64(b[1:]), flags: b[9], seen: b[10], mapped: parseNATAddr(b[11:])}
	n := int(b[natEndpointsOff])
	for i := range n {
		off := natEndpointsOff + 1 + i*natAddrSize
		m.endpoints = append(m.endpoints, parseNATAddr(b[off:]))
	}
	return m
}

// AddProbeConn gives a server an alternate endpoint for NAT-type probes: a
// socket on a second port of the same address, or on a second address
// (RFC 5780). The host reads it and owns it (Close closes it). Only NAT
// probes of connected clients are taken on it; anything else that
// arrives there is dropped and counted. At most three may be added.
func (h *Host) AddProbeConn(pc PacketConn) error {
	if !h.cfg.Accept {
		return ErrNotServer
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrHostClosed
	}
	cur := h.probeConns.Load()
	var list []PacketConn
	if cur != nil {
		list = *cur
	}
	if len(list) >= maxNATProbeConns {
		h.mu.Unlock()
		return ErrTooManyProbeConns
	}
	list = append(slices.Clone(list), pc)
	h.probeConns.Store(&list)
	h.wg.Add(1)
	h.mu.Unlock()
	go h.readLoop(pc)
	return nil
}

// probeConnList returns the alternate endpoints' conns.
func (h *Host) probeConnList() []PacketConn {
	if p := h.probeConns.Load(); p != nil {
		return *p
	}
	return nil
}

// isProbeConn reports whether conn was given to AddProbeConn.
func (h *Host) isProbeConn(conn PacketConn) bool {
	return slices.ContainsFunc(h.probeConnList(), func(c PacketConn) bool { return c == conn })
}

// handleNATFrameLocked handles a NAT probe: a server answers a client's
// request; a client passes a reply to the DetectNAT that waits for it.
func (h *Host) handleNATFrameLocked(d *rxData, body []byte) {
	l := d.l
	m := parseNATBody(body)
	switch {
	case !h.cfg.Accept && l.id == ServerID && m.kind == natReply:
		if !h.natReplied(m, d.from) {
			l.drops.add(DropUnexpected)
		}
	case h.cfg.Accept && m.kind == natRequest && !d.relayed:
		h.answerNATLocked(d, m)
	default:
		l.drops.add(DropUnexpected)
	}
}

// answerNATLocked answers a client's NAT probe, once, to where it came
// from, from the endpoint it reached or the alternate one it asked for.
func (h *Host) answerNATLocked(d *rxData, m natMsg) {
	l := d.l
	conns := h.probeConnList()
	seen := -1
	if d.conn == h.conn {
		seen = 0
	} else if i := slices.Index(conns, d.conn); i >= 0 {
		seen = i + 1
	}
	if seen < 0 || d.natReply {
		// The TCP fallback has no NAT mapping to report; a second request
		// in one datagram would get a second reply datagram, more bytes
		// than came in.
		h.dropOn(l, DropUnexpected)
		return
	}
	if l.natBudget.last.IsZero() {
		l.natBudget = tokenBucket{rate: natProbeRate, tokens: natProbeRate, last: d.now}
	}
	if !l.natBudget.take(d.now) {
		h.dropOn(l, DropRateLimited)
		return
	}
	all := append([]PacketConn{h.conn}, conns...)
	via := all[seen]
	if m.flags != 0 {
		via = nil
		got := all[seen].LocalAddr()
		for _, c := range all {
			a := c.LocalAddr()
			if (a.Addr() != got.Addr()) == (m.flags&natChangeAddr != 0) && (a.Port() != got.Port()) == (m.flags&natChangePort != 0) {
				via = c
				break
			}
		}
		if via == nil { // no such endpoint: the client should not have asked
			h.dropOn(l, DropUnexpected)
			return
		}
	}
	reply := natMsg{kind: natReply, token: m.token, flags: m.flags, seen: byte(seen), mapped: d.from}
	for _, c := range conns {
		reply.endpoints = append(reply.endpoints, c.LocalAddr())
	}
	var body [natBodySize]byte
	b, pn := l.startProbeDatagram()
	b = appendFrame(b, frameNAT, appendNATBody(body[:0], reply))
	d.probes = append(d.probes, directProbe{conn: via, to: d.from, b: l.sealDatagram(b, pn)})
	d.natReply = true
}

// natWaiter is a DetectNAT step waiting for its reply or hairpin.
type natWaiter struct {
	token   uint64
	hairpin [16]byte
	ch      chan natResult
}

// natResult is what arrived for a waiter: a reply and where from.
type natResult struct {
	msg  natMsg
	from netip.AddrPort
}

// natReplied hands a reply to the DetectNAT step waiting for it, and
// reports whether one was.
func (h *Host) natReplied(m natMsg, from netip.AddrPort) bool {
	h.natMu.Lock()
	defer h.natMu.Unlock()
	w := h.natWait
	if w == nil || w.token != m.token {
		return false
	}
	select {
	case w.ch <- natResult{msg: m, from: from}:
	default: // a duplicate: the first is enough
	}
	return true
}

// handleHairpin takes a hairpin check datagram: one this host sent to its
// own public address and got back. It is never answered.
func (h *Host) handleHairpin(b []byte, from netip.AddrPort) {
	if len(b) != hairpinSize {
		h.drops.add(DropMalformed)
		return
	}
	h.natMu.Lock()
	w := h.natWait
	ok := w != nil && w.hairpin != [16]byte{} && [16]byte(b[1:]) == w.hairpin
	if ok {
		select {
		case w.ch <- natResult{from: from}:
		default:
		}
	}
	h.natMu.Unlock()
	if !ok {
		h.drops.add(DropUnexpected)
	}
}

// natRetry is how long DetectNAT waits for each answer.
func natRetry(srtt time.Duration) time.Duration {
	return max(2*srtt+50*time.Millisecond, 250*time.Millisecond)
}
