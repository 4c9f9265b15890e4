package portmap

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
)

// wanConn is what a Mapper needs of a WAN connection service; the three
// service types goupnp generates all have these methods.
type wanConn interface {
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string, internalPort uint16, internalClient string, enabled bool, description string, leaseDuration uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
}

// UPnP error codes a Mapper acts on.
const (
	upnpConflict       = 718 // ConflictInMappingEntry: the external port is taken
	upnpOnlyPermanent  = 725 // OnlyPermanentLeasesSupported
	upnpSamePortNeeded = 724 // SamePortValuesRequired
)

// upnpClient maps ports with UPnP-IGD. It remembers the service it found,
// so renewals and the deletion skip discovery.
type upnpClient struct {
	cfg   Config
	env   *env
	http  *http.Client
	conn  wanConn
	local netip.Addr
	perm  bool // the router grants permanent leases only
}

func newUPnPClient(cfg Config, e *env) *upnpClient {
	tr := &http.Transport{
		DialContext:            cfg.DialContext,
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
	}
	return &upnpClient{cfg: cfg, env: e, http: &http.Client{
		Transport: limitBody{tr},
		Timeout:   2 * cfg.Timeout,
		// The router's own URLs only: no redirect elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// limitBody cuts every answer body at MaxBody bytes: the XML decoders
// then fail on a truncated document instead of reading without bound.
type limitBody struct{ rt http.RoundTripper }

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, MaxBody), resp.Body}
	return resp, nil
}

func (c *upnpClient) proto() Protocol { return UPnP }

// find discovers the gateway's IGD and picks its first WAN connection
// service: WANIPConnection:2, WANIPConnection:1, then WANPPPConnection:1.
func (c *upnpClient) find(ctx context.Context, gw netip.Addr) error {
	loc, err := discover(ctx, c.cfg, c.env, gw)
	if err != nil {
		return err
	}
	root, err := c.describe(ctx, loc)
	if err != nil {
		return err
	}
	c.conn = nil
	// The first WAN connection service whose control URL is on the
	// gateway itself: a description cannot send the mapper's requests
	// anywhere else.
	onGateway := func(sc *soap.SOAPClient) bool {
		a, err := netip.ParseAddr(sc.EndpointURL.Hostname())
		if err != nil || a.Unmap() != gw || sc.EndpointURL.Scheme != "http" {
			return false
		}
		sc.HTTPClient = *c.http
		return true
	}
	ip2, _ := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, loc)
	ip1, _ := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc)
	ppp, _ := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, loc)
	svcs := appendServices(appendServices(appendServices(nil, ip2), ip1), ppp)
	for _, s := range svcs {
		if onGateway(s.GetServiceClient().SOAPClient) {
			c.conn = s
			break
		}
	}
	if c.conn == nil {
		return fmt.Errorf("%w: %s has no WAN connection service on the gateway", ErrNoIGD, loc)
	}
	// The address this host reaches the router's HTTP server from is the
	// internal client to name (miniupnpd's secure mode insists).
	port, _ := strconv.Atoi(loc.Port())
	if port == 0 {
		port = 80
	}
	s, err := dialGateway(ctx, c.cfg, c.env, gw, uint16(port))
	if err != nil {
		return err
	}
	c.local = s.local
	s.close()
	return nil
}

// wanService is a WAN connection service client of any of the three types.
type wanService interface {
	wanConn
	GetServiceClient() *goupnp.ServiceClient
}

// appendServices appends the service clients of one generated type to to.
func appendServices[S wanService](to []wanService, from []S) []wanService {
	for _, s := range from {
		to = append(to, s)
	}
	return to
}

// describe fetches and decodes the root device description at loc.
func (c *upnpClient) describe(ctx context.Context, loc *url.URL) (*goupnp.RootDevice, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("skein/portmap: upnp: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: upnp description: %w", ErrTimeout, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: upnp description %s: %s", ErrMalformed, loc, resp.Status)
	}
	return decodeDescription(resp.Body, loc)
}

// decodeDescription decodes a root device description fetched from loc
// (at most MaxBody bytes of it) and resolves its URLs against its URLBase or
// loc. It never panics.
func decodeDescription(r io.Reader, loc *url.URL) (*goupnp.RootDevice, error) {
	root := new(goupnp.RootDevice)
	dec := xml.NewDecoder(io.LimitReader(r, MaxBody))
	dec.DefaultSpace = goupnp.DeviceXMLNamespace
	if err := dec.Decode(root); err != nil {
		return nil, fmt.Errorf("%w: upnp description %s: %w", ErrMalformed, loc, err)
	}
	base := loc
	if root.URLBaseStr != "" {
		if b, err := url.Parse(root.URLBaseStr); err == nil {
			base = b
		}
	}
	root.SetURLBase(base)
	return root, nil
}

func (c *upnpClient) mapPort(ctx context.Context, gw netip.Addr, internal uint16, prev *Mapping) (Mapping, error) {
	if c.conn == nil || prev == nil {
		if err := c.find(ctx, gw); err != nil {
			return Mapping{}, err
		}
	}
	ipText, err := c.conn.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return Mapping{}, upnpError(err)
	}
	ext, err := netip.ParseAddr(ipText)
	if err != nil || !ext.Is4() || ext.IsUnspecified() {
		return Mapping{}, fmt.Errorf("%w: upnp: external address %q", ErrMalformed, ipText)
	}
	lease := uint32(c.cfg.Lifetime / time.Second)
	if c.perm {
		lease = 0
	}
	port := internal
	if prev != nil {
		port = prev.External.Port()
	}
	for try := 0; ; try++ {
		err = c.conn.AddPortMappingCtx(ctx, "", port, "UDP", internal, c.local.String(), true, "skein", lease)
		var f *soap.SOAPFaultError
		if !errors.As(err, &f) || try == 4 {
			break
		}
		switch f.Detail.UPnPError.Errorcode {
		case upnpOnlyPermanent:
			lease, c.perm = 0, true
		case upnpConflict:
			if prev != nil {
				return Mapping{}, upnpError(err) // renewal: the port went to someone else
			}
			port = uint16(1024 + rand.IntN(65535-1024))
		case upnpSamePortNeeded:
			port = internal
		default:
			return Mapping{}, upnpError(err)
		}
	}
	if err != nil {
		return Mapping{}, upnpError(err)
	}
	return Mapping{
		Protocol: UPnP,
		External: netip.AddrPortFrom(ext, port),
		Internal: netip.AddrPortFrom(c.local, internal),
		Gateway:  gw,
		Lifetime: time.Duration(lease) * time.Second,
	}, nil
}

func (c *upnpClient) unmap(ctx context.Context, m Mapping) error {
	if c.conn == nil {
		return fmt.Errorf("%w: upnp: no service to delete the mapping with", ErrNoIGD)
	}
	return upnpError(c.conn.DeletePortMappingCtx(ctx, "", m.External.Port(), "UDP"))
}

// upnpError turns a SOAP fault into a *ResultError.
func upnpError(err error) error {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return &ResultError{Protocol: UPnP, Code: f.Detail.UPnPError.Errorcode, Text: f.Detail.UPnPError.ErrorDescription}
	}
	if err != nil {
		return fmt.Errorf("skein/portmap: upnp: %w", err)
	}
	return nil
}
