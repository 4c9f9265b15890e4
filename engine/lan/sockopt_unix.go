//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package lan

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// shareSocket lets several sockets on this machine bind the discovery port
// (SO_REUSEADDR and SO_REUSEPORT: each gets a copy of every broadcast and
// multicast datagram) and lets a socket send broadcasts (SO_BROADCAST).
func shareSocket(_, _ string, c syscall.RawConn) error {
	var err error
	cerr := c.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT, unix.SO_BROADCAST} {
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
