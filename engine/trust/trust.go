// Package trust remembers the keys of servers a client trusted on first
// use, like OpenSSH's known_hosts: the first time a client reaches a server
// by a name ("host:port") whose key it was not given, it accepts the key
// the server proved and writes it down; later connections to that name
// must prove the same key, and a different one is refused with an error
// naming both fingerprints (never a silent downgrade).
//
// The store is a text file, one server a line:
//
//	# comments and blank lines are kept out of the way
//	10.0.0.5:7777 BASE64KEY
//	arena.example.org:7777 SHA256:FINGERPRINT
//
// The second field is the server's key (net.ServerKey's text form, what
// Skein writes) or its fingerprint (what a server prints with -print-key,
// for a line written by hand). DefaultPath is os.UserConfigDir()/skein/
// known_servers. The file is at most MaxFileSize bytes; a line that does
// not parse, a name given twice or a larger file is an error (ErrBadFile),
// never guessed around. Writes go to a temporary file in the same
// directory that is renamed over the store (mode 0600, directory 0700), so
// a crash leaves the old store or the new one, never half of one.
//
// Use it through Store.Check and Config.VerifyServerKey of engine/net:
//
//	chk, err := store.Check("10.0.0.5:7777")
//	cfg.VerifyServerKey = chk.Verify
//	// after Dial: chk.Status() is New (remembered) or Known
package trust

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/skein-dev/skein/engine/net"
)

// MaxFileSize bounds the store file (1 MiB: some ten thousand servers). A
// larger file is refused (ErrBadFile), and Remember refuses to grow the
// store past it (ErrStoreFull).
const MaxFileSize = 1 << 20

// maxNameLen bounds a server name: a DNS name (253) and a port.
const maxNameLen = 253 + 1 + 5 + 2

// ErrBadFile: the store file is not a known-servers file (a line that does
// not parse, a server named twice, too large). The error names the file
// and the line; nothing is remembered or trusted from such a file.
var ErrBadFile = errors.New("skein/trust: bad known-servers file")

// ErrBadName: a server name that is not "host:port".
var ErrBadName = errors.New("skein/trust: bad server name")

// ErrStoreFull: remembering one more server would make the file larger
// than MaxFileSize.
var ErrStoreFull = errors.New("skein/trust: known-servers file full")

// ErrKeyChanged: a remembered server proved another key. Dial's
// *net.ServerKeyError wraps a *ChangedError, which wraps this.
var ErrKeyChanged = errors.New("skein/trust: server key changed")

// ChangedError is what Check.Verify returns (and Dial wraps in its
// *net.ServerKeyError) when a server proves a key other than the one
// remembered for its name.
type ChangedError struct {
	// Server is the name the key is remembered under ("host:port").
	Server string
	// Remembered is the fingerprint in the store.
	Remembered string
	// Seen is the key the server proved.
	Seen net.ServerKey
	// Path is the store file (where to remove the line once the server's
	// operator confirms the change).
	Path string
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("%v: %s proved key %s, but key %s is remembered for it (in %s): the server was reinstalled or someone is in the middle; if its operator confirms the new fingerprint, delete that line",
		ErrKeyChanged, e.Server, e.Seen.Fingerprint(), e.Remembered, e.Path)
}

// Unwrap returns ErrKeyChanged.
func (e *ChangedError) Unwrap() error { return ErrKeyChanged }

// entry is one line: a key, or only a fingerprint (a hand-written line).
type entry struct {
	fp  string        // always set: "SHA256:..."
	key net.ServerKey // zero for a fingerprint-only line
}

func (e entry) text() string {
	if e.key.IsZero() {
		return e.fp
	}
	return e.key.String()
}

// DefaultPath returns os.UserConfigDir()/skein/known_servers.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("skein/trust: no config directory: %w", err)
	}
	return filepath.Join(dir, "skein", "known_servers"), nil
}

// Store is a known-servers file. Its methods are safe for concurrent use
// within a process; two processes remembering at the same moment may lose
// one of the two new lines (the server is then trusted on first use again).
type Store struct {
	path string
	mu   sync.Mutex // serialises read-modify-write
}

// Open returns the store at path ("": DefaultPath). The file need not
// exist; it is created by the first Remember.
func Open(path string) (*Store, error) {
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	return &Store{path: path}, nil
}

// Path returns the store's file.
func (s *Store) Path() string { return s.path }

// NormalizeName returns the form a server's name is stored under:
// "host:port" with the host in lower case (IPv6 in brackets) and the port
// in decimal without leading zeros. A name without a port or with one over
// 65535, with spaces or control characters, or too long is ErrBadName.
func NormalizeName(server string) (string, error) {
	if len(server) > maxNameLen || !utf8.ValidString(server) {
		return "", fmt.Errorf("%w: %.40q", ErrBadName, server)
	}
	host, port, err := stdnet.SplitHostPort(server)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrBadName, server, err)
	}
	if host == "" || port == "" || strings.ContainsFunc(host+port, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) {
		return "", fmt.Errorf("%w: %q", ErrBadName, server)
	}
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("%w: %q: the port is not a number", ErrBadName, server)
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return "", fmt.Errorf("%w: %q: the port is over 65535", ErrBadName, server)
		}
	}
	return stdnet.JoinHostPort(strings.ToLower(host), strconv.Itoa(n)), nil
}

// parseFingerprint reads "SHA256:" and 43 characters of unpadded standard
// base64 (a 32-byte hash), as net.ServerKey.Fingerprint writes.
func parseFingerprint(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "SHA256:")
	if !ok {
		return "", false
	}
	b, err := base64.RawStdEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != sha256.Size {
		return "", false
	}
	return s, true
}

// parse reads a store file's text: name → entry. Any line that is not a
// comment, blank, or "NAME KEY-OR-FINGERPRINT" is an error naming the line.
func parse(data []byte) (map[string]entry, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadFile, MaxFileSize)
	}
	m := make(map[string]entry)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), MaxFileSize+1)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' {
			continue
		}
		f := strings.Fields(t)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %d: want \"host:port KEY\"", ErrBadFile, line)
		}
		name, err := NormalizeName(f[0])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrBadFile, line, err)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("%w: line %d: %s is named twice", ErrBadFile, line, name)
		}
		var e entry
		if fp, ok := parseFingerprint(f[1]); ok {
			e.fp = fp
		} else {
			k, err := net.ParseServerKey(f[1])
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: neither a key nor a SHA256: fingerprint", ErrBadFile, line)
			}
			e = entry{fp: k.Fingerprint(), key: k}
		}
		m[name] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	return m, nil
}

// format writes entries in name order with a header comment.
func format(m map[string]entry) []byte {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("# Skein known servers: host:port and the key (or fingerprint) it proved when first trusted.\n")
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(' ')
		b.WriteString(m[n].text())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// load reads the file (none: empty). Callers hold s.mu.
func (s *Store) load() (map[string]entry, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]entry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("skein/trust: %w", err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, MaxFileSize+1)); err != nil {
		return nil, fmt.Errorf("skein/trust: %s: %w", s.path, err)
	}
	m, err := parse(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return m, nil
}

// Lookup returns the fingerprint remembered for server, if any.
func (s *Store) Lookup(server string) (fingerprint string, ok bool, err error) {
	name, err := NormalizeName(server)
	if err != nil {
		return "", false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return "", false, err
	}
	e, ok := m[name]
	return e.fp, ok, nil
}

// Remember writes k down for server if no key is remembered for it. If
// one is, it returns nil when it is k, and a *ChangedError otherwise: a
// remembered key is never replaced (delete its line to trust another).
func (s *Store) Remember(server string, k net.ServerKey) error {
	if k.IsZero() {
		return fmt.Errorf("skein/trust: Remember: %w", net.ErrBadServerKey)
	}
	name, err := NormalizeName(server)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return err
	}
	if e, ok := m[name]; ok {
		return s.compare(name, e, k)
	}
	m[name] = entry{fp: k.Fingerprint(), key: k}
	text := format(m)
	if len(text) > MaxFileSize {
		return fmt.Errorf("%w: %s", ErrStoreFull, s.path)
	}
	return writeAtomic(s.path, text)
}

// compare accepts k if it is the remembered entry e.
func (s *Store) compare(name string, e entry, k net.ServerKey) error {
	fp := k.Fingerprint()
	if subtle.ConstantTimeCompare([]byte(e.fp), []byte(fp)) == 1 {
		return nil
	}
	return &ChangedError{Server: name, Remembered: e.fp, Seen: k, Path: s.path}
}

// writeAtomic writes text to a temporary file beside path (mode 0600),
// syncs it and renames it over path.
func writeAtomic(path string, text []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("skein/trust: %w", err)
	}
	f, err := os.CreateTemp(dir, ".known_servers-*")
	if err != nil {
		return fmt.Errorf("skein/trust: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	fail := func(err error) error {
		_ = f.Close()
		return fmt.Errorf("skein/trust: %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(text); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("skein/trust: %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("skein/trust: %s: %w", path, err)
	}
	return nil
}
