package matchserver

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skein-dev/skein/engine/net"
)

// TestNATGaugesOnePassPerScrape: skein_clients_nat{type} reports every
// type's count, from one count of the clients per scrape rather than one
// per type.
func TestNATGaugesOnePassPerScrape(t *testing.T) {
	var passes int
	var counts [net.NumNATTypes]int
	for i := range counts {
		counts[i] = 10*i + 1 // distinct, so that a count under the wrong label shows
	}
	reg := prometheus.NewRegistry()
	registerNATGauges(reg, func() [net.NumNATTypes]int { passes++; return counts })

	for scrape := 1; scrape <= 2; scrape++ {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(fams) != 1 || fams[0].GetName() != "skein_clients_nat" || len(fams[0].GetMetric()) != int(net.NumNATTypes) {
			t.Fatalf("scrape %d: %v", scrape, fams)
		}
		got := map[string]float64{}
		for _, m := range fams[0].GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "type" {
				t.Fatalf("labels %v", m.GetLabel())
			}
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
		for typ := range net.NumNATTypes {
			if v, ok := got[typ.String()]; !ok || v != float64(counts[typ]) {
				t.Errorf("scrape %d: type %q = %v (present %v), want %d", scrape, typ, v, ok, counts[typ])
			}
		}
		if passes != scrape {
			t.Fatalf("%d scrapes counted the clients %d times, want once each", scrape, passes)
		}
	}
}
