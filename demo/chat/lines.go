package main

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// lineReader reads lines of at most max bytes; the rest of a longer line
// is read and dropped.
type lineReader struct {
	r   *bufio.Reader
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 4096), max: max}
}

// next returns the next line without its end, and io.EOF after the last.
func (l *lineReader) next() (string, error) {
	var b strings.Builder
	for {
		chunk, err := l.r.ReadSlice('\n')
		if room := l.max - b.Len(); room > 0 {
			b.Write(chunk[:min(len(chunk), room)])
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return strings.TrimRight(b.String(), "\r\n"), err
	}
}
