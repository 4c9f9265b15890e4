package lan

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// DefaultPort is the well-known UDP port beacons are sent to when a
// config leaves Port zero.
const DefaultPort = 47777

// DefaultGroup is the multicast group beacons are sent to when a config
// leaves Group unset: an administratively scoped (site-local, RFC 2365)
// IPv4 address that routers do not forward.
const DefaultGroup = "239.255.77.77"

// Defaults for the durations of AdvertiserConfig and BrowserConfig.
const (
	DefaultInterval = time.Second
	DefaultTTL      = 5 * time.Second
)

// Scope says which network beacons travel on.
type Scope uint8

const (
	// ScopeLAN: every IPv4 interface that is up. An Advertiser sends a
	// directed broadcast on each broadcast-capable interface (for example
	// 192.168.1.255), to 127.255.255.255 (this machine), and to the
	// multicast group on each multicast-capable interface; a Browser hears
	// all of them. Routers forward none of these, so beacons stay on the
	// LAN segment.
	ScopeLAN Scope = iota
	// ScopeLoopback: this machine only. An Advertiser sends to
	// 127.255.255.255 (Linux gives the loopback interface a broadcast
	// address: every socket bound to the port gets a copy) and to the
	// multicast group on the loopback interface; a Browser ignores beacons
	// from other machines. Tests and several games on one machine use it.
	ScopeLoopback
)

func (s Scope) String() string {
	switch s {
	case ScopeLAN:
		return "lan"
	case ScopeLoopback:
		return "loopback"
	}
	return fmt.Sprintf("Scope(%d)", uint8(s))
}

// Method selects how beacons travel. Zero means both.
type Method uint8

const (
	// Broadcast sends directed IPv4 broadcasts.
	Broadcast Method = 1 << iota
	// Multicast sends to (and listens on) the multicast group.
	Multicast
)

// orBoth returns m, or both methods when m is zero.
func (m Method) orBoth() Method {
	if m == 0 {
		return Broadcast | Multicast
	}
	return m
}

// groupOr parses DefaultGroup when g is unset.
func groupOr(g netip.Addr) (netip.Addr, error) {
	if !g.IsValid() {
		g = netip.MustParseAddr(DefaultGroup)
	}
	if !g.Is4() || !g.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("skein/lan: group %v is not an IPv4 multicast address", g)
	}
	return g, nil
}

// target is one place a beacon goes: a broadcast or unicast address, or the
// multicast group sent out of one interface (ifi non-nil).
type target struct {
	addr netip.AddrPort
	ifi  *net.Interface
}

func (t target) String() string {
	if t.ifi != nil {
		return t.addr.String() + "%" + t.ifi.Name
	}
	return t.addr.String()
}

// loopbackBroadcast is 127.255.255.255.
func loopbackBroadcast() netip.Addr { return netip.AddrFrom4([4]byte{127, 255, 255, 255}) }

func ifIndex(ifi *net.Interface) int {
	if ifi == nil {
		return 0
	}
	return ifi.Index
}

// findTargets lists where beacons go now (interfaces come and go, so the
// Advertiser asks again before every round).
func findTargets(scope Scope, methods Method, group netip.Addr, port uint16) ([]target, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []target
	add := func(t target) {
		if !slices.ContainsFunc(out, func(o target) bool { return o.addr == t.addr && ifIndex(o.ifi) == ifIndex(t.ifi) }) {
			out = append(out, t)
		}
	}
	if methods&Broadcast != 0 {
		add(target{addr: netip.AddrPortFrom(loopbackBroadcast(), port)})
	}
	for i := range ifs {
		ifi := &ifs[i]
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		loop := ifi.Flags&net.FlagLoopback != 0
		if scope == ScopeLoopback && !loop {
			continue
		}
		if methods&Multicast != 0 && (loop && scope == ScopeLoopback || !loop && ifi.Flags&net.FlagMulticast != 0) {
			add(target{addr: netip.AddrPortFrom(group, port), ifi: ifi})
		}
		if methods&Broadcast == 0 || loop || ifi.Flags&net.FlagBroadcast == 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if bc, ok := directedBroadcast(a); ok {
				add(target{addr: netip.AddrPortFrom(bc, port)})
			}
		}
	}
	return out, nil
}

// directedBroadcast returns the broadcast address of an interface's IPv4
// network (none for /31 and /32).
func directedBroadcast(a net.Addr) (netip.Addr, bool) {
	n, ok := a.(*net.IPNet)
	if !ok {
		return netip.Addr{}, false
	}
	ip4 := n.IP.To4()
	ones, bits := n.Mask.Size()
	if ip4 == nil || bits != 32 || ones > 30 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i := range b {
		b[i] = ip4[i] | ^n.Mask[i]
	}
	return netip.AddrFrom4(b), true
}

// multicastInterfaces lists the interfaces a Browser joins the group on.
func multicastInterfaces(scope Scope) []net.Interface {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	return slices.DeleteFunc(ifs, func(ifi net.Interface) bool {
		loop := ifi.Flags&net.FlagLoopback != 0
		switch {
		case ifi.Flags&net.FlagUp == 0:
			return true
		case scope == ScopeLoopback:
			return !loop
		}
		// Linux lets a socket join on lo without the multicast flag, and
		// ScopeLoopback advertisers on this machine send there.
		return !loop && ifi.Flags&net.FlagMulticast == 0
	})
}

// listenShared opens a UDP socket that shares its port with other browsers
// on this machine and may send broadcasts.
func listenShared(addr string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: shareSocket}
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}
