package headless

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestRun runs four bots on an embedded server and reads their reports.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for a few seconds")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3500*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	err := Run(ctx, Config{Bots: 4, Every: time.Second, Out: &out, Map: "Pit"})
	if err != context.DeadlineExceeded {
		t.Fatalf("Run: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	t.Logf("%s", out.String())
	if len(lines) < 4 || !strings.Contains(lines[1], "match") || !strings.Contains(lines[1], "created, 4 bots") {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last, "4 clients in 1 matches") || strings.Contains(last, "per member ↑ 0.0 kB/s") {
		t.Errorf("last report: %s", last)
	}
}

func TestSummarize(t *testing.T) {
	if s := summarize([]float64{3, 1, 2}); s != (Summary{Mean: 2, Min: 1, Max: 3}) {
		t.Errorf("summarize = %+v", s)
	}
	if s := summarize(nil); s != (Summary{}) {
		t.Errorf("summarize(nil) = %+v", s)
	}
}
