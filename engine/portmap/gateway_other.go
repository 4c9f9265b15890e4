//go:build !linux

package portmap

import (
	"fmt"
	"net/netip"
)

// defaultGateway is known on Linux only; elsewhere set Config.Gateway.
func defaultGateway() (netip.Addr, error) {
	return netip.Addr{}, fmt.Errorf("%w: set Config.Gateway on this system", ErrNoGateway)
}
