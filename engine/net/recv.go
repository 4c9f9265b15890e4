package net

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/skein-dev/skein/engine/internal/queue"
)

func putUint64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }

func errorsIsShutdown(err error) bool { return errors.Is(err, ErrShutdown) }

// readLoop is the host's reader goroutine: the demux. It routes each
// datagram by its first byte (packet kind) and, for data, by the sender's
// HostID and keys.
func (h *Host) readLoop(conn PacketConn) {
	defer h.wg.Done()
	if conn == h.conn && h.bt.conn != nil {
		h.batonLoop()
		return
	}
	if br, ok := conn.(BatchReader); ok {
		h.readBatches(conn, br)
		return
	}
	h.readEach(conn, make([]byte, 64<<10))
}

// readEach reads conn one datagram at a time into buf and demuxes each,
// until the conn is closed or the host is closing.
func (h *Host) readEach(conn PacketConn, buf []byte) {
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
	msgs := newReadBatch()
	rx := new(rxScratch)
	for {
		n, err := br.ReadBatch(msgs)
		if err != nil {
			if h.readFailed(err) {
				return
			}
			continue
		}
		h.handleBatch(msgs[:n], conn, rx)
	}
}

// newReadBatch returns readBatch messages with readSlot-byte buffers, for
// one goroutine's batched reads.
func newReadBatch() []Message {
	mem := make([]byte, readBatch*readSlot)
	msgs := make([]Message, readBatch)
	for i := range msgs {
		msgs[i].Buf = mem[i*readSlot : (i+1)*readSlot : (i+1)*readSlot]
	}
	return msgs
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
	events []Event // delivered reliable messages, pushed together
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
	if b[0] != kindData && h.cfg.Accept && h.isProbeConn(conn) {
		// A NAT probe endpoint takes clients' sealed probes only.
		h.drops.add(DropUnexpected)
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
		h.handleCookie(b, from, now)
	case kindWelcome:
		h.handleWelcome(b, from, now)
	case kindReject:
		h.handleReject(b, from)
	case kindHairpin:
		h.handleHairpin(b, from)
	default:
		h.drops.add(DropMalformed)
	}
}

// handleData authenticates a data datagram and processes its frames. b is
// modified (decrypted in place). relayed is true when the datagram came
// wrapped in a relay envelope.
//
// It runs in three steps: openData authenticates and decodes without any
// lock; under the link's lock, the packet number is accepted and each frame
// goes to its own handler (handleFrameLocked, recv_frame.go), which only
// records in an rxData what must be sent or forwarded; once the lock is
// released, finishData sends, forwards and delivers that.
func (h *Host) handleData(b []byte, from netip.AddrPort, now time.Time, relayed bool, rx *rxScratch, conn PacketConn) {
	l, pn, frames, ok := h.openData(b, rx)
	if !ok {
		return
	}
	probe := isProbePN(pn)

	l.mu.Lock()
	if l.removed {
		l.mu.Unlock()
		return
	}
	if !l.acceptPNLocked(pn, probe) {
		l.mu.Unlock()
		h.dropOn(l, DropReplay)
		return
	}
	l.traffic.in(len(b))
	l.lastHeard = now
	d := rxData{
		l: l, from: from, now: now, conn: conn, size: len(b), relayed: relayed,
		probes: rx.probes[:0], relay: rx.relay[:0], fan: rx.fan[:0],
	}
	if !relayed {
		// The newest datagram from a new source address: the peer's NAT
		// rebound, it moved, or it forged the source. The path moves
		// there once the address answers a challenge (pathval.go).
		d.probes = h.pathSeenLocked(l, conn, from, len(b), !probe && pn == l.loss.maxPN, now, d.probes)
	}
	if l.suspended && h.onPathLocked(l, from, relayed) {
		h.resumeLocked(l, now)
	}
	h.heardLocked(l, from, relayed, now)
	d.confirmedNow = h.confirmLocked(l, from, now)
	l.flow.startFlush(FlushInput)
	for _, f := range frames {
		h.handleFrameLocked(&d, f)
	}
	l.flow.endFlush()
	if d.challenge != nil {
		d.probes = h.answerChallengeLocked(l, d.challenge, conn, from, d.probes)
	}
	if d.sawKCP || l.remoteClosed != nil {
		if !l.pumpLocked(now, relayed, &rx.events) {
			d.shedWhy = shedBrokenStream
		}
		d.overHost = l.syncHeldLocked()
	}
	d.ended = l.remoteClosed != nil && l.drainedLocked()
	out, p := l.takeLocked()
	l.mu.Unlock()
	l.writeOut(out, p)
	h.finishData(&d, rx)
}

// openData authenticates a data datagram (decrypting b in place) and
// decodes its frames into rx.frames. Whatever fails is counted as a drop
// and ok is false.
func (h *Host) openData(b []byte, rx *rxScratch) (l *link, pn uint64, frames []frame, ok bool) {
	hdr, err := parseDataHeader(b)
	if err != nil {
		h.drops.add(DropMalformed)
		return nil, 0, nil, false
	}
	l = h.link(hdr.From)
	if l == nil {
		h.drops.add(DropUnknownPeer)
		return nil, 0, nil, false
	}
	plain, err := l.seal.open(b, hdr.PN, dataHeaderSize, rx.nonce[:])
	if err != nil {
		h.dropOn(l, DropBadSeal)
		return nil, 0, nil, false
	}
	frames, err = parseFrames(plain, rx.frames[:0])
	rx.frames = frames
	if err != nil {
		// Authenticated but malformed: a peer with a bug, not an attacker.
		h.dropOn(l, DropMalformed)
		return nil, 0, nil, false
	}
	if !framesFitSpace(frames, isProbePN(hdr.PN)) {
		h.dropOn(l, DropUnexpected)
		return nil, 0, nil, false
	}
	return l, hdr.PN, frames, true
}

// acceptPNLocked reports whether packet number pn is fresh, and records
// it. probe: pn is from the probe space. Probes, challenges and responses
// have their own window, and are no part of the loss estimate
// (pathval.go).
func (l *link) acceptPNLocked(pn uint64, probe bool) bool {
	if probe {
		return l.probeReplay.accept(pn)
	}
	if !l.replay.check(pn) {
		return false
	}
	l.replay.accept(pn)
	l.loss.received(pn)
	return true
}

// confirmLocked marks the link confirmed by its first authenticated
// datagram. It reports whether a server just confirmed a client's link:
// then the caller runs linkConfirmed once the lock is released.
func (h *Host) confirmLocked(l *link, from netip.AddrPort, now time.Time) bool {
	if l.confirmed {
		return false
	}
	l.confirmed = true
	if !h.cfg.Accept {
		return false
	}
	h.hsOK.Add(1)
	if l.restarted {
		// It took over its user's suspended session (resume.go).
		h.resume.resumed.Add(1)
		h.events.Push(Event{Kind: EventBack, Peer: l.id, Err: ErrSessionRestarted, Received: now, User: l.user})
	} else {
		h.events.Push(Event{Kind: EventConnected, Peer: l.id, Received: now, User: l.user})
	}
	h.log.Debug("link up", "peer", l.id, "addr", from)
	return true
}

// finishData does, without the link's lock, what the frames of one
// datagram left to do: write probes and path answers, forward relay
// records and fan-out, deliver fanned messages, index a migrated path,
// and shed or remove the link. It hands the scratch slices back to rx.
func (h *Host) finishData(d *rxData, rx *rxScratch) {
	l := d.l
	if len(d.probes) > 0 {
		h.writeProbes(l, d.probes)
		clear(d.probes)
	}
	rx.probes = d.probes[:0]
	if len(d.relay) > 0 {
		h.forwardRelayed(l, d.relay, d.now, rx)
		clear(d.relay)
	}
	rx.relay = d.relay[:0]
	if len(d.fan) > 0 {
		if h.cfg.Accept {
			h.forwardFanout(l, d.fan, d.now, rx)
		} else {
			h.deliverFanned(l, d.fan, d.now)
		}
		clear(d.fan)
	}
	rx.fan = d.fan[:0]
	if d.confirmedNow {
		h.linkConfirmed(l)
	}
	if d.migrated != nil {
		h.updateAddrIndex(l, d.oldPath, d.migrated)
		h.resumeMoved(l, d.now)
	}
	if d.shedWhy != "" {
		h.shed(l, d.shedWhy)
	} else if d.ended {
		h.removeLink(l, l.remoteClosedReason())
	}
	if d.overHost {
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
	switch h.events.TryPush(Event{Kind: EventMessage, Peer: l.id, Delivery: Delivery{Channel: ch}, Data: data, Relayed: relayed, Received: now, User: l.user}) {
	case queue.Pushed:
	case queue.Full:
		h.dropOn(l, DropQueueFull)
		return
	case queue.OverBytes:
		h.dropOn(l, DropQueueBytes)
		return
	}
	l.recvSeq[ch] = seq
}

func (h *Host) dropOn(l *link, r DropReason) {
	l.drops.add(r)
	h.drops.add(r)
}
