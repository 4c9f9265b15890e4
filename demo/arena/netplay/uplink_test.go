package netplay

import (
	"fmt"
	"testing"
	"time"
)

// A host over its uplink budget sends its snapshots up once and the match
// server fans them out; with no cap it sends every copy itself. Either way
// every member keeps getting snapshots.
func TestHostSnapshotsUseTheServerFanoutOverTheUplink(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the embedded server")
	}
	for _, tc := range []struct {
		name   string
		uplink int
		fanout bool
	}{
		{"over the budget", 2000, true},
		{"no cap", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(i int) Config {
				if i == 0 {
					return Config{Uplink: tc.uplink}
				}
				return Config{}
			}, "Host", "Ann", "Bo", "Cy")
			host, members := r.all[0], r.all[1:]
			// Every peer starts on the relay and hole punching moves it to
			// a direct path; until then the host's snapshots to it go
			// through the server's fan-out whatever the uplink (a relayed
			// peer is always reached so). Count from when every peer of the
			// host is direct: on a loaded machine the first snapshots could
			// go out before that, and "no cap" then saw a fan-out datagram.
			direct := func() (bool, string) {
				for _, m := range members {
					st, ok := host.Client().Host().LinkStats(m.ID())
					if !ok || st.Relayed {
						return false, fmt.Sprintf("the host's link to %v: %q", m.ID(), st.Path)
					}
				}
				return true, ""
			}
			r.until("every peer of the host is direct", func() bool { ok, _ := direct(); return ok })
			fanned := func() (up, in uint64) {
				for _, m := range members {
					in += m.Client().Host().Stats().Fanned.DatagramsIn
				}
				return host.Client().Host().Stats().Fanned.DatagramsOut, in
			}
			up0, in0 := fanned()
			before := make([]uint64, len(members))
			for i, m := range members {
				before[i] = m.Counters().Snapshots
			}
			r.settle(time.Second)
			r.until("every member gets snapshots", func() bool {
				for i, m := range members {
					if m.Counters().Snapshots < before[i]+10 {
						return false
					}
				}
				return true
			})
			up, in := fanned()
			up, in = up-up0, in-in0
			if tc.fanout && (up == 0 || in == 0) {
				t.Fatalf("over its uplink the host sent %d fan-out datagrams, members got %d fanned copies", up, in)
			}
			if !tc.fanout && up != 0 {
				if ok, why := direct(); !ok {
					t.Fatalf("with no cap the host sent %d fan-out datagrams; a peer went back to the relay meanwhile (%s)", up, why)
				}
				t.Fatalf("with no cap the host still sent %d fan-out datagrams to peers it reaches directly", up)
			}
		})
	}
}
