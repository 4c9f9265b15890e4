//go:build windows

package lan

import "syscall"

// shareSocket lets several sockets on this machine bind the discovery port
// and lets a socket send broadcasts (SO_REUSEADDR, SO_BROADCAST).
func shareSocket(_, _ string, c syscall.RawConn) error {
	var err error
	cerr := c.Control(func(fd uintptr) {
		for _, opt := range []int{syscall.SO_REUSEADDR, syscall.SO_BROADCAST} {
			if err = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, opt, 1); err != nil {
				return
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}
