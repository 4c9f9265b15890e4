//go:build linux

// Package netlabtest brings up the repository's real-NAT test lab (netlab:
// network namespaces with Linux NAT routers) for a test and opens sockets
// inside its hosts, so one test process can own a server and clients on
// both sides of real NAT routers.
//
// A test calls Up, which skips (and says why) in -short mode, when the
// process is not root, or when netlab is not found (set $NETLAB to the
// path of the netlab tool; see Path). Each test process names
// its lab with its own prefix, so runs in parallel never tear down each
// other's lab; the lab is taken down when the test ends.
package netlabtest

import (
	"errors"
	"fmt"
	stdnet "net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Lab is a netlab lab brought up for one test.
type Lab struct {
	t      testing.TB
	netlab string
	prefix string
}

// Path finds the netlab script: $NETLAB, else the development machine's
// copy beside the repository, if there is one.
func Path() (string, error) {
	if p := os.Getenv("NETLAB"); p != "" {
		return p, nil
	}
	wd, _ := os.Getwd()
	for dir := wd; dir != "/"; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "..", "shared", "netlab", "netlab")
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	return "", errors.New("netlab not found: set NETLAB to the path of the netlab tool")
}

// Prefix returns a lab prefix for this process: tag, its PID and a dash
// (for example "sk1234-"), so parallel test processes get separate labs.
func Prefix(tag string) string { return fmt.Sprintf("%s%d-", tag, os.Getpid()) }

// Up brings a lab up with the given `netlab up` arguments, its namespaces
// named prefix+host (see Prefix), or skips the test. The lab goes down when
// the test ends.
func Up(t testing.TB, prefix string, args ...string) *Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("netlab tests skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("netlab tests need root (network namespaces)")
	}
	p, err := Path()
	if err != nil {
		t.Skip(err.Error())
	}
	l := &Lab{t: t, netlab: p, prefix: prefix}
	l.Run(append([]string{"up", "-q"}, args...)...)
	t.Cleanup(func() { l.Run("down", "-q") })
	return l
}

// Run runs a netlab command on this lab and returns its trimmed output; a
// failure fails the test.
func (l *Lab) Run(args ...string) string {
	l.t.Helper()
	cmd := exec.Command(l.netlab, args...)
	cmd.Env = append(os.Environ(), "NETLAB_PREFIX="+l.prefix)
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Script is the path of the netlab script.
func (l *Lab) Script() string { return l.netlab }

// Prefix is the lab's namespace prefix (NETLAB_PREFIX).
func (l *Lab) Prefix() string { return l.prefix }

// NS is the namespace of lab host host (for example "a1").
func (l *Lab) NS(host string) string { return l.prefix + host }

// UDP opens a UDP socket in lab host host on addr; it closes when the test
// ends (closing it earlier is fine).
func (l *Lab) UDP(host string, addr netip.AddrPort) *stdnet.UDPConn {
	l.t.Helper()
	var c *stdnet.UDPConn
	err := InNetns(l.NS(host), func() (err error) {
		c, err = stdnet.ListenUDP("udp4", stdnet.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		l.t.Fatalf("socket in %s: %v", host, err)
	}
	l.t.Cleanup(func() { c.Close() })
	return c
}

// In runs f on an OS thread that joined lab host host's namespace.
func (l *Lab) In(host string, f func() error) error { return InNetns(l.NS(host), f) }

// InNetns runs f on an OS thread that joined the named network namespace
// (/run/netns/name): a socket f opens stays in that namespace for good and
// can be used from any goroutine.
func InNetns(name string, f func() error) error {
	target, err := os.Open("/run/netns/" + name)
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", name, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns back: %w", err) // the thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}
