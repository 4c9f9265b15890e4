package portmap

import (
	"fmt"
	"io"
	"net/netip"
	"os"
)

// defaultGateway reads the default route's gateway from /proc/net/route
// (the calling thread's network namespace: /proc/thread-self).
func defaultGateway() (netip.Addr, error) {
	f, err := os.Open("/proc/thread-self/net/route")
	if err != nil {
		if f, err = os.Open("/proc/net/route"); err != nil {
			return netip.Addr{}, fmt.Errorf("%w: %w", ErrNoGateway, err)
		}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRouteTable))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %w", ErrNoGateway, err)
	}
	return parseRouteTable(b)
}
