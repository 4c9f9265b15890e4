package portmap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/ipv4"
)

// Unsolicited announcements. A gateway that restarts (and so lost its
// mappings) or whose external address changed multicasts, from its port
// 5351 to 224.0.0.1:5350, a PCP ANNOUNCE response (RFC 6887 §14.1.3) or a
// NAT-PMP external address answer (RFC 6886 §3.2.1). A Mapper listens for
// them once it knows its gateway and renews its mapping at once, instead of
// at half its lifetime, so a router restart costs seconds of mapping, not
// up to an hour.

const (
	// announcePort is where announcements go (the client port of RFC 6887
	// and RFC 6886).
	announcePort = 5350
	// pcpOpAnnounce is PCP's ANNOUNCE opcode.
	pcpOpAnnounce = 0
	// defaultAnnounceJitter bounds the random wait between an
	// announcement and the renewal it brings, so that the hosts of a LAN,
	// which all heard it, do not all ask at the same instant (RFC 6887
	// §14.1.3 spreads them over 5 s).
	defaultAnnounceJitter = 5 * time.Second
	// announceHoldoff is the least time between two renewals brought by
	// announcements: a flood of them (a gateway's repeats, or another LAN
	// host forging the gateway's address) costs one request per holdoff.
	announceHoldoff = 5 * time.Second
)

// allHosts is the group announcements are sent to.
var allHosts = netip.MustParseAddr("224.0.0.1")

// ListenShared opens a UDP socket that other sockets on this machine may
// bind to the same port too (SO_REUSEADDR, and SO_REUSEPORT where it
// exists): each of them gets a copy of every multicast datagram. It is the
// default of Config.ListenAnnounce; a test that opens the announcement
// socket in another network namespace calls it there.
func ListenShared(network, address string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: shareSocket}
	return lc.ListenPacket(context.Background(), network, address)
}

// announcement is a decoded unsolicited announcement.
type announcement struct {
	proto Protocol
	epoch uint32
}

// parseAnnouncement decodes a datagram heard on the announcement socket:
// a PCP ANNOUNCE response or a NAT-PMP external address answer, both with
// a success result. It checks every length first and never panics; every
// error is a drop (a *dropError) with its reason.
func parseAnnouncement(b []byte) (announcement, error) {
	switch {
	case len(b) > maxDatagram:
		return announcement{}, droppedf(DropLong, "%w: announcement of %d bytes", ErrMalformed, len(b))
	case len(b) < 2:
		return announcement{}, droppedf(DropShort, "%w: announcement of %d bytes", ErrMalformed, len(b))
	}
	switch b[0] {
	case pcpVersion:
		switch {
		case len(b) < pcpHeaderLen:
			return announcement{}, droppedf(DropShort, "%w: pcp announcement of %d bytes", ErrMalformed, len(b))
		case len(b)%4 != 0:
			return announcement{}, droppedf(DropMalformed, "%w: pcp announcement of %d bytes, not a multiple of 4", ErrMalformed, len(b))
		case b[1] != pcpResponseBit|pcpOpAnnounce:
			return announcement{}, droppedf(DropOpcode, "%w: pcp opcode %#x on the announcement port", errNotMine, b[1])
		case b[3] != 0:
			return announcement{}, dropped(DropResult, pcpError(b[3]))
		}
		return announcement{proto: PCP, epoch: binary.BigEndian.Uint32(b[8:12])}, nil
	case 0:
		switch {
		case len(b) < 12:
			return announcement{}, droppedf(DropShort, "%w: nat-pmp announcement of %d bytes", ErrMalformed, len(b))
		case b[1] != 128+natpmpOpAddr:
			return announcement{}, droppedf(DropOpcode, "%w: nat-pmp opcode %d on the announcement port", errNotMine, b[1])
		case binary.BigEndian.Uint16(b[2:4]) != 0:
			return announcement{}, dropped(DropResult, natpmpError(binary.BigEndian.Uint16(b[2:4])))
		}
		return announcement{proto: NATPMP, epoch: binary.BigEndian.Uint32(b[4:8])}, nil
	}
	return announcement{}, droppedf(DropVersion, "%w: version %d on the announcement port", ErrMalformed, b[0])
}

// errNoGatewayYet drops what the announcement socket hears before the
// Mapper knows its gateway.
var errNoGatewayYet = errors.New("skein/portmap: announcement before a gateway is known")

// env is what a Mapper's goroutines and protocol clients share: the
// counters, the gateway's epoch, the logger.
type env struct {
	st    counters
	epoch epochClock
	log   hclog.Logger
}

// observeEpoch checks an epoch the gateway sent in an answer or an
// announcement (epochClock.observe) and counts a loss of state.
func (e *env) observeEpoch(gw netip.Addr, epoch uint32, p Protocol) {
	if e.epoch.observe(gw, epoch, time.Now()) {
		e.st.resets.Add(1)
		e.log.Info("the gateway lost its mappings (its epoch went back)", "gateway", gw, "protocol", p, "epoch", epoch)
	}
}

// announced takes one datagram heard on the announcement socket, from
// from, while the gateway is gw (invalid: none known yet) and answers on
// port gwPort: it counts it (Stats.Announcements or a drop) and reports
// whether it is a valid announcement, which calls for a renewal. It never
// panics.
func (e *env) announced(b []byte, from netip.AddrPort, gw netip.Addr, gwPort uint16) bool {
	a, err := parseAnnouncement(b)
	if err == nil {
		switch {
		case !gw.IsValid():
			err = dropped(DropForeign, errNoGatewayYet)
		case from.Addr().Unmap() != gw || from.Port() != gwPort:
			err = droppedf(DropForeign, "skein/portmap: announcement from %v, not the gateway %v", from, netip.AddrPortFrom(gw, gwPort))
		}
	}
	if err != nil {
		reason, _ := e.st.countDrop(err)
		e.log.Debug("announcement dropped", "from", from, "reason", reason, "error", err)
		return false
	}
	e.st.announcements.Add(1)
	e.observeEpoch(gw, a.epoch, a.proto)
	e.log.Debug("gateway announcement", "protocol", a.proto, "epoch", a.epoch)
	return true
}

// listenAnnouncements opens the announcement socket for gateway gw, or
// returns nil (logged) when it cannot or should not.
func (m *Mapper) listenAnnouncements(gw netip.Addr) net.PacketConn {
	listen := m.cfg.ListenAnnounce
	if listen == nil {
		if gw.IsLoopback() {
			return nil // a gateway on the loopback (tests): no real port 5350
		}
		listen = ListenShared
	}
	pc, err := listen("udp4", fmt.Sprintf("0.0.0.0:%d", announcePort))
	if err != nil {
		m.log.Warn("not listening for gateway announcements", "error", err)
		return nil
	}
	if !gw.IsLoopback() {
		// Linux delivers 224.0.0.1 to every socket on the port; other
		// systems want the socket to join it. The kernel picks the
		// interface toward the group.
		if err := ipv4.NewPacketConn(pc).JoinGroup(nil, &net.UDPAddr{IP: allHosts.AsSlice()}); err != nil {
			m.log.Debug("joining 224.0.0.1", "error", err)
		}
	}
	return pc
}

// readAnnouncements reads pc until it is closed and wakes the Mapper's
// goroutine for each valid announcement from the gateway (at most once
// per announceHoldoff).
func (m *Mapper) readAnnouncements(pc net.PacketConn) {
	defer m.wg.Done()
	buf := make([]byte, maxDatagram+1)
	var last time.Time
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			m.log.Debug("announcement socket", "error", err)
			if !sleep(m.ctx, 100*time.Millisecond) { // a persistent error: no busy loop
				return
			}
			continue
		}
		ua, _ := from.(*net.UDPAddr)
		var src netip.AddrPort
		if ua != nil {
			src = ua.AddrPort()
		}
		if !m.env.announced(buf[:n], src, m.gateway(), m.cfg.pcpPort) {
			continue
		}
		if now := time.Now(); last.IsZero() || now.Sub(last) >= announceHoldoff {
			last = now
			select {
			case m.wake <- struct{}{}:
			default: // a wake-up is pending already
			}
		}
	}
}

// jitter is a random wait of up to Config's announce jitter.
func (m *Mapper) jitter() time.Duration {
	j := m.cfg.announceJitter
	if j <= 0 {
		return 0
	}
	return rand.N(j)
}
