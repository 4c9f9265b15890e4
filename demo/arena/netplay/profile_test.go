package netplay

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skein-dev/skein/demo/arena/sim"
	"github.com/skein-dev/skein/engine/net"
)

func TestProfile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg")
	p, err := LoadProfile(dir, "Alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ID) != 16 || p.Name != "Alice" {
		t.Fatalf("new profile %+v", p)
	}
	if fi, err := os.Stat(filepath.Join(dir, profileFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("profile file: %v %v", fi, err)
	}
	// The ID stays; no name keeps the stored one; a new name replaces it.
	again, err := LoadProfile(dir, "")
	if err != nil || again != p {
		t.Fatalf("reloaded %+v, %v", again, err)
	}
	renamed, err := LoadProfile(dir, "  Alicia\x07 ")
	if err != nil || renamed.ID != p.ID || renamed.Name != "Alicia" {
		t.Fatalf("renamed %+v, %v", renamed, err)
	}
	if err := os.WriteFile(filepath.Join(dir, profileFile), []byte("id nothex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadProfile(dir, "x"); err == nil {
		t.Fatal("bad profile file accepted")
	}
}

// endless is an endless stream of 'a's that counts the bytes read.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	e.n += int64(len(p))
	return len(p), nil
}

// TestProfileTooLarge: a profile file over 4 KiB is refused with a clear
// error after reading at most 4 KiB + 1 of it (an endless stream too, and
// a device is not read at all), and one of exactly 4 KiB is read.
func TestProfileTooLarge(t *testing.T) {
	var e endless
	if _, err := readLimited(&e, maxProfileFile); !errors.Is(err, errProfileTooLarge) {
		t.Fatalf("endless file: %v", err)
	}
	if e.n > maxProfileFile+1 {
		t.Fatalf("read %d bytes of an endless file to refuse it (limit %d)", e.n, maxProfileFile)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, profileFile)
	body := []byte("id 0123456789abcdef\nname Big\n")
	pad := func(n int) []byte {
		b := append([]byte(nil), body...)
		for len(b) < n {
			b = append(b, '#')
		}
		return b
	}
	if err := os.WriteFile(path, pad(maxProfileFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := LoadProfile(dir, ""); err != nil || p.ID != "0123456789abcdef" || p.Name != "Big" {
		t.Fatalf("a profile of exactly %d bytes: %+v, %v", maxProfileFile, p, err)
	}
	if err := os.WriteFile(path, pad(maxProfileFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadProfile(dir, "")
	if !errors.Is(err, errProfileTooLarge) {
		t.Fatalf("a profile of %d bytes: %v", maxProfileFile+1, err)
	}
	t.Logf("refused: %v", err)
	// The refused file is left alone (the player decides).
	if b, err := os.ReadFile(path); err != nil || len(b) != maxProfileFile+1 {
		t.Fatalf("the refused profile was changed: %d bytes, %v", len(b), err)
	}
	// A profile that is an endless device is refused too, not read at
	// all: it is no regular file.
	if _, err := os.Stat("/dev/zero"); err == nil {
		zdir := t.TempDir()
		if err := os.Symlink("/dev/zero", filepath.Join(zdir, profileFile)); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadProfile(zdir, ""); !errors.Is(err, errProfileNotFile) {
			t.Fatalf("a profile linked to /dev/zero: %v", err)
		}
	}
}

// TestPanelShowsUsers: the embedded server names each player by the
// profile it sent, and the other player's network panel row shows it.
func TestPanelShowsUsers(t *testing.T) {
	log := testLogger(t)
	local, ctx := startLocal(t, log)
	hp, _ := LoadProfile(t.TempDir(), "Hosty")
	gp, _ := LoadProfile(t.TempDir(), "Guesty")
	host, err := Dial(ctx, local.Addr(), Config{Name: "Host", Logger: log, Credentials: hp.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	host.CreateMatch("users", 2, DefaultOptions())
	for host.InMatch() == net.NoHost && ctx.Err() == nil {
		host.Tick(sim.Input{})
		time.Sleep(5 * time.Millisecond)
	}
	guest, err := Dial(ctx, local.Addr(), Config{Name: "Guest", Logger: log, Credentials: gp.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	guest.JoinMatch(host.InMatch())
	users := func(s *Session) map[net.HostID]string {
		m := map[net.HostID]string{}
		for _, p := range s.Peers() {
			m[p.ID] = p.User
		}
		return m
	}
	for ctx.Err() == nil {
		host.Tick(sim.Input{})
		guest.Tick(sim.Input{})
		if users(host)[guest.ID()] == "Guesty" && users(guest)[host.ID()] == "Hosty" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("panel users: host sees %v, guest sees %v", users(host), users(guest))
}
