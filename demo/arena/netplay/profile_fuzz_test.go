package netplay

import (
	"encoding/hex"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzParseProfile feeds parseProfile arbitrary file contents (the
// profile file is the user's to edit, or another program's to spoil):
// nothing panics, more than maxProfileFile bytes are refused as too large,
// and an accepted profile has an ID of 16 hex digits and a name of at
// most MaxName characters.
func FuzzParseProfile(f *testing.F) {
	f.Add([]byte("# skein arena profile: who you are to match servers\nid 0123456789abcdef\nname Alice\n"))
	f.Add([]byte("id 0123456789ABCDEF\nname   \x07Bob the very long named player of the arena\n"))
	f.Add([]byte("id nothex\n"))
	f.Add([]byte("name only\n"))
	f.Add([]byte("id 0123456789abcdef0\r\nid 0123456789abcdef\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseProfile(b)
		if len(b) > maxProfileFile {
			if !errors.Is(err, errProfileTooLarge) {
				t.Fatalf("%d bytes: %v, want errProfileTooLarge", len(b), err)
			}
			return
		}
		if err != nil {
			return
		}
		if id, err := hex.DecodeString(p.ID); err != nil || len(id) != 8 {
			t.Fatalf("accepted ID %q", p.ID)
		}
		if n := utf8.RuneCountInString(p.Name); n > MaxName {
			t.Fatalf("accepted name %q: %d characters, over %d", p.Name, n, MaxName)
		}
	})
}
