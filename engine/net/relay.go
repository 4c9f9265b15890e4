package net

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// RelayPath returns the path that reaches peer id through the server: each
// datagram, sealed end to end with the peer's keys, travels in a relay
// record over the server link, and the server forwards it unchanged.
func (h *Host) RelayPath(id HostID) Path { return &relayPath{h: h, to: id} }

type relayPath struct {
	h  *Host
	to HostID
}

func (p *relayPath) Relayed() bool  { return true }
func (p *relayPath) String() string { return "relayed via server" }

func (p *relayPath) WriteDatagram(b []byte) error {
	var rb relayBatch
	rb.add(p.h, p.to, b)
	return rb.flush(p.h)
}

// relayBatch packs relay records into as few datagrams to the server as
// possible.
type relayBatch struct {
	server *link
	cur    []byte // datagram being filled
	pn     uint64 // its packet number
	out    *outBatch
	path   Path
}

func (rb *relayBatch) add(h *Host, to HostID, inner []byte) {
	if rb.server == nil {
		rb.server = h.link(ServerID)
		if rb.server == nil {
			return
		}
		rb.server.mu.Lock()
		rb.path = rb.server.path
		rb.server.mu.Unlock()
		rb.out = batchPool.Get().(*outBatch)
	}
	if rb.cur != nil && len(rb.cur)+relayRecordHeader+len(inner) > MaxDatagram-sealOverhead {
		rb.seal()
	}
	if rb.cur == nil {
		rb.cur, rb.pn = rb.server.startDatagram()
		rb.cur = append(rb.cur, byte(frameRelay), 0, 0)
	}
	rb.cur = appendRelayRecord(rb.cur, to, inner)
}

// seal finishes the datagram being filled.
func (rb *relayBatch) seal() {
	b := rb.cur
	n := len(b) - dataHeaderSize - frameHeader
	b[dataHeaderSize+1], b[dataHeaderSize+2] = byte(n), byte(n>>8)
	rb.out.bufs = append(rb.out.bufs, rb.server.sealDatagram(b, rb.pn))
	rb.cur = nil
}

func (rb *relayBatch) flush(h *Host) error {
	if rb.server == nil {
		return fmt.Errorf("relay: %w", ErrUnknownPeer)
	}
	if rb.cur != nil {
		rb.seal()
	}
	rb.server.writeOut(rb.out, rb.path)
	return nil
}

// relayRecord is one datagram a client asked the server to forward.
type relayRecord struct {
	to    HostID
	inner []byte
}

// forwardRelayed forwards the records of a relay frame from sender: each
// must be a datagram the sender sealed itself (its HostID in the header),
// for a host the relay policy lets it reach. The datagram is written
// unchanged; the receiver authenticates it with the keys it shares with the
// sender. Copies for the host's own socket go out together, with one
// WriteBatch when the socket has it.
func (h *Host) forwardRelayed(sender *link, recs []relayRecord, now time.Time, rx *rxScratch) {
	allowed := h.takeRelay(sender, len(recs), now)
	out := &rx.out
	out.fanned = false
	for _, r := range recs[:allowed] {
		hdr, err := parseDataHeader(r.inner)
		if err != nil || hdr.From != sender.id {
			h.drops.add(DropMalformed)
			continue
		}
		if h.cfg.RelayPolicy == nil || !h.cfg.RelayPolicy(sender.id, r.to) {
			h.drops.add(DropRelayDenied)
			continue
		}
		t := h.link(r.to)
		if t == nil {
			h.drops.add(DropUnknownPeer)
			continue
		}
		t.mu.Lock()
		p := t.path
		t.mu.Unlock()
		d, ok := p.(directPath)
		if !ok {
			h.drops.add(DropRelayDenied)
			continue
		}
		h.sendCopy(out, d, t, r.inner)
	}
	h.flushCopies(out)
}

// takeRelay charges n copies from sender to its relay rate
// (Config.RelayRate) and returns how many may go; the others are counted as
// dropped (DropRateLimited).
func (h *Host) takeRelay(sender *link, n int, now time.Time) int {
	sender.mu.Lock()
	if sender.relayBudget.rate == 0 {
		rate := float64(h.cfg.RelayRate)
		sender.relayBudget = tokenBucket{rate: rate, tokens: rate, last: now}
	}
	allowed := 0
	for allowed < n && sender.relayBudget.take(now) {
		allowed++
	}
	sender.mu.Unlock()
	for range n - allowed {
		h.dropOn(sender, DropRateLimited)
	}
	return allowed
}

// copyBatch gathers the copies a server sends on for one client datagram
// (relayed records, fanned copies), so that those for its own socket go out
// with one WriteBatch.
type copyBatch struct {
	msgs  []Message
	links []*link // the link each copy is for
	// fanned: the copies are fanned frames, sealed into buffers from
	// getBuf for their links; otherwise relayed datagrams, aliasing the
	// datagram that carried them.
	fanned bool
}

// sendCopy sends the copy b for link t over its direct path d: queued in
// out when d is the host's batching socket, written at once otherwise.
func (h *Host) sendCopy(out *copyBatch, d directPath, t *link, b []byte) {
	if h.batchOut != nil && d.conn == h.conn {
		out.msgs = append(out.msgs, Message{Buf: b, Addr: d.addr})
		out.links = append(out.links, t)
		return
	}
	if err := d.WriteDatagram(b); err == nil {
		h.countCopy(out, t, len(b))
	}
	if out.fanned {
		putBuf(b)
	}
}

// flushCopies writes the copies queued in out and empties it.
func (h *Host) flushCopies(out *copyBatch) {
	if len(out.msgs) > 0 {
		writeMessages(h.batchOut, out.msgs)
		for i, m := range out.msgs {
			if m.N > 0 {
				h.countCopy(out, out.links[i], len(m.Buf))
			}
			if out.fanned {
				putBuf(m.Buf)
			}
		}
	}
	clear(out.msgs)
	clear(out.links)
	out.msgs, out.links = out.msgs[:0], out.links[:0]
}

// countCopy counts a copy of n bytes written for link t. A fanned copy is
// t's own datagram; a relayed one belongs to the link between two peers.
func (h *Host) countCopy(out *copyBatch, t *link, n int) {
	h.traffic.out(n)
	h.relayed.out(n)
	if out.fanned {
		t.traffic.out(n)
		h.fanned.out(n)
	}
}

// serverAddress is the client's view of where the server is, used to tell
// relayed datagrams from direct ones.
type serverAddress struct {
	mu   sync.RWMutex
	addr netip.AddrPort
}

func (s *serverAddress) set(a netip.AddrPort) {
	s.mu.Lock()
	s.addr = a
	s.mu.Unlock()
}

func (s *serverAddress) is(a netip.AddrPort) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.addr.IsValid() && s.addr == a
}
