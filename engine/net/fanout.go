package net

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// The server's fan-out of unreliable group messages. A member sends one
// fan-out frame up its server link (group, optionally the recipients, the
// message's channel, sequence and payload); the server checks that the
// sender is a member (Config.GroupMembers) and sends each other member a
// fanned frame (sender, channel, sequence, payload) sealed with that
// member's server-link keys. The member delivers it as an unreliable
// message from the sender, ordered on the link to the sender by the
// sender's sequence number: a host numbers each channel's messages across
// all its links (Host.unrelSeq), so a fanned copy and a direct one compare.
// The server is trusted with every peer key already, so a copy it stamps
// with the sender's HostID is as trustworthy as a relayed datagram sealed
// with the peer keys; members still cannot forge each other.

// aboveFanout reports whether a send to group's members ids is above
// Config.FanoutAbove.
func (h *Host) aboveFanout(group HostID, ids []HostID) bool {
	if group == NoHost || h.cfg.FanoutAbove <= 0 {
		return false
	}
	peers := len(ids)
	if slices.Contains(ids, ServerID) {
		peers--
	}
	if peers <= h.cfg.FanoutAbove {
		return false
	}
	h.fanouts.Add(1)
	return true
}

// fanoutPlan says which of a group send's ids the fan-out covers.
type fanoutPlan struct {
	covered []bool // by index in ids
	n       int    // how many ids are covered
	all     bool   // the frame names no recipient: every other member
}

func (fp *fanoutPlan) covers(i int) bool { return fp.n > 0 && fp.covered[i] }

// planFanout decides which of ids an unreliable message of n bytes to
// group reaches through the server's fan-out: the peers on the relay path,
// every peer when over is set, and the server when it is among ids and
// anyone else is covered (it then gets the message once, from the fan-out).
// When every id is covered the frame names no recipient (the server sends
// to every other member); otherwise it lists them, unless the list does not
// fit, in which case every id with a link is covered. covered is scratch of
// len(ids), all false.
func (h *Host) planFanout(group HostID, ids []HostID, d Delivery, n int, over bool, covered []bool) fanoutPlan {
	if group == NoHost || h.cfg.Accept || d.Reliable || n == 0 || n > MaxUnreliable {
		return fanoutPlan{}
	}
	fp := fanoutPlan{covered: covered}
	server, linked := -1, 0
	for i, id := range ids {
		l := h.link(id)
		if l == nil {
			continue
		}
		linked++
		if id == ServerID {
			server = i
			continue
		}
		l.mu.Lock()
		p := l.path
		l.mu.Unlock()
		if rp, ok := p.(*relayPath); (ok && rp.h == h) || over {
			fp.covered[i] = true
			fp.n++
		}
	}
	if fp.n == 0 {
		return fanoutPlan{}
	}
	if server >= 0 {
		fp.covered[server] = true
		fp.n++
	}
	if fp.n == len(ids) || !fanoutFits(fp.n, n) {
		// Every member: the frame names none.
		for i, id := range ids {
			if !fp.covered[i] && h.link(id) != nil {
				fp.covered[i] = true
			}
		}
		fp.n, fp.all = linked, true
	}
	return fp
}

// sendFanout sends one fan-out frame for group up the server link, naming
// the ids fp covers unless it covers all.
func (h *Host) sendFanout(group HostID, ids []HostID, fp fanoutPlan, ch uint8, head, body []byte) error {
	srv := h.link(ServerID)
	if srv == nil {
		return h.noLink("fan-out to", group)
	}
	srv.mu.Lock()
	err := srv.sendableLocked()
	p := srv.path
	srv.mu.Unlock()
	if err != nil {
		return fmt.Errorf("fan-out to %v: %w", group, err)
	}
	listed := 0
	if !fp.all {
		listed = fp.n
	}
	seq := h.unrelSeq[ch].Add(1)
	n := len(head) + len(body)
	size := fanoutHeader + 4*listed + unrelHeader + n
	b, pn := srv.startDatagram()
	b = append(b, byte(frameFanout), byte(size), byte(size>>8))
	b = binary.LittleEndian.AppendUint32(b, uint32(group))
	b = append(b, byte(listed))
	if !fp.all {
		for i, id := range ids {
			if fp.covered[i] {
				b = binary.LittleEndian.AppendUint32(b, uint32(id))
			}
		}
	}
	b = append(b, ch, byte(seq), byte(seq>>8), byte(seq>>16), byte(seq>>24))
	b = append(append(b, head...), body...)
	b = srv.sealDatagram(b, pn)
	h.fanned.out(len(b))
	out := batchPool.Get().(*outBatch)
	out.bufs = append(out.bufs, b)
	srv.writeOut(out, p)
	return nil
}

// fanoutMsg is a fan-out frame received from a client, or a fanned frame
// received from the server; body aliases the datagram.
type fanoutMsg struct {
	body []byte
	size int // of the datagram that carried it
}

// forwardFanout serves the fan-out frames a client sent: each goes to the
// other members of its group (or those it lists) as a fanned frame sealed
// for each, if the sender is a member. Call it without sender.mu.
func (h *Host) forwardFanout(sender *link, msgs []fanoutMsg, now time.Time, rx *rxScratch) {
	for _, m := range msgs {
		h.fanned.in(m.size)
		group, list, unrel := splitFanout(m.body)
		if h.cfg.GroupMembers == nil {
			h.dropOn(sender, DropRelayDenied)
			continue
		}
		members, ok := h.cfg.GroupMembers(group, rx.members[:0])
		rx.members = members[:0]
		if !ok {
			h.dropOn(sender, DropUnknownPeer)
			continue
		}
		if !slices.Contains(members, sender.id) {
			h.dropOn(sender, DropRelayDenied)
			continue
		}
		to := rx.to[:0]
		if len(list) == 0 {
			for _, id := range members {
				if id != sender.id {
					to = append(to, id)
				}
			}
		}
		for ; len(list) > 0; list = list[4:] {
			id := HostID(binary.LittleEndian.Uint32(list))
			if id == sender.id || !slices.Contains(members, id) {
				h.dropOn(sender, DropRelayDenied)
				continue
			}
			if !slices.Contains(to, id) {
				to = append(to, id)
			}
		}
		rx.to = to[:0]
		h.fanOut(sender, to, unrel, now, rx)
	}
}

// fanOut sends the unreliable body (channel, sequence, payload) from sender
// to each of to; the server itself gets it as a message. Every copy, the
// server's own included, is charged to the sender's relay rate (those over
// it are dropped and counted, DropRateLimited). Copies for the host's own
// socket go out together, with one WriteBatch when the socket has it.
func (h *Host) fanOut(sender *link, to []HostID, unrel []byte, now time.Time, rx *rxScratch) {
	allowed := h.takeRelay(sender, len(to), now)
	size := fannedHeader + len(unrel)
	out := &rx.out
	out.fanned = true
	for _, id := range to {
		if allowed == 0 {
			break
		}
		allowed--
		if id == h.ID() {
			sender.mu.Lock()
			if !sender.removed {
				h.unreliableLocked(sender, unrel, now, false)
			}
			sender.mu.Unlock()
			continue
		}
		t := h.link(id)
		if t == nil {
			h.drops.add(DropUnknownPeer)
			continue
		}
		t.mu.Lock()
		p, gone := t.path, t.removed || t.closing != nil
		t.mu.Unlock()
		d, ok := p.(directPath)
		if !ok || gone {
			h.drops.add(DropRelayDenied)
			continue
		}
		b, pn := t.startDatagram()
		b = append(b, byte(frameFanned), byte(size), byte(size>>8))
		b = binary.LittleEndian.AppendUint32(b, uint32(sender.id))
		b = append(b, unrel...)
		h.sendCopy(out, d, t, t.sealDatagram(b, pn))
	}
	h.flushCopies(out)
}

// deliverFanned delivers the fanned frames the server sent: each is an
// unreliable message from a peer, ordered on the link to that peer. Call
// it without srv.mu.
func (h *Host) deliverFanned(srv *link, msgs []fanoutMsg, now time.Time) {
	for _, m := range msgs {
		h.fanned.in(m.size)
		from := HostID(binary.LittleEndian.Uint32(m.body))
		l := h.link(from)
		if l == nil || from == ServerID {
			h.dropOn(srv, DropUnknownPeer)
			continue
		}
		l.mu.Lock()
		if !l.removed {
			h.unreliableLocked(l, m.body[fannedHeader:], now, true)
		}
		l.mu.Unlock()
	}
}
