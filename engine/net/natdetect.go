package net

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// NAT-type errors.
var (
	// ErrNotServer: the call is for a server host (Config.Accept).
	ErrNotServer = errors.New("skein/net: not a server")
	// ErrTooManyProbeConns: a server takes at most three alternate
	// endpoints for NAT probes.
	ErrTooManyProbeConns = errors.New("skein/net: too many NAT probe endpoints")
	// ErrNATCheckBusy: another DetectNAT is running on this host.
	ErrNATCheckBusy = errors.New("skein/net: a NAT check is already running")
	// ErrNoNATReply: the server did not answer the first NAT probe (it
	// may be an older server, or the path lost every try).
	ErrNoNATReply = errors.New("skein/net: no answer to the NAT probe")

	errNoBirthdayListen = errors.New("skein/net: no way to open extra sockets (PunchConfig.BirthdayListen)")
)

// natTries is how many times a probe is sent before its answer is taken
// as missing.
const natTries = 3

// DetectNAT classifies the NAT this client is behind, from the server's
// view (RFC 5780-style): it asks the server where it sees the client's
// socket from, at the server's main address and at its alternate ones (if
// the server has any: AddProbeConn), asks for answers from another address
// or port (filtering), and sends a datagram to its own public address
// (hairpinning). It takes a few round trips, up to about two seconds when
// answers are filtered out, and sends a few dozen small datagrams. A
// client on the TCP fallback is NATUDPBlocked at once. It needs a
// connected client (Dial); one check runs at a time.
func (h *Host) DetectNAT(ctx context.Context) (NATReport, error) {
	if h.cfg.Accept {
		return NATReport{}, fmt.Errorf("detect NAT: a server is behind no NAT it can check: %w", errors.ErrUnsupported)
	}
	l := h.link(ServerID)
	if l == nil {
		return NATReport{}, h.noLink("detect NAT", ServerID)
	}
	srv, _ := h.RemoteAddr(ServerID)
	local := h.conn.LocalAddr()
	if IsTCPAddr(srv) {
		return NATReport{Type: NATUDPBlocked}, nil
	}
	h.natMu.Lock()
	if h.natBusy {
		h.natMu.Unlock()
		return NATReport{}, ErrNATCheckBusy
	}
	h.natBusy = true
	h.natMu.Unlock()
	defer func() {
		h.natMu.Lock()
		h.natBusy, h.natWait = false, nil
		h.natMu.Unlock()
	}()
	r := NATReport{Local: local}
	first, ok, err := h.natAsk(ctx, l, srv, 0, natTries)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, fmt.Errorf("detect NAT via %v: %w", srv, ErrNoNATReply)
	}
	r.Mapped = first.msg.mapped
	if isOwnAddr(local, r.Mapped) {
		r.Type, r.Mapping, r.Filtering = NATPublic, EndpointIndependent, EndpointIndependent
		return r, nil
	}
	// The server's endpoints: an unspecified address is the main one's.
	eps := make([]netip.AddrPort, 0, len(first.msg.endpoints))
	for _, e := range first.msg.endpoints {
		if e.Addr().IsUnspecified() {
			e = netip.AddrPortFrom(srv.Addr(), e.Port())
		}
		if e.IsValid() && e != srv {
			eps = append(eps, e)
		}
	}
	find := func(from netip.AddrPort, sameAddr, samePort bool) (netip.AddrPort, bool) {
		for _, e := range eps {
			if (e.Addr() == from.Addr()) == sameAddr && (e.Port() == from.Port()) == samePort {
				return e, true
			}
		}
		return netip.AddrPort{}, false
	}
	// Filtering first (RFC 5780 4.4): before this socket has sent anything
	// to the alternate endpoints, whose answers must not find a mapping
	// opened towards them.
	if len(eps) > 0 {
		r.Filtering = AddressPortDependent
		if _, can := find(srv, false, false); can {
			if _, got, err := h.natAsk(ctx, l, srv, natChangeAddr|natChangePort, natTries-1); err != nil {
				return r, err
			} else if got {
				r.Filtering = EndpointIndependent
			}
		}
		if _, can := find(srv, true, false); can && r.Filtering == AddressPortDependent {
			if _, got, err := h.natAsk(ctx, l, srv, natChangePort, natTries-1); err != nil {
				return r, err
			} else if got {
				r.Filtering = AddressDependent
			}
		}
	}
	// Mapping (RFC 5780 4.3): the same public address seen from another
	// server address (or port) means endpoint-independent mapping.
	if alt, ok := find(srv, false, true); ok || len(eps) > 0 {
		if !ok {
			alt = eps[0]
		}
		second, got, err := h.natAsk(ctx, l, alt, 0, natTries)
		if err != nil {
			return r, err
		}
		switch {
		case !got:
			// The alternate endpoint never answered: its mapping cannot
			// be told; leave it unknown.
		case second.msg.mapped == r.Mapped:
			r.Mapping = EndpointIndependent
		default:
			r.Mapping = AddressPortDependent
			if third, ok := find(alt, true, false); ok && alt.Addr() != srv.Addr() {
				if m3, got, err := h.natAsk(ctx, l, third, 0, natTries); err != nil {
					return r, err
				} else if got && m3.msg.mapped == second.msg.mapped {
					r.Mapping = AddressDependent
				}
			}
		}
	}
	switch r.Mapping {
	case EndpointIndependent:
		r.Type = NATEndpointIndependent
	case AddressDependent, AddressPortDependent:
		r.Type = NATSymmetric
	case BehaviorUnknown, numBehaviors:
		// No alternate endpoint answered: the type stays unknown.
	}
	hp, err := h.natHairpin(ctx, l, r.Mapped)
	if err != nil {
		return r, err
	}
	r.Hairpin = hp
	h.log.Debug("NAT type", "report", r.String())
	return r, nil
}

// natAsk sends a NAT probe with flags to the server endpoint to (tries
// times, until an answer) and returns the answer; ok false when none came.
func (h *Host) natAsk(ctx context.Context, l *link, to netip.AddrPort, flags byte, tries int) (res natResult, ok bool, err error) {
	w := &natWaiter{token: newToken(), ch: make(chan natResult, 1)}
	h.natMu.Lock()
	h.natWait = w
	h.natMu.Unlock()
	var body [natBodySize]byte
	appendNATBody(body[:0], natMsg{kind: natRequest, token: w.token, flags: flags})
	for range tries {
		l.mu.Lock()
		wait := natRetry(l.rtt.srtt)
		b, pn := l.startProbeDatagram()
		b = appendFrame(b, frameNAT, body[:])
		p := directProbe{to: to, b: l.sealDatagram(b, pn)}
		l.mu.Unlock()
		h.writeProbes(l, []directProbe{p})
		if res, ok, err = h.natAwait(ctx, w, wait); ok || err != nil {
			return res, ok, err
		}
	}
	return res, false, nil
}

// natAwait waits up to wait for w's answer; ok false when none came in
// time, err set when ctx ended or the host closed.
func (h *Host) natAwait(ctx context.Context, w *natWaiter, wait time.Duration) (natResult, bool, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case res := <-w.ch:
		return res, true, nil
	case <-t.C:
		return natResult{}, false, nil
	case <-ctx.Done():
		return natResult{}, false, ctx.Err()
	case <-h.done:
		return natResult{}, false, ErrHostClosed
	}
}

// natHairpin sends a hairpin datagram to the client's own public address
// and reports whether it came back.
func (h *Host) natHairpin(ctx context.Context, l *link, mapped netip.AddrPort) (bool, error) {
	w := &natWaiter{ch: make(chan natResult, 1)}
	rand.Read(w.hairpin[:])
	h.natMu.Lock()
	h.natWait = w
	h.natMu.Unlock()
	l.mu.Lock()
	wait := natRetry(l.rtt.srtt)
	l.mu.Unlock()
	for range natTries - 1 {
		b := append(getBuf(), kindHairpin)
		b = append(b, w.hairpin[:]...)
		h.writeProbes(l, []directProbe{{to: mapped, b: b}})
		if _, ok, err := h.natAwait(ctx, w, wait); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}
