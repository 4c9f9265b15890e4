package netplay

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/skein-dev/skein/server/matchserver"
)

// Profile is the player's stable identity on this computer: an ID drawn
// once and the name they play under. It is sent to the match server as
// credentials (Credentials): an open-mode server names the player by it
// (docs in server/matchserver's auth.go), so other players see the same
// player across matches and reconnections.
type Profile struct {
	ID   string // 16 hex digits
	Name string
}

// profileFile is the profile's file name in its directory.
const profileFile = "arena_profile"

// maxProfileFile bounds what LoadProfile reads.
const maxProfileFile = 4096

// DefaultProfileDir is where the profile lives unless told:
// os.UserConfigDir()/skein.
func DefaultProfileDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("profile: %w", err)
	}
	return filepath.Join(dir, "skein"), nil
}

// LoadProfile reads the profile in dir (DefaultProfileDir if empty), or
// creates one with a fresh ID (directory mode 0700, file 0600). A non-empty
// name replaces the stored one (and is saved); the name is cleaned like
// every player name.
func LoadProfile(dir, name string) (Profile, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultProfileDir(); err != nil {
			return Profile{}, err
		}
	}
	path := filepath.Join(dir, profileFile)
	var p Profile
	b, err := readProfileFile(path)
	switch {
	case errors.Is(err, errProfileTooLarge), errors.Is(err, errProfileNotFile):
		return Profile{}, fmt.Errorf("profile %s: %w (delete it to start a new one)", path, err)
	case err == nil:
		if p, err = parseProfile(b); err != nil {
			return Profile{}, fmt.Errorf("profile %s: %w (delete it to start a new one)", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		var id [8]byte
		if _, err := rand.Read(id[:]); err != nil {
			return Profile{}, fmt.Errorf("profile: %w", err)
		}
		p.ID = hex.EncodeToString(id[:])
	default:
		return Profile{}, fmt.Errorf("profile: %w", err)
	}
	save := err != nil
	if strings.TrimSpace(name) != "" && CleanName(name) != p.Name {
		p.Name, save = CleanName(name), true
	}
	if p.Name == "" {
		p.Name, save = CleanName(""), true
	}
	if save {
		if err := writeProfile(dir, path, p); err != nil {
			return Profile{}, err
		}
	}
	return p, nil
}

// Credentials are the profile as the match server's open mode reads them.
func (p Profile) Credentials() []byte { return matchserver.AppendProfile(nil, p.ID, p.Name) }

// errProfileTooLarge: the profile file is over maxProfileFile bytes.
var errProfileTooLarge = errors.New("larger than 4 KiB")

// errProfileNotFile: the profile path is no regular file (a directory, a
// device, a named pipe, a socket).
var errProfileNotFile = errors.New("not a regular file")

// readProfileFile reads the profile file at path: at most
// maxProfileFile+1 bytes of it, so that a huge file costs no more than
// that before it is refused with errProfileTooLarge. A path that is no
// regular file (a device such as /dev/zero, a named pipe, whose opening
// would block until some program writes to it, a directory) is refused
// with errProfileNotFile before it is opened.
func readProfileFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err // LoadProfile wraps it (and tells os.ErrNotExist apart)
	}
	if !fi.Mode().IsRegular() {
		return nil, errProfileNotFile
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, errProfileNotFile // replaced since the first look
	}
	return readLimited(f, maxProfileFile)
}

// readLimited reads r to its end if it holds at most limit bytes, and
// refuses it (errProfileTooLarge) after reading limit+1 otherwise.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, errProfileTooLarge
	}
	return b, nil
}

func parseProfile(b []byte) (Profile, error) {
	if len(b) > maxProfileFile {
		return Profile{}, errProfileTooLarge
	}
	var p Profile
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch k {
		case "id":
			p.ID = strings.TrimSpace(v)
		case "name":
			p.Name = CleanName(v)
		}
	}
	if _, err := hex.DecodeString(p.ID); err != nil || len(p.ID) != 16 {
		return Profile{}, errors.New("no id line of 16 hex digits")
	}
	return p, nil
}

func writeProfile(dir, path string, p Profile) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	body := fmt.Sprintf("# skein arena profile: who you are to match servers\nid %s\nname %s\n", p.ID, p.Name)
	tmp, err := os.CreateTemp(dir, profileFile+".*")
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	_, werr := tmp.WriteString(body)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name()) // the write error is the one to report
		return fmt.Errorf("profile: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}
