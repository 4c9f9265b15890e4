package portmap

import (
	"context"
	"encoding/binary"
	"net/netip"
	"time"
)

// NAT-PMP (RFC 6886) constants.
const (
	natpmpOpAddr   = 0
	natpmpOpMapUDP = 1
)

var natpmpResults = map[uint16]string{
	1: "unsupported version", 2: "not authorized or refused", 3: "network failure",
	4: "out of resources", 5: "unsupported opcode",
}

// natpmpResponse is a decoded NAT-PMP answer: an external address (op 128)
// or a UDP mapping (op 129).
type natpmpResponse struct {
	op       byte
	result   uint16
	epoch    uint32
	addr     netip.Addr // op 128
	internal uint16     // op 129
	external uint16     // op 129
	lifetime uint32     // op 129
}

// parseNATPMPResponse decodes a NAT-PMP answer, checking its length first.
// It never panics. An answer with an error result is returned without
// error (the caller knows which request it answers); every error is a drop
// (a *dropError) with its reason.
func parseNATPMPResponse(b []byte) (natpmpResponse, error) {
	var r natpmpResponse
	switch {
	case len(b) > maxDatagram:
		return r, droppedf(DropLong, "%w: nat-pmp: %d bytes", ErrMalformed, len(b))
	case len(b) < 8:
		return r, droppedf(DropShort, "%w: nat-pmp: %d bytes", ErrMalformed, len(b))
	case b[0] != 0:
		return r, droppedf(DropVersion, "%w: nat-pmp: version %d", ErrMalformed, b[0])
	case b[1] < 128:
		return r, dropped(DropOpcode, errNotMine) // a request
	}
	r.op = b[1] - 128
	r.result = binary.BigEndian.Uint16(b[2:4])
	r.epoch = binary.BigEndian.Uint32(b[4:8])
	if r.result != 0 {
		return r, nil
	}
	switch r.op {
	case natpmpOpAddr:
		if len(b) < 12 {
			return r, droppedf(DropShort, "%w: nat-pmp: address answer of %d bytes", ErrMalformed, len(b))
		}
		r.addr = netip.AddrFrom4([4]byte(b[8:12]))
	case natpmpOpMapUDP:
		if len(b) < 16 {
			return r, droppedf(DropShort, "%w: nat-pmp: mapping answer of %d bytes", ErrMalformed, len(b))
		}
		r.internal = binary.BigEndian.Uint16(b[8:10])
		r.external = binary.BigEndian.Uint16(b[10:12])
		r.lifetime = binary.BigEndian.Uint32(b[12:16])
	}
	return r, nil
}

func natpmpError(code uint16) error {
	text, ok := natpmpResults[code]
	if !ok {
		text = "unknown result"
	}
	return &ResultError{Protocol: NATPMP, Code: int(code), Text: text}
}

func natpmpMapRequest(internal, external uint16, lifetime uint32) []byte {
	b := []byte{0, natpmpOpMapUDP, 0, 0}
	b = binary.BigEndian.AppendUint16(b, internal)
	b = binary.BigEndian.AppendUint16(b, external)
	return binary.BigEndian.AppendUint32(b, lifetime)
}

// natpmpClient maps ports with NAT-PMP.
type natpmpClient struct {
	cfg Config
	env *env
}

func (c *natpmpClient) proto() Protocol { return NATPMP }

func (c *natpmpClient) mapPort(ctx context.Context, gw netip.Addr, internal uint16, prev *Mapping) (Mapping, error) {
	suggest := internal
	if prev != nil {
		suggest = prev.External.Port()
	}
	s, err := dialGateway(ctx, c.cfg, c.env, gw, c.cfg.pcpPort)
	if err != nil {
		return Mapping{}, err
	}
	defer s.close()
	var ext netip.Addr
	err = s.exchange(ctx, []byte{0, natpmpOpAddr}, func(b []byte) error {
		r, err := natpmpAddrAnswer(b)
		if err != nil {
			return err
		}
		c.env.observeEpoch(gw, r.epoch, NATPMP)
		ext = r.addr
		return nil
	})
	if err != nil {
		return Mapping{}, err
	}
	var m Mapping
	lifetime := uint32(c.cfg.Lifetime / time.Second)
	err = s.exchange(ctx, natpmpMapRequest(internal, suggest, lifetime), func(b []byte) error {
		r, err := natpmpMapAnswer(b, internal, lifetime)
		if err != nil {
			return err
		}
		c.env.observeEpoch(gw, r.epoch, NATPMP)
		m = Mapping{
			Protocol: NATPMP,
			External: netip.AddrPortFrom(ext, r.external),
			Internal: netip.AddrPortFrom(s.local, internal),
			Gateway:  gw,
			Lifetime: time.Duration(r.lifetime) * time.Second,
		}
		return nil
	})
	return m, err
}

func (c *natpmpClient) unmap(ctx context.Context, m Mapping) error {
	s, err := dialGateway(ctx, c.cfg, c.env, m.Gateway, c.cfg.pcpPort)
	if err != nil {
		return err
	}
	defer s.close()
	internal := m.Internal.Port()
	return s.exchange(ctx, natpmpMapRequest(internal, 0, 0), func(b []byte) error {
		_, err := natpmpMapAnswer(b, internal, 0)
		return err
	})
}

// natpmpAddrAnswer decodes b as the answer to an external address
// request: a drop otherwise (DropResult for a refusal).
func natpmpAddrAnswer(b []byte) (natpmpResponse, error) {
	r, err := parseNATPMPResponse(b)
	switch {
	case err != nil:
		return r, err
	case r.op != natpmpOpAddr:
		return r, dropped(DropOpcode, errNotMine)
	case r.result != 0:
		return r, dropped(DropResult, natpmpError(r.result))
	}
	return r, nil
}

// natpmpMapAnswer decodes b as the answer to a mapping request (or a
// deletion: lifetime 0) for the internal port: a drop otherwise
// (DropNonce for another port's answer, DropResult for a refusal,
// DropMalformed for a mapping granted for no time or to port 0).
func natpmpMapAnswer(b []byte, internal uint16, lifetime uint32) (natpmpResponse, error) {
	r, err := parseNATPMPResponse(b)
	switch {
	case err != nil:
		return r, err
	case r.op != natpmpOpMapUDP:
		return r, dropped(DropOpcode, errNotMine)
	case r.result != 0:
		return r, dropped(DropResult, natpmpError(r.result))
	case r.internal != internal:
		return r, dropped(DropNonce, errNotMine)
	case lifetime != 0 && (r.lifetime == 0 || r.external == 0):
		return r, droppedf(DropMalformed, "%w: nat-pmp: mapping to port %d for %d s", ErrMalformed, r.external, r.lifetime)
	}
	return r, nil
}
