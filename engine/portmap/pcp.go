package portmap

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"time"
)

// PCP (RFC 6887) constants.
const (
	pcpVersion     = 2
	pcpOpMap       = 1
	pcpHeaderLen   = 24
	pcpMapLen      = 36
	pcpResponseBit = 0x80
	protoUDP       = 17
)

var pcpResults = map[byte]string{
	1: "UNSUPP_VERSION", 2: "NOT_AUTHORIZED", 3: "MALFORMED_REQUEST", 4: "UNSUPP_OPCODE",
	5: "UNSUPP_OPTION", 6: "MALFORMED_OPTION", 7: "NETWORK_FAILURE", 8: "NO_RESOURCES",
	9: "UNSUPP_PROTOCOL", 10: "USER_EX_QUOTA", 11: "CANNOT_PROVIDE_EXTERNAL",
	12: "ADDRESS_MISMATCH", 13: "EXCESSIVE_REMOTE_PEERS",
}

// pcpMapRequest encodes a MAP request for UDP: client is this host's address
// (as the gateway sees the request come from), lifetime 0 deletes.
func pcpMapRequest(nonce [12]byte, client netip.Addr, internal, external uint16, lifetime uint32) []byte {
	b := make([]byte, 0, pcpHeaderLen+pcpMapLen)
	b = append(b, pcpVersion, pcpOpMap, 0, 0)
	b = binary.BigEndian.AppendUint32(b, lifetime)
	ip := client.As16()
	b = append(b, ip[:]...)
	b = append(b, nonce[:]...)
	b = append(b, protoUDP, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, internal)
	b = binary.BigEndian.AppendUint16(b, external)
	var any4 [16]byte // ::ffff:0.0.0.0: no preference for the external address
	any4[10], any4[11] = 0xff, 0xff
	return append(b, any4[:]...)
}

// pcpResponse is a decoded PCP MAP response.
type pcpResponse struct {
	result   byte
	lifetime uint32
	epoch    uint32
	nonce    [12]byte
	proto    byte
	internal uint16
	external netip.AddrPort
}

// parsePCPResponse decodes a PCP MAP response. It checks every length first
// and never panics. A NAT-PMP gateway answers a PCP request with a NAT-PMP
// "unsupported version" message (version 0): that is a *ResultError. Every
// error is a drop (a *dropError) with its reason.
func parsePCPResponse(b []byte) (pcpResponse, error) {
	var r pcpResponse
	if len(b) < 4 {
		return r, droppedf(DropShort, "%w: pcp: %d bytes", ErrMalformed, len(b))
	}
	if b[0] == 0 && b[1] >= 128 {
		// NAT-PMP's answer: version 0, opcode 128+n, result 1 = unsupported version.
		return r, dropped(DropResult, &ResultError{Protocol: PCP, Code: 1, Text: "UNSUPP_VERSION (a NAT-PMP gateway)"})
	}
	switch {
	case len(b) > maxDatagram:
		return r, droppedf(DropLong, "%w: pcp: %d bytes", ErrMalformed, len(b))
	case len(b) < pcpHeaderLen:
		return r, droppedf(DropShort, "%w: pcp: %d bytes", ErrMalformed, len(b))
	case b[0] != pcpVersion:
		return r, droppedf(DropVersion, "%w: pcp: version %d", ErrMalformed, b[0])
	case len(b)%4 != 0:
		return r, droppedf(DropMalformed, "%w: pcp: %d bytes, not a multiple of 4", ErrMalformed, len(b))
	case b[1]&pcpResponseBit == 0:
		return r, dropped(DropOpcode, errNotMine) // a request (ours reflected, or another client's)
	case b[1]&^pcpResponseBit != pcpOpMap:
		return r, dropped(DropOpcode, errNotMine)
	}
	r.result = b[3]
	r.lifetime = binary.BigEndian.Uint32(b[4:8])
	r.epoch = binary.BigEndian.Uint32(b[8:12])
	if len(b) < pcpHeaderLen+pcpMapLen {
		if r.result != 0 {
			return r, dropped(DropResult, pcpError(r.result))
		}
		return r, droppedf(DropShort, "%w: pcp: MAP response of %d bytes", ErrMalformed, len(b))
	}
	p := b[pcpHeaderLen:]
	copy(r.nonce[:], p[:12])
	r.proto = p[12]
	r.internal = binary.BigEndian.Uint16(p[16:18])
	ip := netip.AddrFrom16([16]byte(p[20:36])).Unmap()
	r.external = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(p[18:20]))
	return r, nil
}

func pcpError(code byte) error {
	text, ok := pcpResults[code]
	if !ok {
		text = "unknown result"
	}
	return &ResultError{Protocol: PCP, Code: int(code), Text: text}
}

// pcpClient maps ports with PCP.
type pcpClient struct {
	cfg Config
	env *env
}

func (c *pcpClient) proto() Protocol { return PCP }

func (c *pcpClient) mapPort(ctx context.Context, gw netip.Addr, internal uint16, prev *Mapping) (Mapping, error) {
	nonce, suggest := [12]byte{}, internal
	if prev != nil {
		nonce, suggest = prev.nonce, prev.External.Port()
	} else {
		_, _ = rand.Read(nonce[:])
	}
	return c.do(ctx, gw, nonce, internal, suggest, uint32(c.cfg.Lifetime/time.Second))
}

func (c *pcpClient) unmap(ctx context.Context, m Mapping) error {
	_, err := c.do(ctx, m.Gateway, m.nonce, m.Internal.Port(), 0, 0)
	return err
}

func (c *pcpClient) do(ctx context.Context, gw netip.Addr, nonce [12]byte, internal, suggest uint16, lifetime uint32) (Mapping, error) {
	s, err := dialGateway(ctx, c.cfg, c.env, gw, c.cfg.pcpPort)
	if err != nil {
		return Mapping{}, err
	}
	defer s.close()
	req := pcpMapRequest(nonce, s.local, internal, suggest, lifetime)
	var m Mapping
	err = s.exchange(ctx, req, func(b []byte) error {
		r, err := pcpMapAnswer(b, nonce, internal, lifetime)
		if err != nil {
			return err
		}
		c.env.observeEpoch(gw, r.epoch, PCP)
		m = Mapping{
			Protocol: PCP,
			External: r.external,
			Internal: netip.AddrPortFrom(s.local, internal),
			Gateway:  gw,
			Lifetime: time.Duration(r.lifetime) * time.Second,
			nonce:    nonce,
		}
		return nil
	})
	return m, err
}

// pcpMapAnswer decodes b as the answer to the MAP request with nonce for
// the internal port that asked for lifetime (0: a deletion): a drop
// otherwise (DropNonce for another request's answer, DropResult for a
// refusal, DropMalformed for a mapping granted for no time).
func pcpMapAnswer(b []byte, nonce [12]byte, internal uint16, lifetime uint32) (pcpResponse, error) {
	r, err := parsePCPResponse(b)
	switch {
	case err != nil:
		return r, err
	case r.nonce != nonce || r.proto != protoUDP || r.internal != internal:
		return r, dropped(DropNonce, errNotMine)
	case r.result != 0:
		return r, dropped(DropResult, pcpError(r.result))
	case lifetime != 0 && r.lifetime == 0:
		return r, droppedf(DropMalformed, "%w: pcp: lifetime 0 on a successful MAP", ErrMalformed)
	}
	return r, nil
}
