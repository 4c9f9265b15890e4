package impair_test

import (
	"fmt"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/impair"
)

// A socket whose outgoing datagrams are delayed by 50 ms and 10% of them
// lost: hand it to sync.NewClient (engine/sync) or net.NewHost instead of the raw one.
func Example() {
	raw, err := net.ListenUDP("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	conn := impair.Wrap(raw)
	defer conn.Close()
	conn.SetConditions(0.10, 50*time.Millisecond, 5*time.Millisecond)
	fmt.Printf("%+v\n", conn.Conditions())
	// Output: {Loss:0.1 Delay:50ms Jitter:5ms}
}
