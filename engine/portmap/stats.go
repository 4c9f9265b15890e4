package portmap

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// DropReason says why a Mapper dropped a datagram from the gateway: an
// answer on the PCP/NAT-PMP socket, an announcement (Config.ListenAnnounce)
// or an SSDP answer.
type DropReason int

// Drop reasons (Stats.Drops).
const (
	// DropShort: shorter than its header or than its opcode's body.
	DropShort DropReason = iota
	// DropLong: longer than a PCP message may be (1100 bytes), or than
	// the buffer of an SSDP answer.
	DropLong
	// DropVersion: neither the version asked (PCP's 2, NAT-PMP's 0) nor
	// an answer the Mapper understands.
	DropVersion
	// DropOpcode: a request (the Mapper's own reflected, or another
	// client's), or the answer to another opcode.
	DropOpcode
	// DropNonce: the answer to another request: PCP's nonce, protocol or
	// internal port, or NAT-PMP's internal port, is not the one asked.
	DropNonce
	// DropForeign: not from the gateway (its address and port 5351 for an
	// announcement, its address for an SSDP answer), or before any
	// gateway was known.
	DropForeign
	// DropResult: an error result code: the gateway refused (the attempt
	// ends with a *ResultError).
	DropResult
	// DropMalformed: a field that cannot be (a PCP length that is no
	// multiple of 4, a success with lifetime or port 0, an SSDP answer
	// that is no HTTP 200 with a LOCATION on the gateway).
	DropMalformed
	// NumDropReasons is the number of drop reasons.
	NumDropReasons
)

// String names the reason as logs and Stats print it ("short", "nonce", ...).
func (r DropReason) String() string {
	switch r {
	case DropShort:
		return "short"
	case DropLong:
		return "long"
	case DropVersion:
		return "version"
	case DropOpcode:
		return "opcode"
	case DropNonce:
		return "nonce"
	case DropForeign:
		return "foreign"
	case DropResult:
		return "result"
	case DropMalformed:
		return "malformed"
	default: // NumDropReasons and anything past it
		return fmt.Sprintf("DropReason(%d)", int(r))
	}
}

// Stats counts what a Mapper sent and received (Mapper.Stats, and
// Status.Stats).
type Stats struct {
	// Requests counts datagrams sent to the gateway's port 5351
	// (retransmissions included); Answers the answers taken from it.
	Requests, Answers uint64
	// Announcements counts the gateway's valid unsolicited announcements
	// (PCP ANNOUNCE, NAT-PMP's external address announcement) heard on
	// 224.0.0.1:5350.
	Announcements uint64
	// Mapped counts mappings made (the first, and each one made again
	// after every protocol was asked anew); Renewed the renewals that
	// succeeded; Lapsed the mappings lost because renewals failed.
	Mapped, Renewed, Lapsed uint64
	// GatewayResets counts the times the gateway's epoch showed it had
	// lost its mappings: it went back, or ran slower than this host's
	// clock (RFC 6887 §8.5, RFC 6886 §3.6).
	GatewayResets uint64
	// Remaps counts renewals made at once, not at half the lifetime,
	// because the gateway announced itself (and attempts made at once,
	// not after Config.Retry, when no mapping was in place). An epoch
	// that went back in an answer brings none: that answer is to a
	// mapping request, which made the mapping again.
	Remaps uint64
	// Drops counts the datagrams dropped, by reason.
	Drops [NumDropReasons]uint64
}

// Dropped is the number of datagrams dropped, every reason together.
func (s Stats) Dropped() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	return n
}

// counters are a Mapper's Stats, updated from its goroutines.
type counters struct {
	requests, answers, announcements atomic.Uint64
	mapped, renewed, lapsed          atomic.Uint64
	resets, remaps                   atomic.Uint64
	drops                            [NumDropReasons]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Requests: c.requests.Load(), Answers: c.answers.Load(), Announcements: c.announcements.Load(),
		Mapped: c.mapped.Load(), Renewed: c.renewed.Load(), Lapsed: c.lapsed.Load(),
		GatewayResets: c.resets.Load(), Remaps: c.remaps.Load(),
	}
	for i := range s.Drops {
		s.Drops[i] = c.drops[i].Load()
	}
	return s
}

// countDrop counts the drop err carries (a *dropError), if any, and
// returns its reason.
func (c *counters) countDrop(err error) (DropReason, bool) {
	var d *dropError
	if !errors.As(err, &d) || d.reason < 0 || d.reason >= NumDropReasons {
		return 0, false
	}
	c.drops[d.reason].Add(1)
	return d.reason, true
}

// dropError is a datagram the Mapper drops, and why (Stats.Drops). It
// unwraps to the error that describes it (ErrMalformed, a *ResultError,
// errNotMine).
type dropError struct {
	reason DropReason
	err    error
}

func (e *dropError) Error() string { return e.err.Error() }
func (e *dropError) Unwrap() error { return e.err }

// dropped wraps err with the reason its datagram is dropped.
func dropped(r DropReason, err error) error { return &dropError{reason: r, err: err} }

// droppedf is dropped with a formatted error.
func droppedf(r DropReason, format string, args ...any) error {
	return &dropError{reason: r, err: fmt.Errorf(format, args...)}
}
