package trust

import (
	"bytes"
	"errors"
	"testing"

	"github.com/skein-dev/skein/engine/net"
)

// FuzzParse feeds the known-servers parser arbitrary files: it returns
// entries or ErrBadFile, never panics, and what it accepts survives a
// format/parse round trip unchanged.
func FuzzParse(f *testing.F) {
	id, err := net.NewIdentity()
	if err != nil {
		f.Fatal(err)
	}
	k := id.Current()
	f.Add([]byte(""))
	f.Add([]byte("# comment\n\n10.0.0.5:7777 " + k.String() + "\n"))
	f.Add([]byte("[::1]:7777 " + k.Fingerprint() + "\r\narena.example:1 " + k.String() + "\n"))
	f.Add([]byte("a:1 " + k.String() + "\na:1 " + k.String() + "\n"))
	f.Add([]byte("a:1 SHA256:\n"))
	f.Add([]byte("a:1\x00 b\n"))
	f.Add(format(map[string]entry{"h:1": {fp: k.Fingerprint(), key: k}, "g:2": {fp: k.Fingerprint()}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parse(data)
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("error %v is not ErrBadFile", err)
			}
			return
		}
		out := format(m)
		m2, err := parse(out)
		if err != nil {
			t.Fatalf("formatted store does not parse: %v\n%q", err, out)
		}
		if len(m2) != len(m) {
			t.Fatalf("round trip: %d entries, want %d", len(m2), len(m))
		}
		for n, e := range m {
			if m2[n] != e {
				t.Fatalf("round trip changed %s: %+v -> %+v", n, e, m2[n])
			}
		}
		if !bytes.Equal(format(m2), out) {
			t.Fatal("format is not stable")
		}
	})
}
