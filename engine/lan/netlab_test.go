package lan

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The netlab test re-runs this test binary inside network namespaces as a
// helper (see TestMain): LAN_HELPER=advertise or browse.
const helperEnv = "LAN_HELPER"

// netlabPrefix keeps this lab apart from other labs on the machine.
const netlabPrefix = "lc-"

// TestNetlabLAN checks discovery on real LAN segments: the default netlab
// topology has a1, a2 behind router ra (10.1.0.0/24) and b1, b2 behind rb
// (10.2.0.0/24). An advertiser on a1 is seen by a browser on a2 and not by
// one on b1; an advertiser on b2 is seen on b1 and not on a2. Each method
// (broadcast, multicast) is checked alone, with the default ScopeLAN
// targets (so the interface enumeration is what is tested).
func TestNetlabLAN(t *testing.T) {
	nl := os.Getenv("NETLAB")
	if os.Geteuid() != 0 || nl == "" {
		t.Skip("needs root and NETLAB=/path/to/netlab (network namespaces with NAT routers); " +
			"run: sudo NETLAB=/path/to/netlab go test -run NetlabLAN ./engine/lan")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	netlab := func(args ...string) string {
		cmd := exec.Command(nl, args...)
		cmd.Env = append(os.Environ(), "NETLAB_PREFIX="+netlabPrefix)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("netlab %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	netlab("up", "-q")
	t.Cleanup(func() { netlab("down", "-q") })
	addr := map[string]string{}
	for _, h := range []string{"a1", "a2", "b1", "b2"} {
		addr[h] = netlab("addr", h)
	}

	for i, method := range []string{"broadcast", "multicast"} {
		t.Run(method, func(t *testing.T) {
			port := strconv.Itoa(47800 + i)
			helper := func(host, mode string, env ...string) *exec.Cmd {
				cmd := exec.Command(nl, "exec", host, exe, "-test.run=^$")
				cmd.Env = append(os.Environ(), "NETLAB_PREFIX="+netlabPrefix, helperEnv+"="+mode,
					"LAN_PORT="+port, "LAN_METHOD="+method)
				cmd.Env = append(cmd.Env, env...)
				return cmd
			}
			// Advertisers run until their stdin closes.
			for _, host := range []string{"a1", "b2"} {
				cmd := helper(host, "advertise", "LAN_NAME="+host+"-game")
				stdin, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					stdin.Close()
					done := make(chan error, 1)
					go func() { done <- cmd.Wait() }()
					select {
					case err := <-done:
						if err != nil {
							t.Errorf("advertiser on %s: %v\n%s", host, err, out.String())
						}
					case <-time.After(10 * time.Second):
						cmd.Process.Kill()
						<-done
						t.Errorf("advertiser on %s did not stop\n%s", host, out.String())
					}
				})
			}
			// Browsers listen for 3 s (three beacons) and report.
			seen := map[string]map[string]string{} // browser host -> name -> addr
			type result struct {
				host string
				out  []byte
				err  error
			}
			results := make(chan result)
			for _, host := range []string{"a2", "b1"} {
				go func() {
					out, err := helper(host, "browse", "LAN_FOR=3s").CombinedOutput()
					results <- result{host, out, err}
				}()
			}
			for range 2 {
				r := <-results
				if r.err != nil {
					t.Fatalf("browser on %s: %v\n%s", r.host, r.err, r.out)
				}
				t.Logf("browser on %s:\n%s", r.host, r.out)
				seen[r.host] = parseSeen(r.out)
			}
			check := func(browser, name, want string) {
				t.Helper()
				got, ok := seen[browser][name]
				switch {
				case want == "" && ok:
					t.Errorf("%s sees %s at %s across a router", browser, name, got)
				case want != "" && got != want:
					t.Errorf("%s sees %s at %q, want %q", browser, name, got, want)
				}
			}
			check("a2", "a1-game", addr["a1"]+":7777")
			check("a2", "b2-game", "")
			check("b1", "b2-game", addr["b2"]+":7777")
			check("b1", "a1-game", "")
		})
	}
}

// parseSeen reads "seen NAME ADDR" lines.
func parseSeen(out []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "seen" {
			m[f[1]] = f[2]
		}
	}
	return m
}

// runHelper is the helper process: it advertises until stdin closes, or
// browses for LAN_FOR and prints what it saw. It returns the exit status.
func runHelper(mode string) int {
	port, _ := strconv.Atoi(os.Getenv("LAN_PORT"))
	var m Method
	switch os.Getenv("LAN_METHOD") {
	case "broadcast":
		m = Broadcast
	case "multicast":
		m = Multicast
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch mode {
	case "advertise":
		ad, err := Advertise(ctx, AdvertiserConfig{Port: uint16(port), Methods: m, Interval: 500 * time.Millisecond},
			Beacon{Kind: "netlab", Name: os.Getenv("LAN_NAME"), Port: 7777})
		if err != nil {
			fmt.Println("advertise:", err)
			return 1
		}
		io.Copy(io.Discard, os.Stdin)
		ad.Close()
		fmt.Printf("advertiser stats %+v\n", ad.Stats())
		return 0
	case "browse":
		d, err := time.ParseDuration(os.Getenv("LAN_FOR"))
		if err != nil {
			fmt.Println("LAN_FOR:", err)
			return 1
		}
		br, err := Browse(ctx, BrowserConfig{Port: uint16(port), Methods: m})
		if err != nil {
			fmt.Println("browse:", err)
			return 1
		}
		seen := map[string]netip.AddrPort{}
		stop := time.After(d)
		for {
			select {
			case <-br.Changed():
				for _, e := range br.Entries() {
					if _, ok := seen[e.Name]; !ok {
						seen[e.Name] = e.Addr
						fmt.Println("seen", e.Name, e.Addr)
					}
				}
				continue
			case <-stop:
			}
			break
		}
		br.Close()
		fmt.Printf("browser stats %+v\n", br.Stats())
		return 0
	}
	fmt.Println("unknown helper mode", mode)
	return 2
}
