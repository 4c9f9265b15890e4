package matchserver_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/skein-dev/skein/engine/net"
)

// TestMalformedMessagesCounted: messages a modified client sends that the
// group layer cannot read (a group message shorter than its header, a
// control message with an unknown operation) are dropped, show in
// skein_drops_total{reason="malformed"}, and the client's lobby calls go on
// being answered.
func TestMalformedMessagesCounted(t *testing.T) {
	srv, dial := start(t)
	a := dial()[0]
	malformed := func() float64 {
		res, err := http.Get("http://" + srv.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := regexp.MustCompile(`(?m)^skein_drops_total\{reason="malformed"\} (\S+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("/metrics lacks skein_drops_total{reason=\"malformed\"}")
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := malformed()
	bad := [][]byte{{0x02}, {0x02, 1, 2, 3, 4}, {0x01, 99}, {0x01}, {0x7f, 'x'}}
	for _, b := range bad {
		if err := a.Host().Send(net.ServerID, net.Reliable, b); err != nil {
			t.Fatal(err)
		}
	}
	// The lobby answers a call sent after them (the reliable stream keeps
	// the order): by then the server has read and counted them all.
	if ms, err := a.List(ctx(t)); err != nil || len(ms) != 0 {
		t.Fatalf("list after the malformed messages: %v %v", ms, err)
	}
	if got := malformed() - before; got != float64(len(bad)) {
		t.Fatalf("skein_drops_total{reason=\"malformed\"} grew by %v, want %d", got, len(bad))
	}
}
