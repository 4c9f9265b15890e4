//go:build windows

package portmap

import "syscall"

// shareSocket lets several sockets on this machine bind the announcement
// port (SO_REUSEADDR).
func shareSocket(_, _ string, c syscall.RawConn) error {
	var err error
	cerr := c.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if cerr != nil {
		return cerr
	}
	return err
}
