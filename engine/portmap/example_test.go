package portmap_test

import (
	"context"
	"fmt"
	"net"

	"github.com/skein-dev/skein/engine/portmap"
)

// A Mapper keeps a mapping of a UDP socket's port on the home router while
// the program runs. (Not run as a test: it would ask this machine's real
// router.)
func Example() {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)

	m := portmap.Start(context.Background(), port, portmap.Config{
		// Called on the mapper's goroutine whenever the mapping changes.
		OnChange: func(s portmap.Status) {
			switch s.State {
			case portmap.Mapped:
				fmt.Printf("reachable at %v (%s, %v)\n", s.Mapping.External, s.Mapping.Protocol, s.Mapping.Lifetime)
			case portmap.Unavailable:
				fmt.Println("no port mapping:", s.Err)
			case portmap.Pending, portmap.Closed, portmap.Off:
			}
		},
	})
	defer m.Close() // deletes the mapping

	// ... use conn; m.Status() says where the mapping stands at any time.
}
