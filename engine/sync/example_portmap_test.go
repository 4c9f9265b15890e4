package sync_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skein-dev/skein/engine/portmap"
	"github.com/skein-dev/skein/engine/sync"
)

// A client says whether its router mapped its port, with which protocol and
// at which public address, or why not. On loopback there is nothing for a
// router to map; on a LAN the same switch prints the mapped address.
func ExampleClient_PortMapping() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := sync.ListenServer("127.0.0.1:0", sync.ServerConfig{NoTCP: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	c, err := sync.DialClient(ctx, "127.0.0.1:0", srv.Host().LocalAddr(), sync.ClientConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	switch s := c.PortMapping(); {
	case s.Available():
		fmt.Println("peers may reach us at", s.Mapping.External, "mapped by", s.Mapping.Protocol)
	case s.State == portmap.Off && errors.Is(s.Err, sync.ErrPortMapNotUDP):
		fmt.Println("no port mapping:", s.Err)
	default:
		fmt.Println("port mapping:", s.State, s.Err)
	}
	// Output: no port mapping: skein/sync: no UDP socket to map
}
