//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package portmap

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// shareSocket lets several sockets on this machine bind the announcement
// port (SO_REUSEADDR and SO_REUSEPORT: each gets a copy of every multicast
// datagram).
func shareSocket(_, _ string, c syscall.RawConn) error {
	var err error
	cerr := c.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
			if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 1); err != nil {
				return
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}
