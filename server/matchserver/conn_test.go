package matchserver_test

import (
	"net/netip"
	"testing"

	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/server/matchserver"
)

// TestNewClosesItsConnOnError: the server owns Config.Conn, so a New that
// fails closes it, whichever check fails (here NATProbe, which needs
// Listen): the caller cannot tell which errors would leave it open.
func TestNewClosesItsConnOnError(t *testing.T) {
	nw := vnet.New(1)
	defer nw.Close()
	addr := netip.MustParseAddrPort("10.0.0.1:7777")
	conn, err := nw.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := matchserver.New(matchserver.Config{Conn: conn, NATProbe: []string{"10.0.0.1:7778"}}); err == nil {
		t.Fatal("New with Conn and NATProbe accepted")
	}
	again, err := nw.Listen(addr)
	if err != nil {
		conn.Close()
		t.Fatalf("the conn New refused is still open: %v", err)
	}
	again.Close()
}
