package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Protocol names a port-mapping protocol.
type Protocol string

// The protocols a Mapper speaks, in the order it tries them by default.
const (
	PCP    Protocol = "pcp"     // RFC 6887 (MAP opcode), UDP port 5351
	NATPMP Protocol = "nat-pmp" // RFC 6886, UDP port 5351
	UPnP   Protocol = "upnp"    // UPnP-IGD over SSDP and HTTP
)

// DefaultProtocols is the order a Mapper tries the protocols in when
// Config.Protocols is empty.
var DefaultProtocols = []Protocol{PCP, NATPMP, UPnP}

// Defaults for the zero values of Config.
const (
	// DefaultLifetime is the mapping lifetime a Mapper asks for.
	DefaultLifetime = 2 * time.Hour
	// DefaultTimeout bounds one protocol's attempt.
	DefaultTimeout = time.Second
	// DefaultRetry is how long a Mapper waits after every protocol failed
	// before it asks again (the router may have come up since).
	DefaultRetry = 2 * time.Minute
	// MaxBody bounds what a Mapper reads of one HTTP answer from a UPnP
	// router (a device description or a SOAP response).
	MaxBody = 64 << 10
)

// Errors a Mapper reports (in Status.Err, wrapped). Test with errors.Is.
var (
	// ErrNoGateway: no gateway was given and the default route has none.
	ErrNoGateway = errors.New("skein/portmap: no default gateway")
	// ErrTimeout: the gateway did not answer within Config.Timeout, or
	// said nothing listens there (an ICMP port unreachable).
	ErrTimeout = errors.New("skein/portmap: no answer from the gateway")
	// ErrRefused: the gateway answered with an error (a *ResultError says
	// which).
	ErrRefused = errors.New("skein/portmap: the gateway refused the mapping")
	// ErrMalformed: the gateway's answer could not be decoded.
	ErrMalformed = errors.New("skein/portmap: malformed answer")
	// ErrNoIGD: no UPnP Internet Gateway Device with a WAN connection
	// service answered.
	ErrNoIGD = errors.New("skein/portmap: no UPnP internet gateway found")
	// ErrClosed: the Mapper was closed.
	ErrClosed = errors.New("skein/portmap: closed")
)

// ResultError is a gateway's refusal: the protocol and its result code
// (PCP's and NAT-PMP's numbers, UPnP's SOAP error code). It matches
// ErrRefused.
type ResultError struct {
	Protocol Protocol
	Code     int
	Text     string
}

func (e *ResultError) Error() string {
	return fmt.Sprintf("skein/portmap: %s: the gateway refused the mapping: %d %s", e.Protocol, e.Code, e.Text)
}

// Is makes a *ResultError match ErrRefused.
func (e *ResultError) Is(target error) bool { return target == ErrRefused }

// Config configures a Mapper. The zero value works: the default gateway, every
// protocol in DefaultProtocols order, the documented defaults.
type Config struct {
	// Gateway is the router to ask. Zero: the default route's gateway
	// (Linux; other systems must set it), and only when that is a private
	// or carrier-grade-NAT address (a public gateway is no home router).
	Gateway netip.Addr
	// Protocols lists the protocols to try, in order. Empty:
	// DefaultProtocols.
	Protocols []Protocol
	// Lifetime is the mapping lifetime to ask for; the gateway may grant
	// another. Zero: DefaultLifetime.
	Lifetime time.Duration
	// Timeout bounds each protocol's attempt (a UPnP attempt gets twice
	// as long: discovery, description and the SOAP call). Zero:
	// DefaultTimeout.
	Timeout time.Duration
	// Retry is the wait after every protocol failed before asking again.
	// Zero: DefaultRetry.
	Retry time.Duration
	// Logger receives the logs under the name "portmap". Nil: no logs.
	Logger hclog.Logger
	// OnChange, if set, is called on the Mapper's goroutine (with no lock
	// held) each time Status changes: a mapping made, renewed to another
	// address, lost, or every protocol failed. It must not block for long
	// and must not call Close.
	OnChange func(Status)
	// ListenPacket opens the UDP socket for SSDP discovery. Nil:
	// net.ListenPacket. Tests use it to open sockets in another network
	// namespace.
	ListenPacket func(network, address string) (net.PacketConn, error)
	// DialContext opens the UDP socket to the gateway's port 5351 and the
	// TCP connections to a UPnP router. Nil: a net.Dialer's.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// ListenAnnounce opens the socket that hears the gateway's unsolicited
	// announcements on 224.0.0.1:5350 (PCP's ANNOUNCE when it restarts,
	// NAT-PMP's external address announcement), after which the Mapper
	// renews its mapping at once instead of at half its lifetime. It is
	// called once, with "udp4" and "0.0.0.0:5350", when the first
	// attempt knows the gateway and PCP or NAT-PMP is among the
	// protocols. Only datagrams from the gateway's port 5351 count. Nil:
	// ListenShared (other programs on this machine may listen too), and
	// no listening at all when the gateway is on the loopback. An error
	// is logged, and the Mapper works on without announcements.
	ListenAnnounce func(network, address string) (net.PacketConn, error)

	pcpPort        uint16        // tests: the gateway's PCP/NAT-PMP port (0: 5351)
	ssdpPort       uint16        // tests: the gateway's SSDP port (0: 1900)
	announceJitter time.Duration // tests: the most an announcement's renewal waits (0: 5 s; <0: none)
}

func (c Config) withDefaults() Config {
	if len(c.Protocols) == 0 {
		c.Protocols = DefaultProtocols
	}
	if c.Lifetime <= 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retry <= 0 {
		c.Retry = DefaultRetry
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.ListenPacket == nil {
		c.ListenPacket = net.ListenPacket
	}
	if c.DialContext == nil {
		d := &net.Dialer{}
		c.DialContext = d.DialContext
	}
	if c.pcpPort == 0 {
		c.pcpPort = 5351
	}
	if c.ssdpPort == 0 {
		c.ssdpPort = 1900
	}
	if c.announceJitter == 0 {
		c.announceJitter = defaultAnnounceJitter
	}
	return c
}

// Mapping is a port mapping the gateway granted.
type Mapping struct {
	// Protocol is the protocol that made it.
	Protocol Protocol
	// External is the public address peers reach the mapped socket at.
	External netip.AddrPort
	// Internal is the mapped socket's LAN address.
	Internal netip.AddrPort
	// Gateway is the router that holds the mapping.
	Gateway netip.Addr
	// Lifetime is what the gateway granted (zero: until deleted, some
	// UPnP routers' only kind).
	Lifetime time.Duration
	// Expires is when the mapping lapses unless renewed (zero with a zero
	// Lifetime).
	Expires time.Time

	nonce [12]byte // PCP: the nonce that renews and deletes it
}

// State says where a Mapper stands.
type State int

// Mapper states.
const (
	// Pending: the first attempt is under way.
	Pending State = iota
	// Mapped: a mapping is in place (Status.Mapping).
	Mapped
	// Unavailable: every protocol failed (Status.Err says why); the
	// Mapper asks again after Config.Retry.
	Unavailable
	// Closed: Close was called; the mapping was deleted.
	Closed
	// Off: no Mapper runs (a user of this package, such as engine/sync's
	// Client, reports it when port mapping is switched off or impossible;
	// Status.Err says why).
	Off
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Mapped:
		return "mapped"
	case Unavailable:
		return "unavailable"
	case Closed:
		return "closed"
	case Off:
		return "off"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status is a Mapper's current state.
type Status struct {
	State State
	// Mapping is valid while State is Mapped.
	Mapping Mapping
	// Err is why the last attempt failed: with State Unavailable, the
	// errors of every protocol tried (errors.Join); with State Mapped, a
	// renewal that failed while the mapping still held (nil otherwise).
	Err error
	// Since is when State or the mapping last changed.
	Since time.Time
	// Stats is the Mapper's counters when the status was taken (zero
	// when no Mapper runs).
	Stats Stats
}

// Available reports whether a mapping is in place.
func (s Status) Available() bool { return s.State == Mapped }
