package gen

import (
	"fmt"
	"sort"
	"strings"
)

// Error is a problem in an IDL file, reported as "file:line:col: message".
type Error struct {
	File   string
	Pos    Pos
	Msg    string
	format string // the message's format, for the test that every message is covered
}

func newError(file string, pos Pos, format string, args ...any) *Error {
	return &Error{File: file, Pos: pos, Msg: fmt.Sprintf(format, args...), format: format}
}

// Error returns "file:line:col: message".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// ErrorList is every problem found in a file, sorted by position.
type ErrorList []*Error

// Error returns one "file:line:col: message" line per problem.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
}
