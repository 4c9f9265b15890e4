package netplay

import (
	"context"
	"errors"
	"fmt"
	stdnet "net"
	"net/netip"
	"time"
)

// ResolveServer turns "host:port" into an address: the port is 7777 when
// missing, and a host name is looked up (IPv4, three seconds at most).
func ResolveServer(server string) (netip.AddrPort, error) {
	if server == "" {
		return netip.AddrPort{}, errors.New("enter a server address (host:port)")
	}
	if ap, err := netip.ParseAddrPort(server); err == nil {
		return ap, nil
	}
	if a, err := netip.ParseAddr(server); err == nil {
		return netip.AddrPortFrom(a, 7777), nil
	}
	host, port := server, "7777"
	if i := lastColon(server); i >= 0 {
		host, port = server[:i], server[i+1:]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ips, err := stdnet.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("cannot resolve %q", host)
	}
	var p uint16
	if _, err := fmt.Sscan(port, &p); err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", port)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), p), nil
}

func lastColon(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}
