package net

import "testing"

// Every drop reason and birthday phase has a name of its own: a reason
// added without one (dropNames is an array, filled with "" past its
// literal) would be an empty metrics label, shared by every such reason.
func TestReasonAndPhaseNames(t *testing.T) {
	seen := map[string]bool{}
	for r := range NumDropReasons {
		name := r.String()
		if name == "" || name == "unknown" || seen[name] {
			t.Errorf("drop reason %d: name %q (empty, a fallback, or taken)", int(r), name)
		}
		seen[name] = true
	}
	if got := DropQueueBytes.String(); got != "queue_bytes" {
		t.Errorf("DropQueueBytes is %q, want queue_bytes", got)
	}
	for p, want := range map[BirthdayPhase]string{BirthdayNone: "none", BirthdayRunning: "running", BirthdayWon: "won", BirthdayFailed: "failed", BirthdayFailed + 1: "BirthdayPhase(4)"} {
		if got := p.String(); got != want {
			t.Errorf("birthday phase %d is %q, want %q", int(p), got, want)
		}
	}
}
