package netplay

import (
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
			up := host.Client().Host().Stats().Fanned.DatagramsOut
			var in uint64
			for _, m := range members {
				in += m.Client().Host().Stats().Fanned.DatagramsIn
			}
			if tc.fanout && (up == 0 || in == 0) {
				t.Fatalf("over its uplink the host sent %d fan-out datagrams, members got %d fanned copies", up, in)
			}
			if !tc.fanout && up != 0 {
				t.Fatalf("with no cap the host still sent %d fan-out datagrams", up)
			}
		})
	}
}
