package portmap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/portmap"
)

const rootDesc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>CONTROL</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`

const soapEnvelope = `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>%s</s:Body></s:Envelope>`

// fakeIGD is a UPnP Internet Gateway Device on the loopback: an SSDP
// responder and an HTTP server with one WANIPConnection:1 service.
type fakeIGD struct {
	ssdp     *net.UDPConn
	http     *httptest.Server
	desc     string // the description to serve (CONTROL replaced)
	control  string // the control URL to put in it ("" : /ctl/IPConn)
	conflict atomic.Int32
	added    chan string // "external port, lease" per AddPortMapping that succeeded
	deleted  chan string // external port per DeletePortMapping
	soapSeen atomic.Int32
}

func newFakeIGD(t *testing.T, set func(*fakeIGD)) *fakeIGD {
	g := &fakeIGD{desc: rootDesc, added: make(chan string, 16), deleted: make(chan string, 16)}
	if set != nil {
		set(g)
	}
	g.http = httptest.NewServer(http.HandlerFunc(g.serveHTTP))
	t.Cleanup(g.http.Close)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	g.ssdp = c
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if bytes.HasPrefix(buf[:n], []byte("M-SEARCH")) {
				c.WriteToUDPAddrPort([]byte("HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: "+g.http.URL+"/rootDesc.xml\r\n\r\n"), from)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return g
}

func (g *fakeIGD) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/rootDesc.xml":
		control := g.control
		if control == "" {
			control = "/ctl/IPConn"
		}
		io.WriteString(w, strings.Replace(g.desc, "CONTROL", control, 1))
	case r.Method == http.MethodPost && r.URL.Path == "/ctl/IPConn":
		g.soapSeen.Add(1)
		body, _ := io.ReadAll(r.Body)
		action := r.Header.Get("SOAPACTION")
		field := func(name string) string {
			_, after, _ := strings.Cut(string(body), "<"+name+">")
			v, _, _ := strings.Cut(after, "</"+name+">")
			return v
		}
		switch {
		case strings.HasSuffix(action, `#GetExternalIPAddress"`):
			fmt.Fprintf(w, soapEnvelope, `<u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>198.51.100.7</NewExternalIPAddress></u:GetExternalIPAddressResponse>`)
		case strings.HasSuffix(action, `#AddPortMapping"`):
			if g.conflict.Add(-1) >= 0 {
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintf(w, soapEnvelope, `<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault>`)
				return
			}
			g.added <- field("NewExternalPort") + "," + field("NewLeaseDuration") + "," + field("NewInternalClient")
			fmt.Fprintf(w, soapEnvelope, `<u:AddPortMappingResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"></u:AddPortMappingResponse>`)
		case strings.HasSuffix(action, `#DeletePortMapping"`):
			g.deleted <- field("NewExternalPort")
			fmt.Fprintf(w, soapEnvelope, `<u:DeletePortMappingResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"></u:DeletePortMappingResponse>`)
		default:
			http.Error(w, "unknown action", http.StatusBadRequest)
		}
	default:
		http.NotFound(w, r)
	}
}

func (g *fakeIGD) start(t *testing.T) (*portmap.Mapper, chan portmap.Status) {
	ch := make(chan portmap.Status, 16)
	cfg := portmap.Config{
		Gateway:   netip.MustParseAddr("127.0.0.1"),
		Protocols: []portmap.Protocol{portmap.UPnP},
		Lifetime:  time.Hour,
		Retry:     time.Hour,
		OnChange:  func(s portmap.Status) { ch <- s },
	}
	m := portmap.Start(context.Background(), 40000, portmap.WithPorts(cfg, 9, g.ssdp.LocalAddr().(*net.UDPAddr).AddrPort().Port()))
	t.Cleanup(func() { m.Close() })
	return m, ch
}

func recv(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("nothing in 10 s")
	}
	return ""
}

// UPnP: discovery, description, the external address; a taken port
// (ConflictInMappingEntry) makes the mapper try another; Close deletes the
// port it got.
func TestUPnPMapsAroundAConflict(t *testing.T) {
	g := newFakeIGD(t, func(g *fakeIGD) { g.conflict.Store(1) })
	m, ch := g.start(t)
	s := nextOf(t, ch)
	if s.State != portmap.Mapped || s.Mapping.Protocol != portmap.UPnP || s.Mapping.External.Addr() != netip.MustParseAddr("198.51.100.7") {
		t.Fatalf("status %+v", s)
	}
	added := recv(t, g.added)
	want := fmt.Sprintf("%d,3600,127.0.0.1", s.Mapping.External.Port())
	if added != want || s.Mapping.External.Port() == 40000 {
		t.Fatalf("router got AddPortMapping %q, mapping %v: want another port than the taken 40000 (%s)", added, s.Mapping.External, want)
	}
	m.Close()
	if del := recv(t, g.deleted); del != fmt.Sprint(s.Mapping.External.Port()) {
		t.Fatalf("deleted port %s, want %d", del, s.Mapping.External.Port())
	}
}

// A description larger than MaxBody, or one whose control URL points off
// the gateway, gives no mapping (and no request elsewhere).
func TestUPnPHostileDescription(t *testing.T) {
	for name, set := range map[string]func(*fakeIGD){
		"huge": func(g *fakeIGD) {
			g.desc = strings.Replace(rootDesc, "<device>", "<device>"+strings.Repeat(" ", 2*portmap.MaxBody), 1)
		},
		"off gateway": func(g *fakeIGD) { g.control = "http://127.0.0.2:9/ctl/IPConn" }, // another host than the gateway (a loopback one, should the check fail)
	} {
		t.Run(name, func(t *testing.T) {
			g := newFakeIGD(t, set)
			_, ch := g.start(t)
			s := nextOf(t, ch)
			if s.State != portmap.Unavailable || (!errors.Is(s.Err, portmap.ErrMalformed) && !errors.Is(s.Err, portmap.ErrNoIGD)) {
				t.Fatalf("status %+v: want unavailable, malformed or no IGD", s)
			}
			if n := g.soapSeen.Load(); n != 0 {
				t.Fatalf("%d SOAP calls", n)
			}
		})
	}
}

// FuzzUPnPDescription: any description decodes or fails cleanly.
func FuzzUPnPDescription(f *testing.F) {
	f.Add([]byte(strings.Replace(rootDesc, "CONTROL", "/ctl/IPConn", 1)))
	f.Add([]byte(`<root xmlns="urn:schemas-upnp-org:device-1-0"><URLBase>http://10.1.0.1:5000/</URLBase><device></device></root>`))
	f.Add([]byte(`<root><device><deviceList><device><deviceList>`))
	f.Add([]byte("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"latin1\"?><root/>"))
	loc, _ := url.Parse("http://10.1.0.1:5000/rootDesc.xml")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = portmap.DecodeDescription(bytes.NewReader(b), loc)
	})
}
