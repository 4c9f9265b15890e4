//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package lan

import "syscall"

// shareSocket does nothing on this platform: only one browser per machine
// can bind the discovery port, and broadcasts may be refused (multicast
// still works).
func shareSocket(_, _ string, _ syscall.RawConn) error { return nil }
