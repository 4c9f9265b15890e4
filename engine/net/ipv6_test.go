package net_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
)

// Two dual-stack clients, each behind its own symmetric IPv4 NAT (no
// direct IPv4 path between them) and each with a global IPv6 address (no
// NAT there), go direct over IPv6 when it is among their candidates, and
// stay relayed without it.
func TestIPv6CandidatesGoDirect(t *testing.T) {
	for _, withV6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4 only", true: "with v6"}[withV6], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := vnet.New(71)
				defer nw.Close()
				sym := vnet.NATType{Mapping: vnet.AddressPortDependent, Filtering: vnet.AddressPortDependent}
				sconn, _ := nw.Listen(srvAddr)
				srv, _ := net.NewHost(sconn, net.Config{Accept: true, RelayPolicy: func(from, to net.HostID) bool { return true }})
				defer srv.Close()
				var c []*net.Host
				v6 := []netip.AddrPort{netip.MustParseAddrPort("[2001:db8:a::1]:5000"), netip.MustParseAddrPort("[2001:db8:b::1]:5000")}
				for i, home := range []string{"10.0.1", "10.0.2"} {
					if _, err := nw.AddNAT(sym, netip.MustParseAddr("198.51.100."+string(rune('1'+i))), netip.MustParsePrefix(home+".0/24")); err != nil {
						t.Fatal(err)
					}
					conn, _ := nw.Listen(netip.MustParseAddrPort(home + ".1:5000"))
					if err := conn.AddAddr(v6[i]); err != nil {
						t.Fatal(err)
					}
					h, _ := net.NewHost(conn, net.Config{})
					defer h.Close()
					ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
					if err := h.Dial(ctx, srvAddr); err != nil {
						t.Fatal(err)
					}
					cancel()
					expect(t, h, net.EventConnected, net.ServerID)
					expect(t, srv, net.EventConnected, h.ID())
					c = append(c, h)
				}
				peer(t, c)
				for i, h := range c {
					other := c[1-i]
					pub, ok := srv.RemoteAddr(other.ID())
					if !ok {
						t.Fatal("no public address")
					}
					cands := []netip.AddrPort{pub}
					if withV6 {
						cands = append(cands, v6[1-i])
					}
					if err := h.Punch(other.ID(), cands); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(5 * time.Second)
				for i, h := range c {
					st, _ := h.LinkStats(c[1-i].ID())
					switch {
					case withV6 && (st.Relayed || !strings.HasPrefix(st.Path, "direct [2001:db8:")):
						t.Fatalf("client %d: path %q, want direct over IPv6", i, st.Path)
					case !withV6 && !st.Relayed:
						t.Fatalf("client %d: path %q through two symmetric NATs, want relayed", i, st.Path)
					}
					pathEvents(t, h)
				}
				// The pair exchanges over its path.
				if err := c[0].Send(c[1].ID(), net.Reliable, []byte("over v6")); err != nil {
					t.Fatal(err)
				}
				if e := expect(t, c[1], net.EventMessage, c[0].ID()); string(e.Data) != "over v6" || e.Relayed == withV6 {
					t.Fatalf("got %q relayed %v", e.Data, e.Relayed)
				}
			})
		})
	}
}
