package sync_test

import (
	"context"
	stdnet "net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// natProbeServer starts the lab's server with its three alternate NAT-probe
// endpoints: 203.0.113.10:7001 and 203.0.113.11 on both ports.
func (l *lab) natProbeServer() *sync.Server {
	l.t.Helper()
	srv, err := sync.NewServer(l.udpIn("server", labServer), sync.ServerConfig{})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { srv.Close() })
	for _, a := range []string{"203.0.113.10:7001", "203.0.113.11:7000", "203.0.113.11:7001"} {
		if err := srv.AddNATProbeConn(l.udpIn("server", netip.MustParseAddrPort(a))); err != nil {
			l.t.Fatal(err)
		}
	}
	return srv
}

// natClient connects a client on lab host h to srv and returns it.
func (l *lab) natClient(srv *sync.Server, h string) *sync.Client {
	l.t.Helper()
	ip := netip.MustParseAddr(l.run("addr", h))
	c, err := sync.NewClient(l.udpIn(h, netip.AddrPortFrom(ip, 0)), sync.ClientConfig{})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx, labServer); err != nil {
		l.t.Fatalf("%s connects: %v", h, err)
	}
	waitFor(l.t, srv, sync.EventConnected)
	return c
}

// The NAT type of every kind of host netlab offers, from the real Linux
// NAT: a public host (p1), a cone router (Linux masquerade: endpoint-
// independent mapping, address-and-port-dependent filtering, no
// hairpinning) and a symmetric one (masquerade fully-random).
func TestNetlabNATTypes(t *testing.T) {
	l := upLab(t, "--nat-a", "cone", "--nat-b", "symmetric")
	srv := l.natProbeServer()
	cases := []struct {
		host               string
		typ                net.NATType
		mapping, filtering net.NATBehavior
	}{
		{"p1", net.NATPublic, net.EndpointIndependent, net.EndpointIndependent},
		{"a1", net.NATEndpointIndependent, net.EndpointIndependent, net.AddressPortDependent},
		{"b1", net.NATSymmetric, net.AddressPortDependent, net.AddressPortDependent},
	}
	for _, c := range cases {
		cl := l.natClient(srv, c.host)
		e := waitFor(t, cl, sync.EventNATType)
		r := e.NAT
		t.Logf("%s: %v, public address %v", c.host, r, r.Mapped)
		if e.Err != nil || r.Type != c.typ || r.Mapping != c.mapping || r.Filtering != c.filtering || r.Hairpin {
			t.Errorf("%s: %v (%v), want %v, mapping %v, filtering %v, no hairpin", c.host, r, e.Err, c.typ, c.mapping, c.filtering)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.NATCounts() != [net.NumNATTypes]int{net.NATPublic: 1, net.NATEndpointIndependent: 1, net.NATSymmetric: 1} {
		if time.Now().After(deadline) {
			t.Fatalf("server counts %v", srv.NATCounts())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A client whose router drops UDP reaches the server over TCP and reports
// its NAT type as UDP blocked.
func TestNetlabNATTypeUDPBlocked(t *testing.T) {
	l := upLab(t, "--nat-a", "blocked")
	srv := l.natProbeServer()
	var ln stdnet.Listener
	if err := inNetns(labPrefix+"server", func() (err error) {
		ln, err = stdnet.Listen("tcp4", labServer.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeTCP(ln); err != nil {
		t.Fatal(err)
	}
	var c *sync.Client
	ip := l.run("addr", "a1")
	if err := inNetns(labPrefix+"a1", func() (err error) {
		c, err = sync.DialClient(context.Background(), ip+":0", labServer, sync.ClientConfig{UDPTimeout: time.Second})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := waitFor(t, c, sync.EventNATType)
	if e.Err != nil || e.NAT.Type != net.NATUDPBlocked || c.Transport() != "tcp" {
		t.Fatalf("NAT %v (%v) over %s, want UDP blocked over tcp", e.NAT, e.Err, c.Transport())
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.NATCounts()[net.NATUDPBlocked] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("server counts %v", srv.NATCounts())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// birthdayClient is natClient whose host opens its birthday-punching
// sockets in the lab host's namespace (plain: birthday punching off).
func (l *lab) birthdayClient(srv *sync.Server, h string, plain bool) *sync.Client {
	l.t.Helper()
	ip := netip.MustParseAddr(l.run("addr", h))
	listen := func() (net.PacketConn, error) {
		var c *stdnet.UDPConn
		err := inNetns(labPrefix+h, func() (err error) {
			c, err = stdnet.ListenUDP("udp4", stdnet.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
			return err
		})
		if err != nil {
			return nil, err
		}
		return net.UDP(c), nil
	}
	pc := net.PunchConfig{BirthdayListen: listen}
	if plain {
		pc.BirthdayPorts = -1
	}
	c, err := sync.NewClient(l.udpIn(h, netip.AddrPortFrom(ip, 0)), sync.ClientConfig{Net: net.Config{Punch: pc}})
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx, labServer); err != nil {
		l.t.Fatalf("%s connects: %v", h, err)
	}
	waitFor(l.t, srv, sync.EventConnected)
	return c
}

// birthdayTrial is one cone↔symmetric meeting on the real NAT.
type birthdayTrial struct {
	direct   bool
	took     time.Duration // group created → both sides direct
	probes   uint64        // birthday datagrams, both sides
	peakRate uint64        // most datagrams the two clients sent in one second
}

func (l *lab) birthdayTrial(t *testing.T, srv *sync.Server, limit time.Duration, plain bool) birthdayTrial {
	a, b := l.birthdayClient(srv, "a1", plain), l.birthdayClient(srv, "b1", plain)
	defer a.Close()
	defer b.Close()
	for _, c := range []*sync.Client{a, b} {
		if e := waitFor(t, c, sync.EventNATType); e.Err != nil {
			t.Fatalf("NAT check: %v", e.Err)
		}
	}
	if ra, _ := a.NAT(); ra.Type != net.NATEndpointIndependent {
		t.Fatalf("a1's NAT %v, want endpoint-independent", ra)
	}
	if rb, _ := b.NAT(); rb.Type != net.NATSymmetric {
		t.Fatalf("b1's NAT %v, want symmetric", rb)
	}
	g, err := srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.DestroyGroup(g)
	start := time.Now()
	isDirect := func(c *sync.Client, peer net.HostID) bool {
		st, ok := c.PeerState(peer)
		return ok && !st.Relayed
	}
	var res birthdayTrial
	var window []uint64 // datagrams sent per 100 ms
	last := a.Host().Stats().DatagramsOut + b.Host().Stats().DatagramsOut
	tick := time.Now()
	for time.Since(start) < limit {
		if isDirect(a, b.ID()) && isDirect(b, a.ID()) {
			res.direct, res.took = true, time.Since(start)
			break
		}
		time.Sleep(5 * time.Millisecond)
		if time.Since(tick) >= 100*time.Millisecond {
			tick = time.Now()
			now := a.Host().Stats().DatagramsOut + b.Host().Stats().DatagramsOut
			window = append(window, now-last)
			last = now
		}
	}
	window = append(window, a.Host().Stats().DatagramsOut+b.Host().Stats().DatagramsOut-last)
	for i := range window {
		var sum uint64
		for _, n := range window[i:min(i+10, len(window))] {
			sum += n
		}
		res.peakRate = max(res.peakRate, sum)
	}
	res.probes = a.Host().BirthdayStats().Probes + b.Host().BirthdayStats().Probes
	if res.direct {
		realExchange(t, a, b, 50)
	}
	return res
}

// TestNetlabBirthdayConeSymmetric: a cone NAT and a symmetric one, which
// plain punching leaves relayed (TestNetlabSymmetricNATsStayRelayedAndWork
// shows the symmetric pair), go direct by birthday punching on the real
// Linux NAT. It runs SKEIN_BIRTHDAY_TRIALS meetings (3 by default; 50 for
// BENCHMARKS.md) and reports the direct rate, the median time to direct,
// the probes per success and the peak packet rate. With
// SKEIN_BIRTHDAY_BASELINE=n it first runs n meetings with birthday
// punching off (the baseline: plain punching, which must stay relayed):
//
//	SKEIN_BIRTHDAY_TRIALS=50 SKEIN_BIRTHDAY_BASELINE=5 go test -run TestNetlabBirthdayConeSymmetric -v ./engine/sync/
//
// It fails when fewer than 90% of the trials go direct (with 3 trials: any
// failure), or on any error.
func TestNetlabBirthdayConeSymmetric(t *testing.T) {
	count := func(name string, def, lo int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > 500 {
			t.Fatalf("%s=%q: want %d to 500", name, v, lo)
		}
		return n
	}
	trials, baseline := count("SKEIN_BIRTHDAY_TRIALS", 3, 1), count("SKEIN_BIRTHDAY_BASELINE", 0, 0)
	l := upLab(t, "--nat-a", "cone", "--nat-b", "symmetric")
	srv := l.natProbeServer()
	plainDirect := 0
	for i := range baseline {
		// Longer than a plain punch attempt (3 s).
		r := l.birthdayTrial(t, srv, 5*time.Second, true)
		t.Logf("baseline %d (plain punching): direct %v, %d birthday datagrams", i+1, r.direct, r.probes)
		if r.direct {
			plainDirect++
		}
	}
	if baseline > 0 {
		t.Logf("baseline cone<->symmetric with plain punching: %d/%d direct", plainDirect, baseline)
	}
	var took []time.Duration
	var probes, peak uint64
	for i := range trials {
		r := l.birthdayTrial(t, srv, 10*time.Second, false)
		t.Logf("trial %d: direct %v after %v, %d birthday datagrams, peak %d datagrams/s", i+1, r.direct, r.took.Round(time.Millisecond), r.probes, r.peakRate)
		if r.direct {
			took = append(took, r.took)
			probes += r.probes
		}
		peak = max(peak, r.peakRate)
	}
	if len(took) == 0 {
		t.Fatalf("no trial of %d went direct", trials)
	}
	slices.Sort(took)
	t.Logf("cone<->symmetric: %d/%d direct (%.0f%%), time to direct p50 %v p90 %v, %d birthday datagrams per success, peak %d datagrams/s (both clients)",
		len(took), trials, 100*float64(len(took))/float64(trials), took[len(took)/2].Round(time.Millisecond),
		took[len(took)*9/10].Round(time.Millisecond), probes/uint64(len(took)), peak)
	if len(took)*10 < trials*9 {
		t.Fatalf("%d of %d trials went direct, under the 90%% target", len(took), trials)
	}
}
