// Command chat is a terminal chat for everyone on the same network, and the
// example to copy for a first program on Skein:
//
//	go run ./demo/chat -name Ana
//
// It looks for a chat on the LAN (package engine/lan). When none answers
// within a moment it becomes the chat host: it runs a Skein server in this
// process and advertises it (host.go). Everyone, the host included, then
// connects to that server as a client and is put in one P2P group; lines
// typed go to the whole group with the Say call generated from chat.rmi
// (session.go). When the host leaves, the others look for a chat again
// and one of them becomes the new host.
//
// With -server host:port it joins the chat on a Skein match server
// instead (matchserver.go).
package main

//go:generate go run ../../tools/rmigen -o chat_rmi.go chat.rmi

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/lan"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
)

// What chat beacons carry: the kind, and the version of chat.rmi's calls.
const (
	chatKind     = "skein-chat"
	chatProtocol = 1
	chatCapacity = 64
)

// options are the command-line flags.
type options struct {
	name     string
	server   string        // -server: a match server's address
	key      string        // -server-key: the key it must prove
	known    string        // -known-servers: remembered keys of servers joined without -server-key
	lanPort  uint16        // the UDP port of LAN beacons
	loopback bool          // find and host chats on this machine only
	wait     time.Duration // how long to look for a chat before hosting
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status. Tests run it in
// child processes (see chat_test.go).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.name, "name", os.Getenv("USER"), "your name in the chat")
	fs.StringVar(&o.server, "server", "", "join the chat on the match server at `host:port` instead of the LAN")
	fs.StringVar(&o.key, "server-key", "", "the match server's public `key` (as its -print-key shows): refuse any other server (default: trust on first use and show its fingerprint)")
	fs.StringVar(&o.known, "known-servers", "", "`file` of remembered server keys: a -server without -server-key is trusted on first use and must prove the same key later (default: your config directory's skein/known_servers)")
	port := fs.Uint("lan-port", lan.DefaultPort, "UDP `port` of LAN discovery")
	fs.BoolVar(&o.loopback, "loopback", false, "find and host chats on this machine only (127.0.0.1)")
	fs.DurationVar(&o.wait, "wait", 1500*time.Millisecond, "how long to look for a chat before hosting one")
	level := fs.String("log", "warn", "log `level` on stderr: trace, debug, info, warn, error, off")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.name = chat.CleanName(o.name); o.name == "" {
		fmt.Fprintln(stderr, "chat: give your name with -name")
		return 2
	}
	if *port == 0 || *port > 65535 {
		fmt.Fprintln(stderr, "chat: -lan-port must be 1 to 65535")
		return 2
	}
	o.lanPort = uint16(*port)
	log := hclog.New(&hclog.LoggerOptions{Name: "chat", Level: hclog.LevelFromString(*level), Output: stderr})

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	in := readLines(stdin)
	var err error
	if o.server != "" {
		err = runMatchServer(ctx, o, in, stdout, log)
	} else {
		err = runLAN(ctx, o, in, stdout, log)
	}
	if err != nil {
		fmt.Fprintln(stdout, "! "+err.Error())
		return 1
	}
	return 0
}

// runLAN finds a chat on the LAN and joins it, or hosts one, until the
// player quits. When the host goes away it starts over.
func runLAN(ctx context.Context, o options, in <-chan string, out io.Writer, log hclog.Logger) error {
	scope := lan.ScopeLAN
	if o.loopback {
		scope = lan.ScopeLoopback
	}
	// The browser lists chats; it never connects anywhere by itself.
	br, err := lan.Browse(ctx, lan.BrowserConfig{Port: o.lanPort, Scope: scope, Kind: chatKind, Logger: log})
	if err != nil {
		return err
	}
	defer br.Close()
	where := "LAN"
	if o.loopback {
		where = "machine"
	}
	fmt.Fprintf(out, "* looking for a chat on the %s (UDP port %d)...\n", where, o.lanPort)

	var found *lan.Entry // a chat to join, or nil to host one
	for {
		if found == nil {
			// Wait a little longer than asked, at random, so that people
			// who start together do not all become hosts.
			wait := o.wait + rand.N(o.wait/3+1)
			found = findChat(ctx, br, wait)
		}
		if ctx.Err() != nil { // Ctrl-C while looking
			return nil
		}
		var h *host
		var addr netip.AddrPort
		var keys []net.ServerKey // the key the beacon names, or our own server's
		how := "trusted on first use"
		if found != nil {
			fmt.Fprintf(out, "* found %s's chat at %v (%d in chat): joining\n", found.Name, found.Addr, found.Players)
			addr = found.Addr
			if len(found.Info) == len(net.ServerKey{}) {
				keys = []net.ServerKey{net.ServerKey(found.Info)}
				how = "named by its beacon"
			}
		} else {
			if h, err = startHost(ctx, o, scope, log); err != nil {
				return err
			}
			fmt.Fprintf(out, "* no chat found: hosting one on UDP port %d; others on the %s will find it\n", h.addr().Port(), where)
			addr = h.addr()
			keys = []net.ServerKey{net.ServerKey(h.key())}
			how = "our own"
		}
		cl, err := dial(ctx, addr, log, keys, nil)
		if err != nil {
			h.close()
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(out, "! cannot join the chat at %v: %v\n", addr, err)
			found = nil
			continue
		}
		if k, ok := cl.Host().ServerKey(); ok {
			fmt.Fprintf(out, "* chat server key %s (%s)\n", k.Fingerprint(), how)
		}
		s, err := newSession(o.name, cl, out, log)
		if err != nil {
			cl.Close()
			h.close()
			return err
		}
		s.leave = func() error { return s.proxy.Leave(net.ServerID, rmi.Reliable) }
		end := s.run(ctx, in, h, br)
		cl.Close()
		h.close()
		switch end.why {
		case endQuit:
			return nil
		case endMove:
			found = end.move
		default:
			fmt.Fprintf(out, "! %v: looking for another chat\n", end.err)
			found = nil
		}
	}
}

// findChat waits up to wait for a chat that speaks our protocol and has
// room, and returns it (nil if none answered).
func findChat(ctx context.Context, br *lan.Browser, wait time.Duration) *lan.Entry {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	e, err := br.Wait(ctx, func(e lan.Entry) bool {
		return e.Protocol == chatProtocol && e.Players < e.Capacity
	})
	if err != nil {
		return nil
	}
	return &e
}

// dial connects a client to the chat server at addr, from a socket on the
// loopback address when the server is on this machine. keys pins the
// server's key (none: trust on first use); verify, if set, checks it
// (Config.VerifyServerKey: a remembered key).
func dial(ctx context.Context, addr netip.AddrPort, log hclog.Logger, keys []net.ServerKey, verify func(net.ServerKey) error) (*sync.Client, error) {
	local := "0.0.0.0:0"
	if addr.Addr().IsLoopback() {
		local = "127.0.0.1:0"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return sync.DialClient(ctx, local, addr, sync.ClientConfig{Logger: log, Net: net.Config{ServerKeys: keys, VerifyServerKey: verify}})
}

// readLines reads the player's lines on a goroutine (the only one the
// chat starts itself). The channel closes at the end of input. A line
// longer than 64 KiB is cut there: it is refused as too long anyway.
func readLines(r io.Reader) <-chan string {
	const max = 64 << 10
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		br := newLineReader(r, max)
		for {
			line, err := br.next()
			if line != "" || err == nil {
				lines <- line
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					fmt.Fprintln(os.Stderr, "chat: reading input:", err)
				}
				return
			}
		}
	}()
	return lines
}
