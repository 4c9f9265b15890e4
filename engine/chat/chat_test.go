package chat

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello", "hello"},
		{"  padded\t", "padded"},
		{"two\nlines\r\nhere", "two lines  here"},
		{"bell\a and escape \x1b[31mred\x1b[0m", "bell and escape [31mred[0m"},
		{"nul\x00 del\x7f c1\u0085x\u009b", "nul del c1 x"},
		{"bidi \u202eevil\u202c \u2066iso\u2069", "bidi evil iso"},
		{"zero\u200bwidth\ufeff", "zerowidth"},
		{"joiners kept: 👩\u200d💻 و\u200cی", "joiners kept: 👩\u200d💻 و\u200cی"},
		{"bad utf8 \xff\xfe end", "bad utf8  end"},
		{"e\u0301\u0301\u0301\u0301\u0301\u0301 zalgo", "e\u0301\u0301\u0301\u0301 zalgo"},
		{"combining split by a control: a\u0301\u0301\u0301\x01\u0301\u0301", "combining split by a control: a\u0301\u0301\u0301\u0301"},
		{"line\u2028separator", "line separator"},
		{"\x00\x01\x02", ""},
		{"日本語 Ünïcødé", "日本語 Ünïcødé"},
	}
	for _, tt := range tests {
		if got := Sanitize(tt.in); got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClean(t *testing.T) {
	if got, err := Clean("  hi\x07 there "); err != nil || got != "hi there" {
		t.Errorf("Clean = %q, %v", got, err)
	}
	if _, err := Clean(" \t\x1b "); !errors.Is(err, ErrEmpty) {
		t.Errorf("blank: %v, want ErrEmpty", err)
	}
	exact := strings.Repeat("é", MaxRunes)
	if got, err := Clean(exact); err != nil || got != exact {
		t.Errorf("a message of exactly MaxRunes is refused: %v", err)
	}
	var tl *TooLongError
	_, err := Clean(exact + "x")
	if !errors.As(err, &tl) || tl.Runes != MaxRunes+1 || tl.Limit != MaxRunes || !errors.Is(err, ErrTooLong) {
		t.Errorf("MaxRunes+1: %v", err)
	}
	if err.Error() != "message too long: 281 characters, the limit is 280" {
		t.Errorf("message %q", err)
	}
	// Huge input is refused on its size alone.
	if _, err := Clean(strings.Repeat("a", 1<<20)); !errors.Is(err, ErrTooLong) {
		t.Errorf("1 MiB: %v", err)
	}
	// Control characters do not count against the limit.
	if _, err := Clean(strings.Repeat("a", MaxRunes) + "\x00\x00"); err != nil {
		t.Errorf("controls counted: %v", err)
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Ana", "Ana"},
		{" \x1b[2JAna\n", "[2JAna"},
		{strings.Repeat("x", 30), strings.Repeat("x", MaxNameRunes)},
		{strings.Repeat("x", MaxNameRunes-1) + " yz", strings.Repeat("x", MaxNameRunes-1)},
		{"\u202e", ""},
		{strings.Repeat("é", MaxBytes), strings.Repeat("é", MaxNameRunes)},
	}
	for _, tt := range tests {
		if got := CleanName(tt.in); got != tt.want {
			t.Errorf("CleanName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzSanitize: whatever comes in, the output is valid UTF-8 with no control
// or invisible formatting characters, no more than 4 marks in a row, no
// outer spaces, and sanitizing again changes nothing. Clean and CleanName
// never panic and honour their limits.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"hello", "a\x1b[31mb\n", "\u202eevil", "e\u0301\u0301\u0301\u0301\u0301", "\xff", " \t "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s := Sanitize(in)
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 out: %q", s)
		}
		if again := Sanitize(s); again != s {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, s, again)
		}
		if s != strings.TrimFunc(s, unicode.IsSpace) {
			t.Fatalf("outer spaces: %q", s)
		}
		marks := 0
		for _, r := range s {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d' {
				t.Fatalf("%U left in %q", r, s)
			}
			if unicode.In(r, unicode.Mn, unicode.Me) {
				if marks++; marks > maxMarks {
					t.Fatalf("%d marks in a row in %q", marks, s)
				}
			} else {
				marks = 0
			}
		}
		if c, err := Clean(in); err == nil && (c != s || utf8.RuneCountInString(c) > MaxRunes) {
			t.Fatalf("Clean(%q) = %q", in, c)
		}
		if n := CleanName(in); utf8.RuneCountInString(n) > MaxNameRunes || CleanName(n) != n {
			t.Fatalf("CleanName(%q) = %q", in, n)
		}
	})
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestLimiterBurstThenRate(t *testing.T) {
	l := NewLimiter[uint32](LimiterConfig{Rate: 2, Burst: 3})
	var got []Verdict
	for range 6 { // a paste of six lines at once
		got = append(got, l.Allow(7, t0))
	}
	want := []Verdict{{Allow: true}, {Allow: true}, {Allow: true}, {FirstDrop: true}, {}, {}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Another sender is not affected.
	if v := l.Allow(8, t0); !v.Allow {
		t.Errorf("another sender: %+v", v)
	}
	// Half a second later (rate 2/s) one more is allowed, and it reports
	// the three dropped before it.
	if v := l.Allow(7, t0.Add(500*time.Millisecond)); v != (Verdict{Allow: true, Dropped: 3}) {
		t.Errorf("after refill: %+v", v)
	}
	if v := l.Allow(7, t0.Add(500*time.Millisecond)); v != (Verdict{FirstDrop: true}) {
		t.Errorf("a new run of drops: %+v", v)
	}
	// A long silence refills no more than the burst.
	for i := range 4 {
		v := l.Allow(7, t0.Add(time.Hour))
		if v.Allow != (i < 3) {
			t.Errorf("after an hour, message %d: %+v", i, v)
		}
	}
}

func TestLimiterBounded(t *testing.T) {
	l := NewLimiter[int](LimiterConfig{Rate: 1, Burst: 2, MaxSenders: 2})
	l.Allow(1, t0)
	l.Allow(2, t0)
	if v := l.Allow(3, t0); v.Allow {
		t.Error("a third sender fits in a limiter of two while both are busy")
	}
	if len(l.senders) != 2 {
		t.Errorf("%d senders tracked", len(l.senders))
	}
	// Once 1 and 2 are quiet (buckets full again) they make room.
	if v := l.Allow(3, t0.Add(2*time.Second)); !v.Allow {
		t.Error("no room after the others went quiet")
	}
	l.Forget(3)
	if _, ok := l.senders[3]; ok {
		t.Error("Forget kept the sender")
	}
}
