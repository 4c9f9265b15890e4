//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package portmap

import "syscall"

// shareSocket does nothing on this platform: only one Mapper per machine
// can bind the announcement port (the others work without announcements).
func shareSocket(_, _ string, _ syscall.RawConn) error { return nil }
