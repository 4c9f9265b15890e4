package net

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// link is the state Skein keeps for one peer: keys, the reliable KCP stream,
// unreliable sequence numbers, the current path and statistics.
//
// Locking: mu guards everything below it. Nothing that can block (socket
// writes, user code) runs under mu: datagrams produced under mu are queued in
// out and written by whoever took the lock, after unlocking.
type link struct {
	h       *Host
	id      HostID // the peer
	localID HostID // how this host names itself on this link
	seal    *sealer
	cipher  Cipher
	pnOut   atomic.Uint64 // last packet number used
	probePN atomic.Uint64 // last one used in the probe space, less probePNBase
	traffic trafficCounters
	drops   dropCounters

	mu             sync.Mutex
	kcp            *kcp.KCP
	path           Path
	out            *outBatch
	replay         replayWindow
	active         bool // in the scheduler's active set
	idleTicks      int
	flushPending   bool
	acks           []byte // acknowledgements waiting for the next datagram out (output)
	stalled        bool
	confirmed      bool
	removed        bool
	closing        error // local close in progress, with this reason
	closeDeadline  time.Time
	closeQueued    bool // the close frames are out: the link is being removed
	remoteClosed   error
	pend           []byte      // framed reliable messages not yet given to KCP (stream.go)
	rx             []byte      // reliable stream bytes taken from KCP, not yet delivered
	rxOff          int         // rx[:rxOff] is delivered
	relayBudget    tokenBucket // server: what this client may have relayed
	natBudget      tokenBucket // server: the client's NAT probes (natprobe.go)
	recvSeq        map[uint8]uint32
	nextSN         uint32
	retransmits    uint64
	flow           flowCounters
	rtt            rttEstimator
	loss           lossEstimator
	peerLoss       float64
	since          time.Time
	pathSince      time.Time
	punch          *punchState // peer links: hole punching
	pathCheck      *pathCheck  // a new peer address being validated
	probeReplay    probeWindow // the probe packet-number space's replay window
	lastHeard      time.Time
	lastPing       time.Time // when we last pinged
	lastPingIn     time.Time // when the peer last pinged us
	lastLossUpdate time.Time
	// Server side: the hello's public key and the welcome, resent when a
	// retransmitted hello shows the welcome was lost.
	clientPub [keySize]byte
	// user is who a server link's client is (Config.Authenticate); set
	// before the link is registered, never changed.
	user    *User
	welcome []byte
	// Resume (resume.go): the link timed out and waits, since
	// suspendedAt, for its peer within Config.ResumeGrace. restarted: a
	// server link that took over a suspended session of its user (a
	// client process that restarted): its confirmation is an EventBack.
	suspended   bool
	suspendedAt time.Time
	restarted   bool

	// held is the bytes of received KCP data the core holds, charged to
	// the host's receive budget (budget.go): written under mu, read by
	// the host's shedding without it.
	held atomic.Int64
	// away mirrors suspended, for the session decision under Host.mu
	// (sessionLocked), which does not take link locks.
	away atomic.Bool
}

func newLink(h *Host, id, localID HostID, keys Keys, path Path, now time.Time) (*link, error) {
	s, err := newSealer(keys)
	if err != nil {
		return nil, err
	}
	l := &link{h: h, id: id, localID: localID, seal: s, cipher: keys.Cipher, path: path, since: now, pathSince: now, lastHeard: now, lastPing: now}
	l.kcp = newKCP(l.output)
	l.flow.cause = FlushOther
	return l, nil
}

// outBatch holds sealed datagrams waiting to be written, and the messages
// to write them with one WriteBatch.
type outBatch struct {
	bufs [][]byte
	msgs []Message
}

var batchPool = sync.Pool{New: func() any { return &outBatch{bufs: make([][]byte, 0, 16)} }}

// bufSize leaves room past MaxDatagram for the seal's nonce scratch.
const bufSize = MaxDatagram + 64

var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

func getBuf() []byte { return bufPool.Get().(*[bufSize]byte)[:0] }

func putBuf(b []byte) {
	if cap(b) == bufSize {
		bufPool.Put((*[bufSize]byte)(b[:bufSize]))
	}
}

// queueLocked adds a sealed datagram to the out batch.
func (l *link) queueLocked(b []byte) {
	if l.out == nil {
		l.out = batchPool.Get().(*outBatch)
	}
	l.out.bufs = append(l.out.bufs, b)
	l.sentDirectLocked()
}

// takeLocked removes the out batch and returns it with the path to write it
// on; write it with writeOut after unlocking.
func (l *link) takeLocked() (*outBatch, Path) {
	b := l.out
	l.out = nil
	return b, l.path
}

// writeOut writes a batch taken with takeLocked. Call it without l.mu.
// Several datagrams on a direct path over a BatchWriter go out with one
// system call.
func (l *link) writeOut(b *outBatch, p Path) {
	if b == nil {
		return
	}
	if d, ok := p.(directPath); ok && len(b.bufs) > 1 {
		if bw, ok := d.conn.(BatchWriter); ok {
			msgs := b.msgs[:0]
			for _, buf := range b.bufs {
				msgs = append(msgs, Message{Buf: buf, Addr: d.addr})
			}
			writeMessages(bw, msgs)
			for _, m := range msgs {
				if m.N > 0 {
					l.countOut(len(m.Buf), true)
				}
			}
			clear(msgs)
			b.msgs = msgs[:0]
			p = nil // written
		}
	}
	onSocket := p != nil && !p.Relayed()
	for i, d := range b.bufs {
		if p != nil && p.WriteDatagram(d) == nil {
			l.countOut(len(d), onSocket)
		}
		putBuf(d)
		b.bufs[i] = nil
	}
	b.bufs = b.bufs[:0]
	batchPool.Put(b)
}

// countOut counts a datagram of n bytes this link sent. onSocket: the host's
// socket sent it as it is; a relayed datagram crosses the socket inside one
// to the server, which the server link counts as the host's traffic.
func (l *link) countOut(n int, onSocket bool) {
	l.traffic.out(n)
	if onSocket {
		l.h.traffic.out(n)
	}
}

// seal finishes a datagram whose plaintext frames follow the header in b.
// b must come from getBuf: the nonce is built in its spare tail, past the
// largest datagram.
func (l *link) sealDatagram(b []byte, pn uint64) []byte {
	return l.seal.seal(b[:dataHeaderSize], pn, b[dataHeaderSize:], b[bufSize-nonceSize:bufSize])
}

// startDatagram returns a buffer holding a data header with a fresh packet
// number.
func (l *link) startDatagram() ([]byte, uint64) {
	pn := l.pnOut.Add(1)
	return appendDataHeader(getBuf(), dataHeader{From: l.localID, PN: pn}), pn
}

// output is the KCP core's output function: one call per datagram's worth
// of segments. It runs under l.mu (KCP is only touched under it).
func (l *link) output(buf []byte, size int) {
	if size <= 0 {
		return
	}
	seg := buf[:size]
	if l.flow.cause == FlushInput && len(l.acks)+size <= kcpMTU && delayableAcks(seg) {
		// Acknowledgements flushed while a datagram is input: held until
		// the input is done. If it acknowledged something of ours (an
		// answer to our request), they wait for the next datagram the
		// link sends (the application's answer, usually) or the next
		// update (10 ms), so that a request and its answer cost one
		// datagram each way; otherwise (KCP's ack clocking: a sender
		// waits for them) they leave at once (handleKCPFrameLocked).
		l.acks = append(l.acks, seg...)
		l.markActiveLocked()
		return
	}
	if len(l.acks)+size > kcpMTU {
		l.flushAcksLocked() // a datagram of their own, counted
	} else if len(l.acks) > 0 {
		l.acks = append(l.acks, seg...)
		seg = l.acks
		l.acks = l.acks[:0]
	}
	l.retransmits += l.flow.countOutput(seg, &l.nextSN)
	l.sealKCPLocked(seg)
}

// sealKCPLocked seals KCP segments into a datagram of their own.
func (l *link) sealKCPLocked(seg []byte) {
	b, pn := l.startDatagram()
	b = appendFrame(b, frameKCP, seg)
	l.queueLocked(l.sealDatagram(b, pn))
}

// flushAcksLocked sends the delayed acknowledgements, if any.
func (l *link) flushAcksLocked() {
	if len(l.acks) > 0 {
		l.flow.countOutput(l.acks, &l.nextSN)
		l.sealKCPLocked(l.acks)
		l.acks = l.acks[:0]
	}
}

// delayableAcks reports whether seg is only acknowledgements, fewer than
// KCP's ack clocking sends at once (a run that long goes at once: a bulk
// sender waits for it).
func delayableAcks(seg []byte) bool {
	n := 0
	for ; len(seg) >= kcp.IKCP_OVERHEAD; seg = seg[kcp.IKCP_OVERHEAD:] {
		if seg[4] != kcp.IKCP_CMD_ACK || binary.LittleEndian.Uint32(seg[20:]) != 0 {
			return false
		}
		n++
	}
	return len(seg) == 0 && n > 0 && n < kcpMTU/kcp.IKCP_OVERHEAD
}

// queuePingLocked queues a ping (a keepalive, a confirmation or a resume
// probe) carrying now as its echo, and notes it as the last ping sent.
func (l *link) queuePingLocked(now time.Time) {
	l.lastPing = now
	var body [8]byte
	putUint64(body[:], uint64(now.Sub(l.h.epoch)))
	l.queueFrameLocked(framePing, body[:])
}

// queueFrameLocked seals one small control frame into its own datagram.
func (l *link) queueFrameLocked(typ frameType, body []byte) {
	b, pn := l.startDatagram()
	b = appendFrame(b, typ, body)
	l.queueLocked(l.sealDatagram(b, pn))
}

// markActiveLocked puts the link in the scheduler's set of links whose KCP
// core needs Update calls.
func (l *link) markActiveLocked() {
	l.idleTicks = 0
	if !l.active {
		l.active = true
		l.h.sched.addActive(l)
	}
}

func (l *link) statsLocked() LinkStats {
	var bday BirthdayPhase
	if l.punch != nil {
		bday = l.punch.bdayPhase
	}
	return LinkStats{
		Birthday:    bday,
		Peer:        l.id,
		RTT:         l.rtt.srtt,
		Jitter:      l.rtt.jitter,
		LossOut:     l.peerLoss,
		LossIn:      l.loss.loss,
		Retransmits: l.retransmits,
		Flow:        l.flow.FlowStats,
		Traffic:     l.traffic.snapshot(),
		Drops:       l.drops.snapshot(),
		SendQueue:   l.waitingLocked(),
		Path:        pathString(l.path),
		Cipher:      l.cipher,
		Relayed:     l.path != nil && l.path.Relayed(),
		Since:       l.since,
		PathSince:   l.pathSince,
		LastHeard:   l.lastHeard,
	}
}

func pathString(p Path) string {
	if p == nil {
		return "none"
	}
	return p.String()
}

// directAddr returns the address of a direct path.
func directAddr(p Path) (netip.AddrPort, bool) {
	d, ok := p.(directPath)
	return d.addr, ok
}
