package matchserver

import (
	"context"
	"testing"

	"github.com/skein-dev/skein/engine/chat"
	"github.com/skein-dev/skein/engine/net"
)

func TestOpenAuthProfiles(t *testing.T) {
	cases := []struct {
		creds      []byte
		user, data string
	}{
		{AppendProfile(nil, "0123456789abcdef", "Alice"), "Alice#012345", "Alice"},
		{AppendProfile(nil, "ABCDEF", "Bob\x07\x00"), chat.CleanName("Bob\x07\x00") + "#abcdef", chat.CleanName("Bob\x07\x00")},
		{AppendProfile(nil, "00ff", ""), "player#00ff", "player"},
		{nil, "", ""},                                                 // anonymous
		{[]byte("garbage"), "", ""},                                   // anonymous
		{AppendProfile(nil, "xyz", "Eve"), "", ""},                    // not hex
		{AppendProfile(nil, string(make([]byte, 40)), "Eve"), "", ""}, // too long
	}
	for _, c := range cases {
		res, err := OpenAuth(context.Background(), &net.AuthRequest{Credentials: c.creds})
		if err != nil || res.User != c.user || string(res.Data) != c.data {
			t.Errorf("%q: %+v %v, want %q %q", c.creds, res, err, c.user, c.data)
		}
	}
	if DisplayName("Alice#012345") != "Alice" || DisplayName("alice") != "alice" || DisplayName("#x") != "#x" {
		t.Fatal("DisplayName")
	}
}

// FuzzParseProfile: any credentials parse or are refused without a panic;
// what parses is bounded.
func FuzzParseProfile(f *testing.F) {
	f.Add(AppendProfile(nil, "0123456789abcdef", "Alice"))
	f.Add([]byte(profileMagic + "\n"))
	f.Add([]byte(profileMagic + "zz\nname"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, name, err := ParseProfile(b)
		if err != nil {
			return
		}
		if id == "" || len(id) > MaxProfileID || len([]rune(name)) > 64 {
			t.Fatalf("accepted %q %q", id, name)
		}
		res, _ := OpenAuth(context.Background(), &net.AuthRequest{Credentials: b})
		if len(res.User) > net.MaxUserID || len(res.Data) > net.MaxUserData {
			t.Fatalf("user %d bytes, data %d", len(res.User), len(res.Data))
		}
	})
}
