package net

import (
	"sync/atomic"
	"time"
)

// DropReason says why a datagram or a message was dropped.
type DropReason int

const (
	// DropMalformed: too short, unknown kind, bad frame layout, or a KCP
	// segment the core refused.
	DropMalformed DropReason = iota
	// DropBadSeal: the AEAD tag did not verify (forged, corrupted, or sealed
	// with other keys).
	DropBadSeal
	// DropReplay: a packet number already seen or older than the window; a
	// hello for a link already confirmed.
	DropReplay
	// DropUnknownPeer: a data datagram naming a HostID with no link; a
	// fan-out message for a group the server does not know, or fanned out
	// from a sender this host has no peer link to.
	DropUnknownPeer
	// DropQueueFull: an unreliable message found the event queue full.
	DropQueueFull
	// DropRateLimited: a hello over its source's or its conn's handshake
	// rate, or a datagram over a client's relay rate.
	DropRateLimited
	// DropUnexpected: a well-formed packet this host does not expect (a hello
	// at a client, a welcome nobody asked for).
	DropUnexpected
	// DropStale: an unreliable message older than the newest on its channel.
	DropStale
	// DropRelayDenied: a relay record for a host the sender may not reach
	// (no common group), or that has no direct path from the server; a
	// fan-out message to a group the sender is not a member of, or listing a
	// recipient that is not.
	DropRelayDenied
	// DropOversize: a datagram longer than MaxDatagram, which no Skein host
	// sends.
	DropOversize
	// DropOverBudget: a reliable segment that would take its link's
	// out-of-order data past Config.LinkReceiveBudget (refused before the
	// KCP core keeps it), or the datagram of a link shed for going over a
	// receive budget or sending past the receive window (ErrOverBudget).
	DropOverBudget
	// DropUnvalidated: a datagram not sent to a peer's new address because
	// the address has not answered a path challenge yet and the datagram
	// would take what was sent there over 3x what came from it (path
	// validation's anti-amplification budget), or a path challenge that
	// came from an address that is neither the link's validated path nor
	// the one being validated.
	DropUnvalidated
	// DropQueueBytes: an unreliable message that would have taken the
	// event queue past Config.EventQueueBytes (reliable ones wait in their
	// stream instead: EventQueueStats.ByteStalls).
	DropQueueBytes
	// NumDropReasons is the number of drop reasons.
	NumDropReasons
)

var dropNames = [NumDropReasons]string{"malformed", "bad_seal", "replay", "unknown_peer", "queue_full", "rate_limited", "unexpected", "stale", "relay_denied", "oversize", "over_budget", "unvalidated", "queue_bytes"}

func (r DropReason) String() string {
	if r >= 0 && r < NumDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// DropCounts counts drops by reason.
type DropCounts [NumDropReasons]uint64

// Total is the sum over all reasons.
func (d DropCounts) Total() (n uint64) {
	for _, v := range d {
		n += v
	}
	return n
}

type dropCounters [NumDropReasons]atomic.Uint64

func (c *dropCounters) add(r DropReason) { c[r].Add(1) }

func (c *dropCounters) snapshot() (d DropCounts) {
	for i := range c {
		d[i] = c[i].Load()
	}
	return d
}

// trafficCounters count what crossed the socket.
type trafficCounters struct {
	bytesIn, bytesOut, datagramsIn, datagramsOut atomic.Uint64
}

func (t *trafficCounters) in(n int) {
	t.bytesIn.Add(uint64(n))
	t.datagramsIn.Add(1)
}

func (t *trafficCounters) out(n int) {
	t.bytesOut.Add(uint64(n))
	t.datagramsOut.Add(1)
}

// Traffic is a snapshot of bytes and datagrams in and out.
type Traffic struct {
	BytesIn, BytesOut, DatagramsIn, DatagramsOut uint64
}

func (t *trafficCounters) snapshot() Traffic {
	return Traffic{t.bytesIn.Load(), t.bytesOut.Load(), t.datagramsIn.Load(), t.datagramsOut.Load()}
}

// LinkStats is a snapshot of one link.
type LinkStats struct {
	Peer HostID
	// RTT is the smoothed round-trip time from keepalive pings, Jitter the
	// smoothed difference between consecutive samples (RFC 3550 style).
	RTT, Jitter time.Duration
	// LossOut estimates the fraction of our datagrams the peer did not get
	// (it reports what it saw); LossIn the fraction of the peer's we missed.
	LossOut, LossIn float64
	// Retransmits counts reliable segments sent again.
	Retransmits uint64
	// Flow counts how the reliable stream moved (messages per segment and
	// datagram, flushes by cause, waits).
	Flow FlowStats
	Traffic
	// Drops counts datagrams from this peer dropped after its HostID was
	// recognised (bad seal, replay, malformed).
	Drops DropCounts
	// SendQueue is the number of reliable segments waiting or in flight.
	SendQueue int
	// Path describes the current path; Relayed is true when it goes through
	// the server.
	Path    string
	Relayed bool
	// Birthday says how far birthday punching got on this link
	// (BirthdayNone: it never started).
	Birthday BirthdayPhase
	// Cipher is the link's AEAD.
	Cipher Cipher
	// Since is when the link came up, PathSince when its path last changed
	// (direct or relayed), LastHeard when the last authenticated datagram
	// arrived.
	Since, PathSince, LastHeard time.Time
}

// HostStats is a snapshot of a whole host.
type HostStats struct {
	Links int
	Traffic
	// Relayed counts what a server forwarded for its clients (datagrams
	// and bytes out).
	Relayed Traffic
	Drops   DropCounts
	// Fanouts counts unreliable group sends routed through the server's
	// fan-out even to peers reached directly, because the uplink budget
	// was spent (Config.UplinkBudget) or the group was large
	// (Config.FanoutAbove).
	Fanouts uint64
	// Fanned counts the server's fan-out of unreliable group messages (one
	// datagram up, a copy for each member sent from the server). On a
	// server: fan-out datagrams received (In) and the copies sent (Out, also
	// counted in Relayed). On a client: fan-out datagrams sent (Out) and
	// fanned copies received (In).
	Fanned Traffic
	// Handshakes counts completed handshakes (server side: clients
	// welcomed; client side: successful dials); HandshakeFailures counts
	// refusals sent or received and dials that timed out (on a server, not
	// the busy rejects of the rate checks: see Admission).
	Handshakes, HandshakeFailures uint64
	// Admission counts a server's admission decisions.
	Admission AdmissionStats
	// Resume counts suspended links (Config.ResumeGrace).
	Resume ResumeStats
	// Events counts the event queue's pushes and wake-ups.
	Events EventQueueStats
	// Baton counts the reader baton's passes between the reader goroutine
	// and Next (Host.Next).
	Baton BatonStats
	// Auth counts a server's Authenticate decisions (logins, refusals by
	// reason, replaced sessions).
	Auth AuthStats
}

// rttEstimator keeps smoothed RTT and jitter. Not safe for concurrent use.
type rttEstimator struct {
	srtt, jitter, last time.Duration
	samples            int
}

func (r *rttEstimator) sample(rtt time.Duration) {
	if rtt < 0 {
		return
	}
	if r.samples == 0 {
		r.srtt = rtt
	} else {
		r.srtt += (rtt - r.srtt) / 8
		d := rtt - r.last
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
	}
	r.last = rtt
	r.samples++
}

// lossEstimator estimates inbound loss from gaps in the peer's packet
// numbers. A sample is taken once at least lossSamplePackets numbers have
// gone by (checked at each keepalive), so an idle link's estimate is not
// made of two-packet coin flips. Not safe for concurrent use.
type lossEstimator struct {
	maxPN, prevMax uint64
	got, prevGot   uint64
	loss           float64
	samples        int
}

const lossSamplePackets = 32

func (l *lossEstimator) received(pn uint64) {
	l.got++
	if pn > l.maxPN {
		l.maxPN = pn
	}
}

func (l *lossEstimator) update() {
	expected := l.maxPN - l.prevMax
	if expected < lossSamplePackets {
		return
	}
	got := l.got - l.prevGot
	s := 1 - float64(got)/float64(expected)
	s = min(max(s, 0), 1)
	if l.samples == 0 {
		l.loss = s
	} else {
		l.loss += (s - l.loss) / 4
	}
	l.samples++
	l.prevMax, l.prevGot = l.maxPN, l.got
}
