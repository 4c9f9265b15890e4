package gen

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tInt
	tString
	tPunct // one of { } ( ) [ ] ; , . = -
)

type lexToken struct {
	kind tokKind
	text string // identifier, punctuation, or literal as written
	val  string // tString: the unquoted value
	pos  Pos
	doc  []string // comment group right before the token
}

func (t lexToken) describe() string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tIdent:
		return fmt.Sprintf("identifier %s", t.text)
	case tInt:
		return fmt.Sprintf("integer %s", t.text)
	case tString:
		return fmt.Sprintf("string %s", t.text)
	default: // tPunct
		return fmt.Sprintf("%q", t.text)
	}
}

// lexer turns IDL source into tokens. Comments are not tokens: a group of
// comments that ends on the line before a token (or on its line) becomes the
// token's doc.
type lexer struct {
	file string
	src  []byte
	off  int
	line int
	col  int

	doc         []string // current comment group
	docEndLine  int
	lastTokLine int // line of the last token, to tell trailing comments from docs
	err         *Error
}

func newLexer(file string, src []byte) *lexer {
	return &lexer{file: file, src: src, line: 1, col: 1}
}

func (l *lexer) errorf(pos Pos, format string, args ...any) {
	if l.err == nil {
		l.err = newError(l.file, pos, format, args...)
	}
}

func (l *lexer) pos() Pos { return Pos{l.line, l.col} }

// checkText rejects what Go source cannot hold even in a comment (comments
// are copied into the output): invalid UTF-8, NUL, and a byte order mark
// anywhere but at the start (where it is skipped).
func (l *lexer) checkText() *Error {
	if bytes.HasPrefix(l.src, []byte("\uFEFF")) {
		l.src = l.src[3:]
	}
	line, col := 1, 1
	for i := 0; i < len(l.src); {
		r, size := utf8.DecodeRune(l.src[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return newError(l.file, Pos{line, col}, "invalid UTF-8 encoding")
		case r == 0:
			return newError(l.file, Pos{line, col}, "invalid NUL character")
		case r == '\uFEFF':
			return newError(l.file, Pos{line, col}, "invalid byte order mark after the start of the file")
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col += size
		}
		i += size
	}
	return nil
}

func (l *lexer) advance(n int) {
	for range n {
		if l.src[l.off] == '\n' {
			l.line++
			l.col = 1
		} else {
			l.col++
		}
		l.off++
	}
}

func (l *lexer) addComment(text string, startLine int) {
	if startLine == l.lastTokLine {
		l.doc = nil // a comment after a token on its line documents nothing
		return
	}
	if l.doc != nil && startLine > l.docEndLine+1 {
		l.doc = nil // a blank line separates comment groups
	}
	l.doc = append(l.doc, text)
	l.docEndLine = l.line
}

// next returns the next token; after an error it returns tEOF.
func (l *lexer) next() lexToken {
	for l.err == nil && l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.advance(1)
		case c == '/' && l.off+1 < len(l.src) && l.src[l.off+1] == '/':
			start := l.line
			end := l.off
			for end < len(l.src) && l.src[end] != '\n' {
				end++
			}
			text := strings.TrimRight(string(l.src[l.off+2:end]), " \t\r")
			l.advance(end - l.off)
			l.addComment(text, start)
		case c == '/' && l.off+1 < len(l.src) && l.src[l.off+1] == '*':
			start := l.pos()
			end := strings.Index(string(l.src[l.off+2:]), "*/")
			if end < 0 {
				l.errorf(start, "comment not terminated")
				break
			}
			body := string(l.src[l.off+2 : l.off+2+end])
			l.advance(end + 4)
			for _, line := range blockLines(body) {
				l.addComment(line, start.Line)
				start.Line = l.line
			}
		default:
			return l.token()
		}
	}
	return lexToken{kind: tEOF, pos: l.pos(), doc: l.takeDoc()}
}

// takeDoc returns the comment group if it ends right before the current line.
func (l *lexer) takeDoc() []string {
	doc := l.doc
	if doc != nil && l.docEndLine < l.line-1 {
		doc = nil
	}
	l.doc = nil
	return doc
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func (l *lexer) token() lexToken {
	pos := l.pos()
	doc := l.takeDoc()
	l.lastTokLine = pos.Line
	c := l.src[l.off]
	start := l.off
	switch {
	case isLetter(c):
		for l.off < len(l.src) && (isLetter(l.src[l.off]) || isDigit(l.src[l.off])) {
			l.advance(1)
		}
		return lexToken{kind: tIdent, text: string(l.src[start:l.off]), pos: pos, doc: doc}
	case isDigit(c):
		for l.off < len(l.src) && (isLetter(l.src[l.off]) || isDigit(l.src[l.off])) {
			l.advance(1)
		}
		text := string(l.src[start:l.off])
		for i := 0; i < len(text); i++ {
			if !isDigit(text[i]) {
				l.errorf(pos, "invalid integer %s: want decimal digits", text)
				return lexToken{kind: tEOF, pos: pos}
			}
		}
		return lexToken{kind: tInt, text: text, pos: pos, doc: doc}
	case c == '"':
		end := l.off + 1
		for end < len(l.src) && l.src[end] != '"' && l.src[end] != '\n' {
			if l.src[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(l.src) || l.src[end] != '"' {
			l.errorf(pos, "string not terminated")
			return lexToken{kind: tEOF, pos: pos}
		}
		text := string(l.src[start : end+1])
		l.advance(end + 1 - l.off)
		val, err := strconv.Unquote(text)
		if err != nil {
			l.errorf(pos, "invalid string %s", text)
			return lexToken{kind: tEOF, pos: pos}
		}
		return lexToken{kind: tString, text: text, val: val, pos: pos, doc: doc}
	case strings.IndexByte("{}()[];,.=-", c) >= 0:
		l.advance(1)
		return lexToken{kind: tPunct, text: string(c), pos: pos, doc: doc}
	}
	r := []rune(string(l.src[l.off:min(l.off+4, len(l.src))]))[0]
	l.errorf(pos, "invalid character %U %q", r, r)
	return lexToken{kind: tEOF, pos: pos}
}

// blockLines turns the body of a /* */ comment into doc lines: leading and
// trailing blank lines dropped, a leading " * " decoration removed.
func blockLines(body string) []string {
	lines := strings.Split(body, "\n")
	out := make([]string, 0, len(lines))
	for _, s := range lines {
		s = strings.TrimRight(s, " \t\r")
		t := strings.TrimLeft(s, " \t")
		t = strings.TrimLeft(strings.TrimPrefix(t, "*"), " \t")
		out = append(out, t)
	}
	for len(out) > 0 && out[0] == "" {
		out = out[1:]
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	for i, s := range out {
		if s != "" {
			out[i] = " " + s
		}
	}
	return out
}
