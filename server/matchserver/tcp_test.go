package matchserver_test

import (
	"context"
	"io"
	stdnet "net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/server/matchserver"
)

// The TCP fallback's refusals and open connections are in /metrics.
func TestTCPFallbackMetrics(t *testing.T) {
	srv, err := matchserver.New(matchserver.Config{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", ShutdownTimeout: 2 * time.Second,
		TCP: net.TCPConfig{MaxConnsPerIP: 1}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	metricsHave := func(want ...string) {
		t.Helper()
		var body []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			res, err := http.Get("http://" + srv.AdminAddr() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(res.Body)
			res.Body.Close()
			all := true
			for _, w := range want {
				all = all && strings.Contains(string(body), w+"\n")
			}
			if all {
				return
			}
		}
		t.Fatalf("/metrics lacks one of %q:\n%s", want, body)
	}
	held, err := stdnet.Dial("tcp", srv.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	metricsHave("skein_tcp_connections 1", "skein_tcp_accepted_total 1")
	// A second connection from the same address is refused.
	if c, err := stdnet.Dial("tcp", srv.UDPAddr().String()); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("a second connection from one address was served")
		}
		c.Close()
	}
	metricsHave(`skein_tcp_closed_total{reason="refused_per_ip"} 1`, "skein_tcp_connections 1")
	held.Close()
	metricsHave(`skein_tcp_closed_total{reason="client_closed"} 1`, "skein_tcp_connections 0")
}
