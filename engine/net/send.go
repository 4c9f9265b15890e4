package net

import (
	"net/netip"
	"time"
)

// Sending one message to several hosts: SendMulti and SendGroup. Send and
// SendParts (one host) are in host.go; relayBatch, which packs the copies
// for relayed peers, in relay.go; the server's side of a group fan-out in
// fanout.go.

// SendMulti sends the same message to several hosts (a group's members). For
// peers reached through the relay, the datagrams for all of them are packed
// together: one datagram up to the server, fanned out there. Each peer's
// reliable stream stays its own, so order and exactly-once delivery hold per
// peer whatever path it is on. The first error is returned; the other hosts
// still get the message. SendGroup does better for unreliable messages to
// a group the server knows.
func (h *Host) SendMulti(ids []HostID, d Delivery, head, body []byte) error {
	return h.SendGroup(NoHost, ids, d, head, body)
}

// SendGroup sends the same message to ids, the other members of group as
// this client knows them (ServerID when the server is a member). It is
// SendMulti, except that an unreliable message goes up to the server once,
// in a fan-out frame, for every member SendMulti would route through the
// server (peers on the relay path; every peer over UplinkBudget or above
// FanoutAbove): the server sends each of them a copy from its own link
// (Config.GroupMembers authorizes it), and they receive it as an
// unreliable message from this host with Relayed set. When every id goes
// through the fan-out, the server sends to every other member it knows.
// Reliable messages ride each peer's own stream, as with SendMulti. group
// NoHost is SendMulti.
func (h *Host) SendGroup(group HostID, ids []HostID, d Delivery, head, body []byte) error {
	var rb relayBatch
	var first error
	n := len(head) + len(body)
	fanout := !d.Reliable && (h.aboveFanout(group, ids) || h.overUplinkBudget(ids, n))
	// Does not escape: up to 32 ids it lives on the stack.
	fp := h.planFanout(group, ids, d, n, fanout, make([]bool, len(ids)))
	for i, id := range ids {
		if fp.covers(i) {
			continue
		}
		l := h.link(id)
		if l == nil {
			if first == nil {
				first = h.noLink("send to", id)
			}
			continue
		}
		out, p, err := h.prepare(l, d, head, body)
		if err != nil && first == nil {
			first = err
		}
		to, viaRelay := id, false
		if rp, ok := p.(*relayPath); ok && rp.h == h {
			to, viaRelay = rp.to, true
		} else if _, direct := p.(directPath); direct && fanout && id != ServerID {
			viaRelay = true
		}
		if viaRelay && out != nil {
			for i, b := range out.bufs {
				rb.add(h, to, b)
				l.countOut(len(b), false)
				putBuf(b)
				out.bufs[i] = nil
			}
			out.bufs = out.bufs[:0]
			batchPool.Put(out)
			continue
		}
		l.writeOut(out, p)
	}
	if rb.server != nil {
		rb.flush(h)
	}
	if fp.n > 0 {
		if err := h.sendFanout(group, ids, fp, d.Channel, head, body); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// What the IP and UDP headers add to every datagram: IPv4's 20 bytes or
// IPv6's 40, and UDP's 8.
const (
	udpIPv4Overhead = 28
	udpIPv6Overhead = 48
)

// directDatagramCost is what the uplink budget charges for a message of n
// bytes sent directly to addr: the message, Skein's headers and tag, and
// the IP and UDP headers of addr's family (an IPv4-mapped address goes out
// as IPv4 on a dual-stack socket).
func directDatagramCost(addr netip.AddrPort, n int) int {
	ip := udpIPv4Overhead
	if a := addr.Addr(); a.Is6() && !a.Is4In6() {
		ip = udpIPv6Overhead
	}
	return n + dataHeaderSize + sealOverhead + frameHeader + kcpOverheadEstimate + ip
}

// overUplinkBudget reports whether sending a message of n bytes directly to
// each directly reached peer among ids would exceed the uplink budget; if it
// fits, the budget is charged.
func (h *Host) overUplinkBudget(ids []HostID, n int) bool {
	if h.cfg.UplinkBudget <= 0 {
		return false
	}
	cost := 0
	for _, id := range ids {
		if id == ServerID {
			continue
		}
		if l := h.link(id); l != nil {
			l.mu.Lock()
			p, ok := l.path.(directPath)
			l.mu.Unlock()
			if ok {
				cost += directDatagramCost(p.addr, n)
			}
		}
	}
	if cost == 0 {
		return false
	}
	h.uplinkMu.Lock()
	ok := h.uplink.takeN(time.Now(), float64(cost))
	h.uplinkMu.Unlock()
	if !ok {
		h.fanouts.Add(1)
	}
	return !ok
}

// kcpOverheadEstimate is the per-message header the budget assumes (a KCP
// segment header; an unreliable frame's is smaller).
const kcpOverheadEstimate = 24
