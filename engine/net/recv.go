package net

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

func putUint64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }

func errorsIsShutdown(err error) bool { return errors.Is(err, ErrShutdown) }

// readLoop is the host's reader goroutine: the demux. It routes each
// datagram by its first byte (packet kind) and, for data, by the sender's
// HostID and keys.
func (h *Host) readLoop(conn PacketConn) {
	defer h.wg.Done()
	if br, ok := conn.(BatchReader); ok {
		h.readBatches(conn, br)
		return
	}
	buf := make([]byte, 64<<10)
	rx := new(rxScratch)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if h.readFailed(err) {
				return
			}
			continue
		}
		h.traffic.in(n)
		h.demux(buf[:n], from, time.Now(), rx, conn)
	}
}

// Batched reads: readBatch datagrams of up to readSlot bytes per call. A
// valid datagram is at most MaxDatagram bytes; a longer one than readSlot
// arrives truncated and is dropped as oversize, like any datagram over
// MaxDatagram (demux).
const (
	readBatch = 32
	readSlot  = 2048
)

// readBatches is readLoop for a conn that reads several datagrams per
// system call. They are processed one by one, in arrival order, as soon as
// the call returns: a batch is whatever was already waiting, so reading
// this way adds no delay.
func (h *Host) readBatches(conn PacketConn, br BatchReader) {
	mem := make([]byte, readBatch*readSlot)
	msgs := make([]Message, readBatch)
	for i := range msgs {
		msgs[i].Buf = mem[i*readSlot : (i+1)*readSlot : (i+1)*readSlot]
	}
	rx := new(rxScratch)
	for {
		n, err := br.ReadBatch(msgs)
		if err != nil {
			if h.readFailed(err) {
				return
			}
			continue
		}
		now := time.Now()
		for i := range msgs[:n] {
			m := &msgs[i]
			h.traffic.in(m.N)
			if m.Truncated {
				h.drops.add(DropOversize)
				continue
			}
			h.demux(m.Buf[:m.N], m.Addr, now, rx, conn)
		}
	}
}

// readFailed reports whether the reader must end after err: the conn was
// closed, or the host is closing. Other errors are logged.
func (h *Host) readFailed(err error) bool {
	if isClosed(err) {
		return true
	}
	select {
	case <-h.done:
		return true
	default:
	}
	h.log.Warn("read", "error", err)
	return false
}

// rxScratch is the receiving goroutine's reusable scratch space.
type rxScratch struct {
	frames []frame
	relay  []relayRecord
	probes []directProbe
	out    copyBatch // a server's relayed or fanned copies, written together
	nonce  [nonceSize]byte

	fan []fanoutMsg // fan-out (server) or fanned (client) frames
	// members and to are the server's fan-out scratch.
	members, to []HostID
}

// demux routes one datagram by its first byte (packet kind), after
// dropping one over MaxDatagram: no Skein host sends one, and a relay
// record or fan-out message inside it could make the server send a copy
// over MaxDatagram on. b is modified (decrypted in place). conn is the
// socket it came from: answers go back through it.
func (h *Host) demux(b []byte, from netip.AddrPort, now time.Time, rx *rxScratch, conn PacketConn) {
	if len(b) == 0 {
		h.drops.add(DropMalformed)
		return
	}
	if len(b) > MaxDatagram {
		h.drops.add(DropOversize)
		return
	}
	switch b[0] {
	case kindData:
		// A client's peers reach it directly, or through the server, which
		// forwards their datagrams unchanged.
		relayed := !h.cfg.Accept && h.srvAddr.is(from) && len(b) >= dataHeaderSize &&
			HostID(binary.LittleEndian.Uint32(b[1:5])) != ServerID
		h.handleData(b, from, now, relayed, rx, conn)
	case kindHello:
		h.handleHello(b, from, now, conn)
	case kindCookie:
		h.handleCookie(b, from)
	case kindWelcome:
		h.handleWelcome(b, from, now)
	case kindReject:
		h.handleReject(b, from)
	default:
		h.drops.add(DropMalformed)
	}
}

// handleData authenticates a data datagram and processes its frames. b is
// modified (decrypted in place). relayed is true when the datagram came
// wrapped in a relay envelope.
func (h *Host) handleData(b []byte, from netip.AddrPort, now time.Time, relayed bool, rx *rxScratch, conn PacketConn) {
	hdr, err := parseDataHeader(b)
	if err != nil {
		h.drops.add(DropMalformed)
		return
	}
	l := h.link(hdr.From)
	if l == nil {
		h.drops.add(DropUnknownPeer)
		return
	}
	plain, err := l.seal.open(b, hdr.PN, dataHeaderSize, rx.nonce[:])
	if err != nil {
		h.dropOn(l, DropBadSeal)
		return
	}
	frames, err := parseFrames(plain, rx.frames[:0])
	rx.frames = frames
	if err != nil {
		// Authenticated but malformed: a peer with a bug, not an attacker.
		h.dropOn(l, DropMalformed)
		return
	}
	probe := isProbePN(hdr.PN)
	if !framesFitSpace(frames, probe) {
		h.dropOn(l, DropUnexpected)
		return
	}

	l.mu.Lock()
	if l.removed {
		l.mu.Unlock()
		return
	}
	var fresh bool
	if probe {
		// Probes, challenges and responses: their own window, and no part
		// of the loss estimate (pathval.go).
		fresh = l.probeReplay.accept(hdr.PN)
	} else if fresh = l.replay.check(hdr.PN); fresh {
		l.replay.accept(hdr.PN)
		l.loss.received(hdr.PN)
	}
	if !fresh {
		l.mu.Unlock()
		h.dropOn(l, DropReplay)
		return
	}
	l.traffic.in(len(b))
	l.lastHeard = now
	var migrated, oldPath Path
	probes := rx.probes[:0]
	if !relayed {
		// The newest datagram from a new source address: the peer's NAT
		// rebound, it moved, or it forged the source. The path moves
		// there once the address answers a challenge (pathval.go).
		probes = h.pathSeenLocked(l, conn, from, len(b), !probe && hdr.PN == l.loss.maxPN, now, probes)
	}
	confirmedNow := false
	if !l.confirmed {
		l.confirmed = true
		if h.cfg.Accept {
			confirmedNow = true
			h.hsOK.Add(1)
			h.events.Push(Event{Kind: EventConnected, Peer: l.id, Received: now})
			h.log.Debug("link up", "peer", l.id, "addr", from)
		}
	}
	relay := rx.relay[:0]
	fan := rx.fan[:0]
	sawKCP, shed, overHost := false, false, false
	var challenge []byte
	for _, f := range frames {
		switch f.Type {
		case framePunch:
			if relayed {
				l.drops.add(DropUnexpected)
				continue
			}
			probes = h.punchFrameLocked(l, f.Body, from, now, probes)
		case framePathChallenge, framePathResponse:
			switch {
			case relayed:
				l.drops.add(DropUnexpected)
			case f.Type == framePathChallenge:
				challenge = f.Body // one answer per datagram: the last
			default:
				if old, p := h.pathResponseLocked(l, f.Body, from, now); p != nil {
					oldPath, migrated = old, p
				}
			}
		case frameRelay:
			if !h.cfg.Accept || relayed {
				l.drops.add(DropUnexpected)
				continue
			}
			for b := f.Body; len(b) > 0; {
				to, inner, rest, _ := nextRelayRecord(b) // checked by parseFrames
				relay = append(relay, relayRecord{to: to, inner: inner})
				b = rest
			}
		case frameFanout:
			if !h.cfg.Accept || relayed {
				l.drops.add(DropUnexpected)
				continue
			}
			fan = append(fan, fanoutMsg{body: f.Body, size: len(b)})
		case frameFanned:
			if h.cfg.Accept || relayed || l.id != ServerID {
				l.drops.add(DropUnexpected)
				continue
			}
			fan = append(fan, fanoutMsg{body: f.Body, size: len(b)})
		case frameKCP:
			if shed {
				continue
			}
			sawKCP = true
			switch l.inputKCPLocked(f.Body) {
			case kcpInputOK:
				// Taken by the KCP core: read out below (sawKCP).
			case kcpInputMalformed:
				l.drops.add(DropMalformed)
			case kcpInputShed:
				shed = true
			}
			l.markActiveLocked()
		case frameUnreliable:
			h.unreliableLocked(l, f.Body, now, relayed)
		case framePing:
			l.lastPingIn = now
			var body [10]byte
			copy(body[:8], f.Body)
			binary.LittleEndian.PutUint16(body[8:], uint16(l.loss.loss*1000))
			l.queueFrameLocked(framePong, body[:])
		case framePong:
			sent := time.Duration(binary.LittleEndian.Uint64(f.Body))
			l.rtt.sample(now.Sub(h.epoch) - sent)
			l.peerLoss = float64(binary.LittleEndian.Uint16(f.Body[8:])) / 1000
		case frameClose:
			if l.remoteClosed == nil {
				l.remoteClosed = &CloseError{Reason: closeReason(f.Body[0]), Message: string(f.Body[1:])}
			}
		}
	}
	if challenge != nil {
		probes = h.answerChallengeLocked(l, challenge, conn, from, probes)
	}
	if sawKCP || l.remoteClosed != nil {
		l.pumpLocked(now, relayed)
		overHost = l.syncHeldLocked()
	}
	ended := l.remoteClosed != nil && l.drainedLocked()
	out, p := l.takeLocked()
	l.mu.Unlock()
	l.writeOut(out, p)
	if len(probes) > 0 {
		h.writeProbes(l, probes)
		clear(probes)
	}
	rx.probes = probes[:0]
	if len(relay) > 0 {
		h.forwardRelayed(l, relay, now, rx)
		clear(relay)
	}
	rx.relay = relay[:0]
	if len(fan) > 0 {
		if h.cfg.Accept {
			h.forwardFanout(l, fan, now, rx)
		} else {
			h.deliverFanned(l, fan, now)
		}
		clear(fan)
	}
	rx.fan = fan[:0]
	if confirmedNow {
		h.linkConfirmed(l)
	}
	if migrated != nil {
		h.updateAddrIndex(l, oldPath, migrated)
	}
	if shed {
		h.shed(l, "reliable data past the receive window")
	} else if ended {
		h.removeLink(l, l.remoteClosedReason())
	}
	if overHost {
		h.shedLargest()
	}
}

func (l *link) remoteClosedReason() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remoteClosed
}

// unreliableLocked delivers an unreliable sequenced message unless a newer
// one on its channel came first.
func (h *Host) unreliableLocked(l *link, body []byte, now time.Time, relayed bool) {
	ch := body[0]
	seq := binary.LittleEndian.Uint32(body[1:5])
	if l.recvSeq == nil {
		l.recvSeq = make(map[uint8]uint32, 1)
	}
	if last, ok := l.recvSeq[ch]; ok && int32(seq-last) <= 0 {
		l.drops.add(DropStale)
		h.drops.add(DropStale)
		return
	}
	payload := body[unrelHeader:]
	if len(payload) == 0 {
		l.drops.add(DropMalformed)
		return
	}
	data := make([]byte, len(payload))
	copy(data, payload)
	if !h.events.TryPush(Event{Kind: EventMessage, Peer: l.id, Delivery: Delivery{Channel: ch}, Data: data, Relayed: relayed, Received: now}) {
		l.drops.add(DropQueueFull)
		h.drops.add(DropQueueFull)
		return
	}
	l.recvSeq[ch] = seq
}

func (h *Host) dropOn(l *link, r DropReason) {
	l.drops.add(r)
	h.drops.add(r)
}
