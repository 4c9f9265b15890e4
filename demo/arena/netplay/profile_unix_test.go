//go:build unix

package netplay

import (
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProfileNamedPipe: a profile path that is a named pipe with no writer
// is refused at once, not opened: opening it for reading would block
// until some other program opened it for writing, and the arena would
// hang before its first frame.
func TestProfileNamedPipe(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, profileFile), 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	_, err := LoadProfile(dir, "")
	if !errors.Is(err, errProfileNotFile) {
		t.Fatalf("a profile that is a named pipe: %v", err)
	}
	t.Logf("refused: %v", err)
}
