package portmap_test

// Port mapping against a real daemon: miniupnpd (Debian's
// miniupnpd-nftables, started by `netlab upnp a on`) on a netlab router,
// in network namespaces made by the netlab tool. The tests run when the
// process is root and netlab is found ($NETLAB, or where
// internal/netlabtest.Path looks); otherwise they skip and say why. Each
// process uses its own lab prefix and takes its lab down after.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/portmap"
	"github.com/skein-dev/skein/internal/netlabtest"
)

// labPrefix names this process's lab, so parallel runs never tear down each
// other's lab.
var labPrefix = netlabtest.Prefix("pm")

type lab struct {
	*netlabtest.Lab
	t *testing.T
}

// upLab brings a lab up with the given `netlab up` arguments, or skips.
func upLab(t *testing.T, args ...string) *lab {
	t.Helper()
	return &lab{Lab: netlabtest.Up(t, labPrefix, args...), t: t}
}

func (l *lab) run(args ...string) string {
	l.t.Helper()
	return l.Run(args...)
}

// inNetns runs f on an OS thread that joined the named namespace.
func inNetns(name string, f func() error) error { return netlabtest.InNetns(name, f) }

// udpIn opens a UDP socket in lab host (for example "a1") on addr.
func (l *lab) udpIn(host string, addr netip.AddrPort) *net.UDPConn {
	l.t.Helper()
	return l.UDP(host, addr)
}

// inHost makes cfg open its sockets in lab host's namespace.
func inHost(host string, cfg portmap.Config) portmap.Config {
	ns := labPrefix + host
	cfg.DialContext = func(ctx context.Context, network, address string) (c net.Conn, err error) {
		err = inNetns(ns, func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, network, address)
			return err
		})
		return c, err
	}
	cfg.ListenPacket = func(network, address string) (c net.PacketConn, err error) {
		err = inNetns(ns, func() (err error) {
			c, err = net.ListenPacket(network, address)
			return err
		})
		return c, err
	}
	cfg.ListenAnnounce = func(network, address string) (c net.PacketConn, err error) {
		err = inNetns(ns, func() (err error) {
			c, err = portmap.ListenShared(network, address)
			return err
		})
		return c, err
	}
	return cfg
}

// watch starts a Mapper for sock's port in host with cfg and returns it
// with a channel of its status changes.
func watch(t *testing.T, host string, port uint16, cfg portmap.Config) (*portmap.Mapper, <-chan portmap.Status) {
	t.Helper()
	ch := make(chan portmap.Status, 64)
	cfg.OnChange = func(s portmap.Status) {
		select {
		case ch <- s:
		default:
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: host, Level: hclog.Debug, Output: tlog{t}})
	}
	m := portmap.Start(context.Background(), port, inHost(host, cfg))
	t.Cleanup(func() { m.Close() })
	return m, ch
}

// nextStatus waits for the next status change (10 s at most: a failure,
// not a measurement).
func nextStatus(t *testing.T, ch <-chan portmap.Status) portmap.Status {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no status change in 10 s")
	}
	return portmap.Status{}
}

// roundTrip sends from p1 to the mapped address ext, checks a1's socket gets
// it and that a1's answer comes back from ext.
func roundTrip(t *testing.T, p1, a1 *net.UDPConn, ext netip.AddrPort) {
	t.Helper()
	msg := []byte(fmt.Sprintf("hello %d", time.Now().UnixNano()))
	buf := make([]byte, 1500)
	for try := 0; ; try++ {
		if _, err := p1.WriteToUDPAddrPort(msg, ext); err != nil {
			t.Fatal(err)
		}
		a1.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, from, err := a1.ReadFromUDPAddrPort(buf)
		if err == nil && string(buf[:n]) == string(msg) {
			if from.Addr() != netip.MustParseAddr("203.0.113.20") {
				t.Fatalf("a1 got the datagram from %v, want p1", from)
			}
			if _, err := a1.WriteToUDPAddrPort([]byte("back"), from); err != nil {
				t.Fatal(err)
			}
			break
		}
		if try == 9 {
			t.Fatalf("a1 got nothing sent to the mapped address %v (last: %v)", ext, err)
		}
	}
	p1.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := p1.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "back" {
		t.Fatalf("p1: answer %q, %v", buf[:n], err)
	}
	if from != ext {
		t.Fatalf("a1's answer came from %v, want the mapped address %v", from, ext)
	}
}

// nftRules lists router ra's miniupnpd redirections.
func (l *lab) nftRules() string {
	return l.run("exec", "ra", "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd")
}

var (
	gatewayA = netip.MustParseAddr("10.1.0.1")
	wanA     = netip.MustParseAddr("203.0.113.101")
)

// TestNetlabEachProtocolMaps forces each protocol in turn, behind a cone and
// then a symmetric router running miniupnpd: the mapping is made, reported
// with the router's WAN address, works end to end from the internet host p1
// (and a1's answer leaves from the mapped port), and is gone from the router
// after Close.
func TestNetlabEachProtocolMaps(t *testing.T) {
	l := upLab(t, "--nat", "cone")
	p1 := l.udpIn("p1", netip.MustParseAddrPort("203.0.113.20:0"))
	for _, nat := range []string{"cone", "symmetric"} {
		l.run("nat", "a", nat)
		l.run("upnp", "a", "on") // after `netlab nat`, which rewrites the router's rules
		for _, proto := range portmap.DefaultProtocols {
			t.Run(nat+"/"+string(proto), func(t *testing.T) {
				a1 := l.udpIn("a1", netip.MustParseAddrPort("10.1.0.11:0"))
				port := a1.LocalAddr().(*net.UDPAddr).AddrPort().Port()
				m, ch := watch(t, "a1", port, portmap.Config{Gateway: gatewayA, Protocols: []portmap.Protocol{proto}, Lifetime: time.Hour})
				s := nextStatus(t, ch)
				if s.State != portmap.Mapped || s.Mapping.Protocol != proto {
					t.Fatalf("status %+v: want mapped by %s", s, proto)
				}
				mp := s.Mapping
				if mp.External.Addr() != wanA || mp.Internal != netip.AddrPortFrom(netip.MustParseAddr("10.1.0.11"), port) || mp.Gateway != gatewayA {
					t.Fatalf("mapping %+v: want external on %v, internal 10.1.0.11:%d", mp, wanA, port)
				}
				if mp.Lifetime <= 0 || mp.Expires.IsZero() {
					t.Fatalf("mapping %+v: want a lifetime", mp)
				}
				t.Logf("%s: %v -> %v for %v", proto, mp.External, mp.Internal, mp.Lifetime)
				if rules := l.nftRules(); !strings.Contains(rules, fmt.Sprintf("dport %d ", mp.External.Port())) {
					t.Fatalf("router has no rule for port %d:\n%s", mp.External.Port(), rules)
				}
				roundTrip(t, p1, a1, mp.External)
				m.Close()
				if s := m.Status(); s.State != portmap.Closed {
					t.Fatalf("after Close: %+v", s)
				}
				if rules := l.nftRules(); strings.Contains(rules, fmt.Sprintf("dport %d ", mp.External.Port())) {
					t.Fatalf("the router still maps port %d after Close:\n%s", mp.External.Port(), rules)
				}
			})
		}
	}
}

// TestNetlabRenewsAndDefaultOrder asks with the default protocol order: PCP
// (first) maps the port. Then NAT-PMP and UPnP each keep a mapping with a
// 4 s lifetime (miniupnpd grants PCP 120 s at least, too long to wait for
// here; the PCP renewal is tested against a fake gateway): it is renewed at
// the same address before it lapses, still works, and Close deletes it. A
// router without a daemon (rb) makes the Mapper report why, protocol by
// protocol.
func TestNetlabRenewsAndDefaultOrder(t *testing.T) {
	l := upLab(t, "--nat", "symmetric")
	l.run("upnp", "a", "on")
	p1 := l.udpIn("p1", netip.MustParseAddrPort("203.0.113.20:0"))
	a1 := l.udpIn("a1", netip.MustParseAddrPort("10.1.0.11:0"))
	port := a1.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	m, ch := watch(t, "a1", port, portmap.Config{Gateway: gatewayA})
	s := nextStatus(t, ch)
	if s.State != portmap.Mapped || s.Mapping.Protocol != portmap.PCP {
		t.Fatalf("status %+v: want mapped by PCP", s)
	}
	m.Close()

	for _, proto := range []portmap.Protocol{portmap.NATPMP, portmap.UPnP} {
		m, ch := watch(t, "a1", port, portmap.Config{Gateway: gatewayA, Protocols: []portmap.Protocol{proto}, Lifetime: 4 * time.Second})
		s := nextStatus(t, ch)
		if s.State != portmap.Mapped || s.Mapping.Protocol != proto {
			t.Fatalf("status %+v: want mapped by %s", s, proto)
		}
		first := s.Mapping
		t.Logf("%s: asked for 4 s, granted %v", proto, first.Lifetime)
		for i := range 2 {
			s = nextStatus(t, ch) // a renewal, at half the lifetime
			if s.State != portmap.Mapped || s.Err != nil || s.Mapping.External != first.External || !s.Mapping.Expires.After(first.Expires) {
				t.Fatalf("%s renewal %d: %+v; want the same mapping, later expiry than %v", proto, i, s, first.Expires)
			}
			roundTrip(t, p1, a1, s.Mapping.External)
		}
		m.Close()
		if rules := l.nftRules(); strings.Contains(rules, fmt.Sprintf("dport %d ", first.External.Port())) {
			t.Fatalf("%s: the router still maps port %d after Close:\n%s", proto, first.External.Port(), rules)
		}
	}

	b1 := l.udpIn("b1", netip.MustParseAddrPort("10.2.0.11:0"))
	_, ch = watch(t, "b1", b1.LocalAddr().(*net.UDPAddr).AddrPort().Port(), portmap.Config{Gateway: netip.MustParseAddr("10.2.0.1"), Timeout: 500 * time.Millisecond})
	s = nextStatus(t, ch)
	if s.State != portmap.Unavailable || !errors.Is(s.Err, portmap.ErrTimeout) {
		t.Fatalf("without a daemon: %+v; want unavailable, timed out", s)
	}
	for _, p := range portmap.DefaultProtocols {
		if !strings.Contains(s.Err.Error(), string(p)+":") {
			t.Fatalf("error %q does not say what %s did", s.Err, p)
		}
	}
	t.Logf("without a daemon: %v", s.Err)
}

// TestNetlabGatewayRestartRemaps restarts miniupnpd on router ra with its
// state gone (`netlab upnp a off`, the lease file removed, `netlab upnp a
// on`: the router's mappings are deleted). miniupnpd multicasts a PCP
// ANNOUNCE when it starts; the Mapper hears it and maps again at once
// (after its random wait of up to 5 s), not at half its hour-long
// lifetime: the router has the rule again and the mapped address works.
// NAT-PMP's mapping comes back the same way. (This miniupnpd reports the
// system's uptime as its epoch, so the epoch does not go back here: the
// announcement alone brings the mapping back; the epoch check is tested
// against the fake gateway, TestEpochBackOnRenewalIsCounted.)
func TestNetlabGatewayRestartRemaps(t *testing.T) {
	l := upLab(t, "--nat", "symmetric")
	l.run("upnp", "a", "on")
	root := os.Getenv("NETLAB_STATE")
	if root == "" {
		root = "/run/netlab"
	}
	leases := filepath.Join(root, strings.TrimSuffix(l.Prefix(), "-"), "miniupnpd-a.leases")
	p1 := l.udpIn("p1", netip.MustParseAddrPort("203.0.113.20:0"))
	for _, proto := range []portmap.Protocol{portmap.PCP, portmap.NATPMP} {
		t.Run(string(proto), func(t *testing.T) {
			a1 := l.udpIn("a1", netip.MustParseAddrPort("10.1.0.11:0"))
			port := a1.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			m, ch := watch(t, "a1", port, portmap.Config{Gateway: gatewayA, Protocols: []portmap.Protocol{proto}, Lifetime: time.Hour})
			s := nextStatus(t, ch)
			if s.State != portmap.Mapped {
				t.Fatalf("status %+v", s)
			}
			first := s.Mapping
			rule := fmt.Sprintf("dport %d ", first.External.Port())
			if !strings.Contains(l.nftRules(), rule) {
				t.Fatalf("router has no rule for %v", first.External)
			}
			l.run("upnp", "a", "off")
			if err := os.Remove(leases); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			// The rules went with miniupnpd's table, and with the lease
			// file gone it cannot reload them: only the Mapper can bring
			// the rule back.
			if tables := l.run("exec", "ra", "nft", "list", "tables"); strings.Contains(tables, "miniupnpd") {
				t.Fatalf("miniupnpd's table outlived it:\n%s", tables)
			}
			l.run("upnp", "a", "on")
			up := time.Now()
			s = nextStatus(t, ch) // the renewal the announcement brings
			took := time.Since(up)
			if s.State != portmap.Mapped || s.Err != nil || s.Mapping.Protocol != proto {
				t.Fatalf("after the restart: %+v; want mapped again", s)
			}
			st := m.Stats()
			t.Logf("%s: mapped again %v after miniupnpd came up, at %v (was %v); stats %+v", proto, took.Round(time.Millisecond), s.Mapping.External, first.External, st)
			if st.Announcements == 0 || st.Remaps != 1 || st.Renewed != 1 {
				t.Fatalf("stats %+v: want an announcement heard and one renewal made at once", st)
			}
			if rules := l.nftRules(); !strings.Contains(rules, fmt.Sprintf("dport %d ", s.Mapping.External.Port())) {
				t.Fatalf("router has no rule for %v after the remap:\n%s", s.Mapping.External, rules)
			}
			roundTrip(t, p1, a1, s.Mapping.External)
			m.Close()
		})
	}
}

// tlog sends a logger's lines to the test log.
type tlog struct{ t *testing.T }

func (w tlog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
