// Package chat holds the rules every Skein chat applies to text, whatever
// shows it (the terminal chat in demo/chat, the arena's chat box): what a
// message may contain, how long it may be, and how fast one sender may
// talk. Chat text comes from other players, so it is untrusted input:
// receivers apply Clean and a Limiter to every message, senders apply Clean
// before sending so that a player sees at once why a line was refused.
package chat

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a message and a name.
const (
	// MaxRunes is the longest message, in characters, after Sanitize.
	MaxRunes = 280
	// MaxBytes bounds a message's raw size before any other work: beyond
	// it a message is refused without being read. Every message within
	// MaxRunes fits.
	MaxBytes = 4 * MaxRunes
	// MaxNameRunes is the longest name; longer names are cut.
	MaxNameRunes = 24
	// maxMarks bounds the combining marks kept on one character, against
	// "zalgo" text that draws far outside its line.
	maxMarks = 4
)

// Errors of Clean.
var (
	// ErrEmpty: nothing is left after Sanitize.
	ErrEmpty = errors.New("chat: empty message")
	// ErrTooLong: over MaxRunes characters or MaxBytes bytes (see
	// TooLongError for the figures).
	ErrTooLong = errors.New("chat: message too long")
)

// TooLongError says how long a refused message was.
type TooLongError struct {
	Runes, Limit int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("message too long: %d characters, the limit is %d", e.Runes, e.Limit)
}

// Unwrap returns ErrTooLong, for errors.Is.
func (e *TooLongError) Unwrap() error { return ErrTooLong }

// Sanitize returns s fit to show on one line: invalid UTF-8 dropped; tabs,
// newlines and other line or paragraph separators turned into spaces; other
// control characters and invisible formatting characters (bidirectional
// overrides, zero-width spaces; but not the joiners some scripts and emoji
// need) removed; at most 4 combining marks per character; spaces trimmed
// at both ends. Sanitize(Sanitize(s)) == Sanitize(s).
func Sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	marks := 0 // combining marks written since the last other character
	for _, r := range strings.ToValidUTF8(s, "") {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' ||
			r == '\u0085' || r == '\u2028' || r == '\u2029':
			r = ' '
		case unicode.IsControl(r):
			continue
		case unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d':
			continue
		}
		if unicode.In(r, unicode.Mn, unicode.Me) {
			if marks >= maxMarks {
				continue
			}
			marks++
		} else {
			marks = 0
		}
		b.WriteRune(r)
	}
	return strings.TrimFunc(b.String(), unicode.IsSpace)
}

// Clean checks a message to send or one received: it returns the sanitized
// text, ErrEmpty, or a *TooLongError.
func Clean(text string) (string, error) {
	if len(text) > MaxBytes {
		return "", &TooLongError{Runes: utf8.RuneCountInString(text), Limit: MaxRunes}
	}
	s := Sanitize(text)
	if s == "" {
		return "", ErrEmpty
	}
	if n := utf8.RuneCountInString(s); n > MaxRunes {
		return "", &TooLongError{Runes: n, Limit: MaxRunes}
	}
	return s, nil
}

// CleanName returns a name fit to show: sanitized, cut to MaxNameRunes
// characters (and MaxBytes bytes before that). It may be empty: show
// something else then, such as the player's ID.
func CleanName(name string) string {
	if len(name) > MaxBytes {
		name = name[:MaxBytes]
	}
	s := Sanitize(name)
	if utf8.RuneCountInString(s) > MaxNameRunes {
		s = string([]rune(s)[:MaxNameRunes])
		s = strings.TrimFunc(s, unicode.IsSpace)
	}
	return s
}
