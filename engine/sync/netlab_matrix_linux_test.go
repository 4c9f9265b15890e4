package sync_test

import (
	"context"
	"errors"
	stdnet "net"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/sync"
)

// labPair is one row of the NAT matrix on real Linux NAT: two lab hosts,
// the NAT of each home router, and what the pair can do.
type labPair struct {
	name       string
	natA, natB string    // netlab nat types of routers ra and rb
	hosts      [2]string // lab hosts of the two clients
	// canDirect: the pair can go direct with what this build does (a
	// relayed result fails the test); other pairs may go direct (a later
	// build with port mapping or birthday punching) and are reported.
	canDirect bool
}

// TestNetlabNATMatrix runs every pair of NAT types netlab offers (public,
// cone, symmetric, blocked UDP, and two hosts behind one NAT) and reports,
// per pair, direct or relayed, the reason and the time to direct. It fails
// when a pair does not connect at all (each must exchange reliable messages
// both ways, through the relay if not directly), or when a pair that can
// go direct ends relayed.
//
//	go test -run TestNetlabNATMatrix -v ./engine/sync/
func TestNetlabNATMatrix(t *testing.T) {
	pairs := []labPair{
		{"public↔cone", "cone", "cone", [2]string{"p1", "b1"}, true},
		{"public↔symmetric", "cone", "symmetric", [2]string{"p1", "b1"}, true},
		{"cone↔cone", "cone", "cone", [2]string{"a1", "b1"}, true},
		{"same LAN (one cone NAT)", "cone", "cone", [2]string{"a1", "a2"}, true},
		{"same LAN (one symmetric NAT)", "symmetric", "cone", [2]string{"a1", "a2"}, true},
		{"cone↔symmetric", "cone", "symmetric", [2]string{"a1", "b1"}, false},
		{"symmetric↔symmetric", "symmetric", "symmetric", [2]string{"a1", "b1"}, false},
		{"blocked↔cone", "blocked", "cone", [2]string{"a1", "b1"}, false},
		{"blocked↔public", "blocked", "cone", [2]string{"a1", "p1"}, false},
		{"blocked↔blocked (one NAT)", "blocked", "cone", [2]string{"a1", "a2"}, false},
	}
	l := upLab(t, "--nat", "cone")
	srv, err := sync.NewServer(l.udpIn("server", labServer), sync.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
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
	var report []string
	for _, p := range pairs {
		l.run("nat", "a", p.natA)
		l.run("nat", "b", p.natB)
		line, err := l.matrixPair(srv, p)
		report = append(report, line)
		if err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
	t.Logf("NAT matrix (real Linux NAT, netlab):\n%s", strings.Join(report, "\n"))
}

// matrixPair connects the pair's two clients, groups them, and reports how
// they reach each other.
func (l *lab) matrixPair(srv *sync.Server, p labPair) (string, error) {
	t := l.t
	var cs [2]*sync.Client
	for i, h := range p.hosts {
		ip := l.run("addr", h)
		err := inNetns(labPrefix+h, func() (err error) {
			// UDP first, TCP when UDP gets no answer (a blocked home).
			cs[i], err = sync.DialClient(context.Background(), ip+":0", labServer, sync.ClientConfig{UDPTimeout: time.Second})
			return err
		})
		if err != nil {
			return p.name + ": no connection", err
		}
		defer cs[i].Close()
		waitFor(t, cs[i], sync.EventConnected)
		waitFor(t, srv, sync.EventConnected)
	}
	a, b := cs[0], cs[1]
	start := time.Now()
	if _, err := srv.CreateGroup([]net.HostID{a.ID(), b.ID()}, nil); err != nil {
		return p.name + ": no group", err
	}
	// Punching ends within its 3 s timeout; wait for both sides' verdict.
	var last [2]sync.Event
	var direct [2]time.Duration
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		for i, c := range cs {
			for {
				e, ok := c.Poll()
				if !ok {
					break
				}
				if e.Kind == sync.EventRelayStateChange {
					last[i] = e
					if !e.Relayed && direct[i] == 0 {
						direct[i] = e.Received.Sub(start)
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ab, _ := a.PeerState(b.ID())
	ba, _ := b.PeerState(a.ID())
	state := "direct"
	why := "-"
	switch {
	case ab.Relayed || ba.Relayed:
		state = "relayed"
		reasons := []string{}
		for i, e := range last {
			if e.Err != nil {
				reasons = append(reasons, p.hosts[i]+": "+e.Err.Error())
			}
		}
		why = strings.Join(reasons, "; ")
	}
	toDirect := "-"
	if state == "direct" {
		toDirect = max(direct[0], direct[1]).Round(time.Millisecond).String()
	}
	line := "  " + p.name + " (" + p.hosts[0] + "/" + a.Transport() + ", " + p.hosts[1] + "/" + b.Transport() + "): " + state + ", time to direct " + toDirect + ", reason: " + why
	// Every pair connects: reliable messages both ways, whatever the path.
	drain(a)
	drain(b)
	for i := range 20 {
		for _, pr := range [][2]*sync.Client{{a, b}, {b, a}} {
			if err := pr[0].Send(pr[1].ID(), net.Reliable, []byte{byte(i)}); err != nil {
				return line, err
			}
		}
	}
	for _, c := range cs {
		for i := range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			e, err := c.Next(ctx)
			for err == nil && e.Kind != sync.EventMessage {
				e, err = c.Next(ctx)
			}
			cancel()
			if err != nil {
				return line, errors.New("no exchange: " + err.Error())
			}
			if len(e.Data) != 1 || e.Data[0] != byte(i) {
				return line, errors.New("messages out of order")
			}
		}
	}
	if p.canDirect && state != "direct" {
		return line, errors.New("relayed, but this pair can go direct")
	}
	return line, nil
}
