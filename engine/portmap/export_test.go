package portmap

import (
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
)

// WithPorts points cfg at a gateway's PCP/NAT-PMP and SSDP ports other than
// 5351 and 1900 (a fake gateway on the loopback).
func WithPorts(cfg Config, pcp, ssdp uint16) Config {
	cfg.pcpPort, cfg.ssdpPort = pcp, ssdp
	return cfg
}

// WithAnnounceJitter sets the most an announcement's renewal waits
// (negative: no wait).
func WithAnnounceJitter(cfg Config, d time.Duration) Config {
	cfg.announceJitter = d
	return cfg
}

// Decoders, for the fuzz targets.
var (
	ParsePCPResponse    = parsePCPResponse
	ParseNATPMPResponse = parseNATPMPResponse
	ParseSSDPResponse   = parseSSDPResponse
	ParseRouteTable     = parseRouteTable
	DecodeDescription   = decodeDescription
	ParseAnnouncement   = parseAnnouncement
)

// DropOf reports the drop reason err carries, if any.
func DropOf(err error) (DropReason, bool) {
	var c counters
	return c.countDrop(err)
}

// PCPMapAnswer decodes b as the answer to a MAP request with nonce for
// internal asking for lifetime.
func PCPMapAnswer(b []byte, nonce [12]byte, internal uint16, lifetime uint32) error {
	_, err := pcpMapAnswer(b, nonce, internal, lifetime)
	return err
}

// NATPMPMapAnswer decodes b as the answer to a NAT-PMP mapping request.
func NATPMPMapAnswer(b []byte, internal uint16, lifetime uint32) error {
	_, err := natpmpMapAnswer(b, internal, lifetime)
	return err
}

// Announced feeds one datagram to a fresh Mapper environment's
// announcement handler, from from, with the gateway gw on port 5351, and
// returns whether it called for a renewal and the counters after.
func Announced(b []byte, from netip.AddrPort, gw netip.Addr) (bool, Stats) {
	e := &env{log: hclog.NewNullLogger()}
	ok := e.announced(b, from, gw, 5351)
	return ok, e.st.snapshot()
}

// EpochLost reports whether a gateway that said prev and, elapsed later,
// says now lost its state.
func EpochLost(prev uint32, elapsed time.Duration, now uint32) bool {
	var c epochClock
	gw := netip.MustParseAddr("10.1.0.1")
	t := time.Now()
	c.observe(gw, prev, t)
	return c.observe(gw, now, t.Add(elapsed))
}
