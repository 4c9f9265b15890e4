package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/skein-dev/skein/server/matchserver"
)

// The tests run the chat as real processes: this test binary, re-run with
// CHAT_TEST_MAIN=1, is the chat (see TestMain). They talk to it through
// pipes and check what each one prints. Everything stays on 127.0.0.1
// (-loopback), on a LAN port of its own.

func TestMain(m *testing.M) {
	if os.Getenv("CHAT_TEST_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	// No chat a test starts may remember a server in the real user's
	// config directory (os.UserConfigDir reads XDG_CONFIG_HOME).
	dir, err := os.MkdirTemp("", "chat-config-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one chat process.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer

	mu     stdsync.Mutex
	lines  []string      // everything printed so far
	next   int           // the first line expect has not looked at
	more   chan struct{} // a line came (capacity 1)
	exited chan struct{}
	err    error // exit status, once exited
}

// start runs a chat named name with args.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, more: make(chan struct{}, 1), exited: make(chan struct{})}
	p.cmd = exec.Command(exe, append([]string{"-name", name}, args...)...)
	p.cmd.Env = append(os.Environ(), "CHAT_TEST_MAIN=1")
	p.cmd.Stderr = &p.stderr
	p.stdin, err = p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill() // our own child, by its PID
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s printed:\n%s\n%s's stderr:\n%s", name, strings.Join(p.transcript(), "\n"), name, p.stderr.String())
		}
	})
	return p
}

// send types lines.
func (p *proc) send(lines ...string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, strings.Join(lines, "\n")+"\n"); err != nil {
		p.t.Fatalf("%s: typing: %v", p.name, err)
	}
}

// expect waits for the next line matching the regular expression re
// (anchored at both ends) and returns its submatches. Lines before it are
// passed over.
func (p *proc) expect(re string) []string {
	p.t.Helper()
	rx := regexp.MustCompile("^(?:" + re + ")$")
	deadline := time.After(20 * time.Second)
	for {
		p.mu.Lock()
		for ; p.next < len(p.lines); p.next++ {
			if m := rx.FindStringSubmatch(p.lines[p.next]); m != nil {
				p.next++
				p.mu.Unlock()
				return m
			}
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-p.exited:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if p.next >= n {
				p.t.Fatalf("%s exited (%v) without printing %q", p.name, p.err, re)
			}
		case <-deadline:
			p.t.Fatalf("%s did not print %q", p.name, re)
		}
	}
}

// waitExit waits for the process to end with status 0.
func (p *proc) waitExit() {
	p.t.Helper()
	select {
	case <-p.exited:
		if p.err != nil {
			p.t.Errorf("%s: %v", p.name, p.err)
		}
	case <-time.After(20 * time.Second):
		p.t.Fatalf("%s did not exit", p.name)
	}
}

func (p *proc) transcript() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lines)
}

// memberLines are the lines showing member events.
var memberLine = regexp.MustCompile(`^\* (you joined as .*|.* is here|.* joined \(\d+ in chat\)|.* left \(\d+ in chat\)|parted from .*|you left the chat)$`)

// checkMembers checks the member-event lines a process printed, in order.
func (p *proc) checkMembers(want ...string) {
	p.t.Helper()
	var got []string
	for _, l := range p.transcript() {
		if memberLine.MatchString(l) {
			got = append(got, strings.TrimPrefix(l, "* "))
		}
	}
	if !slices.Equal(got, want) {
		p.t.Errorf("%s's member lines:\n got %q\nwant %q", p.name, got, want)
	}
}

func (p *proc) count(re string) int {
	rx := regexp.MustCompile("^(?:" + re + ")$")
	n := 0
	for _, l := range p.transcript() {
		if rx.MatchString(l) {
			n++
		}
	}
	return n
}

// lanArgs puts a test's chats on loopback and a LAN port of their own.
func lanArgs(t *testing.T) []string {
	c, err := stdnet.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*stdnet.UDPAddr).Port
	c.Close()
	// -wait: long enough to hear a beacon on a loaded machine (a joiner that
	// misses it hosts its own chat, and the member lines the tests expect
	// change).
	return []string{"-loopback", "-lan-port", fmt.Sprint(port), "-wait", "3s"}
}

// Three people on one machine: the first hosts, the others find it; lines,
// bad input, a flood, /who, and leaving (a member, then the host) show
// with the exact member-event semantics.
func TestChatLAN(t *testing.T) {
	t.Parallel()
	args := lanArgs(t)

	ana := start(t, "Ana", args...)
	ana.expect(`\* no chat found: hosting one on UDP port \d+; others on the machine will find it`)
	ana.expect(`\* you joined as Ana \(1 in chat\)`)

	bob := start(t, "Bob", args...)
	bob.expect(`\* found Ana's chat at 127\.0\.0\.1:\d+ \(1 in chat\): joining`)
	bob.expect(`\* you joined as Bob \(2 in chat\)`)
	ana.expect(`\* Bob joined \(2 in chat\)`)

	cid := start(t, "Cid", args...)
	cid.expect(`\* you joined as Cid \(3 in chat\)`)
	ana.expect(`\* Cid joined \(3 in chat\)`)
	bob.expect(`\* Cid joined \(3 in chat\)`)

	ana.send("hello everyone")
	bob.expect(`<Ana> hello everyone`)
	cid.expect(`<Ana> hello everyone`)

	// Control characters are stripped at the receivers.
	bob.send("hi\x1b[31m red\a\x00 there")
	ana.expect(`<Bob> hi\[31m red there`)
	cid.expect(`<Bob> hi\[31m red there`)

	// A long line is refused at the sender, with a note.
	cid.send(strings.Repeat("x", 300))
	cid.expect(`! not sent: message too long: 300 characters, the limit is 280`)
	cid.send("short one")
	ana.expect(`<Cid> short one`)
	bob.expect(`<Cid> short one`)

	bob.send("/who")
	bob.expect(`\* 3 in chat:`)
	bob.expect(`\*   Ana (relayed|direct), rtt .*`)
	bob.expect(`\*   Bob \(you\)`)
	bob.expect(`\*   Cid (relayed|direct), rtt .*`)

	// A flood: receivers show the first few lines, then hide the rest
	// for a moment.
	var flood []string
	for i := range 15 {
		flood = append(flood, fmt.Sprint("flood ", i))
	}
	cid.send(flood...)
	cid.expect(`! you are typing faster than the others will show .*`)
	ana.expect(`! Cid is sending too fast: hiding their lines for a moment`)
	bob.expect(`! Cid is sending too fast: hiding their lines for a moment`)
	time.Sleep(2500 * time.Millisecond) // the limit lets a line through every second
	cid.send("calm again")
	m := ana.expect(`! (\d+) lines from Cid were hidden`)
	ana.expect(`<Cid> calm again`)
	if shown := ana.count(`<Cid> flood \d+`); shown < 3 || shown >= 15 || fmt.Sprint(15-shown) != m[1] {
		t.Errorf("Ana shows %d flood lines and says %s were hidden", shown, m[1])
	}

	// A member leaves: one leave for each member still in, then its own.
	bob.send("/quit")
	bob.expect(`\* you left the chat`)
	bob.waitExit()
	ana.expect(`\* Bob left \(2 in chat\)`)
	cid.expect(`\* Bob left \(2 in chat\)`)

	// The host leaves: Cid sees it go, then hosts a chat of its own.
	ana.send("/quit")
	ana.expect(`\* you left the chat`)
	ana.waitExit()
	cid.expect(`\* Ana left \(1 in chat\)`)
	cid.expect(`! the chat host closed the chat: looking for another chat`)
	cid.expect(`\* no chat found: hosting one on UDP port \d+; others on the machine will find it`)
	cid.expect(`\* you joined as Cid \(1 in chat\)`)
	cid.stdin.Close() // end of input leaves too
	cid.expect(`\* you left the chat`)
	cid.waitExit()

	ana.checkMembers("you joined as Ana (1 in chat)", "Bob joined (2 in chat)", "Cid joined (3 in chat)",
		"Bob left (2 in chat)", "parted from Cid", "you left the chat")
	bob.checkMembers("Ana is here", "you joined as Bob (2 in chat)", "Cid joined (3 in chat)",
		"parted from Ana", "parted from Cid", "you left the chat")
	cid.checkMembers("Ana is here", "Bob is here", "you joined as Cid (3 in chat)",
		"Bob left (2 in chat)", "Ana left (1 in chat)",
		"you joined as Cid (1 in chat)", "you left the chat")
	for _, p := range []*proc{ana, bob, cid} {
		if n := p.count(`.*xxxxxxxxxx.*`); n != 0 {
			t.Errorf("%s shows the refused long line", p.name)
		}
	}
}

// When the host leaves, the others find each other again: one of them
// hosts and the other joins.
func TestChatHostLeaves(t *testing.T) {
	t.Parallel()
	args := lanArgs(t)
	ana := start(t, "Ana", args...)
	ana.expect(`\* you joined as Ana \(1 in chat\)`)
	bob := start(t, "Bob", args...)
	bob.expect(`\* you joined as Bob \(2 in chat\)`)
	cid := start(t, "Cid", args...)
	cid.expect(`\* you joined as Cid \(3 in chat\)`)
	bob.expect(`\* Cid joined \(3 in chat\)`)

	ana.send("/quit")
	ana.waitExit()
	for _, p := range []*proc{bob, cid} {
		p.expect(`\* Ana left \(2 in chat\)`)
		p.expect(`! the chat host closed the chat: looking for another chat`)
		p.expect(`\* (you joined as \w+|\w+ joined) \(2 in chat\)`)
	}
	bob.send("still here")
	cid.expect(`<Bob> still here`)
	// Ctrl-C leaves cleanly too.
	if err := cid.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	cid.expect(`\* you left the chat`)
	cid.waitExit()
	bob.expect(`\* Cid left \(1 in chat\)`)
	bob.send("/quit")
	bob.waitExit()
}

// -server joins the chat on a match server: a match named "chat", whose
// group has the server as a member too.
func TestChatMatchServer(t *testing.T) {
	t.Parallel()
	srv, err := matchserver.New(matchserver.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("match server: %v", err)
		}
	})
	addr := srv.UDPAddr().String()
	known := filepath.Join(t.TempDir(), "known_servers")

	ana := start(t, "Ana", "-server", addr, "-known-servers", known)
	ana.expect(`\* connected to the match server at ` + regexp.QuoteMeta(addr))
	ana.expect(`\* you joined as Ana \(2 in chat\)`)
	bob := start(t, "Bob", "-server", addr, "-known-servers", known)
	bob.expect(`\* you joined as Bob \(3 in chat\)`)
	ana.expect(`\* Bob joined \(3 in chat\)`)

	bob.send("hi from Bob")
	ana.expect(`<Bob> hi from Bob`)
	ana.send("/who")
	ana.expect(`\* 3 in chat:`)
	ana.expect(`\*   the match server`)

	bob.send("/quit")
	bob.waitExit()
	ana.expect(`\* Bob left \(2 in chat\)`)
	ana.send("/quit")
	ana.waitExit()

	ana.checkMembers("the match server is here", "you joined as Ana (2 in chat)", "Bob joined (3 in chat)",
		"Bob left (2 in chat)", "parted from the match server", "you left the chat")
	bob.checkMembers("the match server is here", "Ana is here", "you joined as Bob (3 in chat)",
		"parted from the match server", "parted from Ana", "you left the chat")
}

func TestLineReader(t *testing.T) {
	in := "short\r\n" + strings.Repeat("y", 10000) + "\nlast without newline"
	r := newLineReader(strings.NewReader(in), 100)
	var got []string
	for {
		l, err := r.next()
		if l != "" || err == nil {
			got = append(got, l)
		}
		if err != nil {
			break
		}
	}
	want := []string{"short", strings.Repeat("y", 100), "last without newline"}
	if !slices.Equal(got, want) {
		t.Errorf("lines %q", got)
	}
}

// Two people who start at the same moment may both become hosts: the one
// whose chat is newer moves to the older, and they end up together.
func TestChatTwoHostsMerge(t *testing.T) {
	t.Parallel()
	args := append(lanArgs(t), "-wait", "1ms") // host at once
	ana := start(t, "Ana", args...)
	bob := start(t, "Bob", args...)
	for _, p := range []*proc{ana, bob} {
		p.expect(`\* (you joined as \w+|\w+ joined) \(2 in chat\)`)
	}
	ana.send("together")
	bob.expect(`<Ana> together`)
	for _, p := range []*proc{ana, bob} {
		p.send("/quit")
		p.waitExit()
	}
}
