package portmap_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/skein-dev/skein/engine/portmap"
)

func pcpSeed(result byte) []byte {
	b := make([]byte, 60)
	b[0], b[1], b[3] = 2, 0x81, result
	binary.BigEndian.PutUint32(b[4:8], 7200)
	b[36] = 17
	binary.BigEndian.PutUint16(b[40:42], 40000)
	binary.BigEndian.PutUint16(b[42:44], 40001)
	b[54], b[55], b[56], b[57], b[58], b[59] = 0xff, 0xff, 203, 0, 113, 101
	return b
}

// FuzzPCPResponse: any datagram decodes or fails cleanly; a success keeps
// its fields inside the datagram's bounds.
func FuzzPCPResponse(f *testing.F) {
	f.Add(pcpSeed(0))
	f.Add(pcpSeed(2))
	f.Add(pcpSeed(0)[:24])
	f.Add([]byte{0, 128, 0, 1, 0, 0, 0, 0})
	f.Add(append(pcpSeed(0), make([]byte, 1100)...))
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := portmap.ParsePCPResponse(b)
		if err == nil && (len(b) < 60 || len(b) > 1100) {
			t.Fatalf("accepted %d bytes: %+v", len(b), r)
		}
		// As the answer to the seeds' request: taken, or dropped with a
		// reason the exchange counts.
		var nonce [12]byte
		if err := portmap.PCPMapAnswer(b, nonce, 40000, 7200); err != nil {
			if _, ok := portmap.DropOf(err); !ok {
				t.Fatalf("%x: error %v carries no drop reason", b, err)
			}
		} else if len(b) < 60 || b[3] != 0 {
			t.Fatalf("%x: taken", b)
		}
	})
}

// FuzzNATPMPResponse: any datagram decodes or fails cleanly.
func FuzzNATPMPResponse(f *testing.F) {
	f.Add([]byte{0, 128, 0, 0, 0, 0, 0, 1, 203, 0, 113, 101})
	f.Add([]byte{0, 129, 0, 0, 0, 0, 0, 1, 0x9c, 0x40, 0x9c, 0x41, 0, 0, 0x1c, 0x20})
	f.Add([]byte{0, 129, 0, 2, 0, 0, 0, 1})
	f.Add([]byte{0, 129, 0, 0, 0, 0, 0, 1, 0x9c})
	f.Add([]byte{1, 128})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := portmap.ParseNATPMPResponse(b); err == nil && len(b) < 8 {
			t.Fatalf("accepted %d bytes", len(b))
		}
		if err := portmap.NATPMPMapAnswer(b, 40000, 7200); err != nil {
			if _, ok := portmap.DropOf(err); !ok {
				t.Fatalf("%x: error %v carries no drop reason", b, err)
			}
		} else if len(b) < 16 {
			t.Fatalf("%x: taken", b)
		}
	})
}

// FuzzAnnouncement: any datagram on the announcement socket, from the
// gateway or not, is counted exactly once (an announcement or a drop) and
// calls for a renewal only when it is a valid one from the gateway.
func FuzzAnnouncement(f *testing.F) {
	pcp := make([]byte, 24)
	pcp[0], pcp[1] = 2, 0x80
	f.Add(pcp, true)
	f.Add(pcp, false)
	f.Add([]byte{0, 128, 0, 0, 0, 0, 0, 9, 203, 0, 113, 101}, true)
	f.Add([]byte{0, 128, 0, 3, 0, 0, 0, 9, 203, 0, 113, 101}, true)
	f.Add([]byte{2, 0x81, 0, 0}, true)
	f.Add(append(pcp, make([]byte, 1100)...), true)
	f.Add([]byte{}, true)
	gw := netip.MustParseAddr("10.1.0.1")
	f.Fuzz(func(t *testing.T, b []byte, fromGateway bool) {
		from := netip.MustParseAddrPort("10.1.0.66:5351")
		if fromGateway {
			from = netip.AddrPortFrom(gw, 5351)
		}
		renew, st := portmap.Announced(b, from, gw)
		if st.Announcements+st.Dropped() != 1 {
			t.Fatalf("%x: counted %d times: %+v", b, st.Announcements+st.Dropped(), st)
		}
		if renew != (st.Announcements == 1) || (renew && !fromGateway) {
			t.Fatalf("%x from the gateway %v: renew %v, stats %+v", b, fromGateway, renew, st)
		}
		if a, err := portmap.ParseAnnouncement(b); err == nil && (len(b) < 12 || len(b) > 1100) {
			t.Fatalf("%x: accepted %+v", b, a)
		}
	})
}

// FuzzSSDPResponse: any datagram gives a URL on the gateway or an error.
func FuzzSSDPResponse(f *testing.F) {
	gw := netip.MustParseAddr("10.1.0.1")
	f.Add([]byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: http://10.1.0.1:39743/rootDesc.xml\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nLOCATION: http://evil.example/x\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nLOCATION: http://[::ffff:10.1.0.1]:80/x\r\n\r\n"))
	f.Add([]byte("NOTIFY * HTTP/1.1\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := portmap.ParseSSDPResponse(b, gw)
		if err != nil {
			return
		}
		if a, perr := netip.ParseAddr(u.Hostname()); perr != nil || a.Unmap() != gw || u.Scheme != "http" {
			t.Fatalf("accepted %v", u)
		}
	})
}

// FuzzRouteTable: any route table text gives a gateway or ErrNoGateway.
func FuzzRouteTable(f *testing.F) {
	f.Add([]byte(routeTable))
	f.Add([]byte("Iface\tDestination\tGateway\n"))
	f.Add([]byte("Iface\nx 00000000 zz 0003 0 0 0 00000000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if gw, err := portmap.ParseRouteTable(b); err == nil && (!gw.Is4() || gw.IsUnspecified()) {
			t.Fatalf("gateway %v", gw)
		}
	})
}

const routeTable = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
	"eth0\t0000010A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
	"eth0\t00000000\t0100010A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"

func TestRouteTable(t *testing.T) {
	gw, err := portmap.ParseRouteTable([]byte(routeTable))
	if err != nil || gw != netip.MustParseAddr("10.1.0.1") {
		t.Fatalf("gateway %v, %v; want 10.1.0.1", gw, err)
	}
	if _, err := portmap.ParseRouteTable([]byte(routeTable[:150])); err == nil {
		t.Fatal("a table without a default route gave a gateway")
	}
}

func TestSSDPResponse(t *testing.T) {
	gw := netip.MustParseAddr("10.1.0.1")
	u, err := portmap.ParseSSDPResponse([]byte("HTTP/1.1 200 OK\r\nLOCATION: http://10.1.0.1:39743/rootDesc.xml\r\n\r\n"), gw)
	if err != nil || u.String() != "http://10.1.0.1:39743/rootDesc.xml" {
		t.Fatalf("%v, %v", u, err)
	}
	for _, bad := range []string{
		"HTTP/1.1 200 OK\r\nLOCATION: http://10.1.0.2/x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nLOCATION: http://router.lan/x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",
		"garbage",
	} {
		if u, err := portmap.ParseSSDPResponse([]byte(bad), gw); err == nil {
			t.Fatalf("%q accepted: %v", bad, u)
		}
	}
}
