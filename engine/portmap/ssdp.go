package portmap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"time"
)

// ssdpGroup is SSDP's multicast address.
var ssdpGroup = netip.MustParseAddr("239.255.255.250")

// The search targets a Mapper asks for: an IGD of either version.
var ssdpTargets = []string{
	"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
	"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
}

func ssdpSearch(target string) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\n" +
		"HOST: 239.255.255.250:1900\r\n" +
		"MAN: \"ssdp:discover\"\r\n" +
		"MX: 1\r\n" +
		"ST: " + target + "\r\n\r\n")
}

// parseSSDPResponse returns the device description URL (LOCATION) of an
// SSDP answer, which must be an HTTP URL whose host is the literal address
// gw (a Mapper asks its gateway only, and never resolves a name a LAN
// host handed it). It never panics.
func parseSSDPResponse(b []byte, gw netip.Addr) (*url.URL, error) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: ssdp: %w", ErrMalformed, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: ssdp: status %d", ErrMalformed, resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: ssdp: location %q: %w", ErrMalformed, loc, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%w: ssdp: location %q is not http", ErrMalformed, loc)
	}
	host, err := netip.ParseAddr(u.Hostname())
	if err != nil || host.Unmap() != gw {
		return nil, fmt.Errorf("%w: ssdp: location %q is not on the gateway %v", ErrMalformed, loc, gw)
	}
	return u, nil
}

// discover finds the gateway's device description URL with SSDP: M-SEARCH
// sent to the gateway itself and to the multicast group, answers taken from
// the gateway only, until ctx ends.
func discover(ctx context.Context, cfg Config, e *env, gw netip.Addr) (*url.URL, error) {
	pc, err := cfg.ListenPacket("udp4", ":0")
	if err != nil {
		return nil, fmt.Errorf("skein/portmap: ssdp socket: %w", err)
	}
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer stop()
	to := []netip.AddrPort{netip.AddrPortFrom(gw, cfg.ssdpPort), netip.AddrPortFrom(ssdpGroup, 1900)}
	if gw.IsLoopback() {
		to = to[:1] // a gateway on the loopback (tests): no multicast onto the real LAN
	}
	send := func() error {
		for _, st := range ssdpTargets {
			msg := ssdpSearch(st)
			for _, to := range to {
				if _, err := pc.WriteTo(msg, net.UDPAddrFromAddrPort(to)); err != nil && to.Addr() == gw {
					return fmt.Errorf("skein/portmap: ssdp search: %w", err)
				}
			}
		}
		return nil
	}
	if err := send(); err != nil {
		return nil, err
	}
	buf := make([]byte, 2048)
	resend := time.Now().Add(300 * time.Millisecond)
	var last error
	for {
		_ = pc.SetReadDeadline(resend)
		n, from, err := pc.ReadFrom(buf)
		if ctx.Err() != nil {
			if last == nil {
				last = ErrNoIGD
			}
			return nil, fmt.Errorf("%w: %w", ErrTimeout, last)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if err := send(); err != nil {
				return nil, err
			}
			resend = time.Now().Add(600 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("skein/portmap: ssdp: %w", err)
		}
		ua, ok := from.(*net.UDPAddr)
		switch {
		case !ok || ua.AddrPort().Addr().Unmap() != gw:
			e.st.drops[DropForeign].Add(1)
			continue // not the gateway
		case n == len(buf):
			e.st.drops[DropLong].Add(1)
			continue // too long to be an SSDP answer
		}
		u, err := parseSSDPResponse(buf[:n], gw)
		if err != nil {
			e.st.drops[DropMalformed].Add(1)
			e.log.Debug("ssdp answer dropped", "error", err)
			last = err
			continue
		}
		return u, nil
	}
}
