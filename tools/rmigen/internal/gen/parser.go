package gen

import (
	"strconv"
)

// parser is a recursive-descent parser for the IDL grammar documented in
// tools/rmigen/README.md. After a syntax error it skips to the next
// declaration (struct, enum or global) and goes on, so that one run reports
// the first error of every declaration; a lexical error (an invalid
// character, an unterminated string or comment) ends the file.
type parser struct {
	lx   *lexer
	tok  lexToken
	errs ErrorList
	bad  bool // a syntax error in the current declaration: skip to the next
}

// Parse parses an IDL file. name is used in positions. The error is an
// ErrorList with the first syntax error of each declaration.
func Parse(name string, src []byte) (*File, error) {
	p := &parser{lx: newLexer(name, src)}
	if err := p.lx.checkText(); err != nil {
		return nil, ErrorList{err}
	}
	p.next()
	f := p.file()
	if len(p.errs) > 0 {
		p.errs.sort()
		return nil, p.errs
	}
	f.Name = name
	return f, nil
}

func (p *parser) next() {
	p.tok = p.lx.next()
	if p.lx.err != nil && !p.lexFailed() {
		p.errs = append(p.errs, p.lx.err)
		p.bad = true
	}
}

// lexFailed reports whether the lexer stopped (it then returns only tEOF).
func (p *parser) lexFailed() bool {
	return p.lx.err != nil && len(p.errs) > 0 && p.errs[len(p.errs)-1] == p.lx.err
}

func (p *parser) errorf(pos Pos, format string, args ...any) {
	if !p.bad {
		p.errs = append(p.errs, newError(p.lx.file, pos, format, args...))
	}
	p.bad = true
}

func (p *parser) failed() bool { return p.bad }

// recover skips to the next declaration keyword after a syntax error.
func (p *parser) recover() {
	if !p.bad {
		return
	}
	for p.tok.kind != tEOF && !p.is("struct") && !p.is("enum") && !p.is("global") {
		p.next()
	}
	p.bad = false
}

func (p *parser) is(text string) bool {
	return (p.tok.kind == tPunct || p.tok.kind == tIdent) && p.tok.text == text
}

// expect consumes punctuation or a keyword.
func (p *parser) expect(text, context string) bool {
	if p.failed() {
		return false
	}
	if !p.is(text) {
		p.errorf(p.tok.pos, "expected %q %s, found %s", text, context, p.tok.describe())
		return false
	}
	p.next()
	return true
}

// optSemi skips an optional ";".
func (p *parser) optSemi() {
	if p.is(";") {
		p.next()
	}
}

var keywords = map[string]bool{"package": true, "import": true, "struct": true, "enum": true, "global": true, "map": true}

func (p *parser) ident(what string) Ident {
	if p.failed() {
		return Ident{}
	}
	if p.tok.kind != tIdent {
		p.errorf(p.tok.pos, "expected %s, found %s", what, p.tok.describe())
		return Ident{}
	}
	if keywords[p.tok.text] {
		p.errorf(p.tok.pos, "expected %s, found keyword %s", what, p.tok.text)
		return Ident{}
	}
	id := Ident{Name: p.tok.text, Pos: p.tok.pos}
	p.next()
	return id
}

func (p *parser) integer(what string) (int, Pos) {
	pos := p.tok.pos
	if p.failed() {
		return 0, pos
	}
	if p.tok.kind != tInt {
		p.errorf(pos, "expected %s, found %s", what, p.tok.describe())
		return 0, pos
	}
	n, err := strconv.Atoi(p.tok.text)
	if err != nil || n > 1<<31 {
		p.errorf(pos, "%s %s is too large", what, p.tok.text)
		return 0, pos
	}
	p.next()
	return n, pos
}

func (p *parser) file() *File {
	f := &File{Doc: p.tok.doc}
	if !p.is("package") {
		p.errorf(p.tok.pos, "expected package line, found %s", p.tok.describe())
	} else {
		p.next()
		f.Package = p.ident("package name")
		p.optSemi()
	}
	for p.is("import") && !p.failed() {
		p.next()
		if p.is("(") {
			p.next()
			for !p.is(")") && !p.failed() {
				f.Imports = append(f.Imports, p.importSpec())
				p.optSemi()
			}
			p.expect(")", "to close the import list")
		} else {
			f.Imports = append(f.Imports, p.importSpec())
		}
		p.optSemi()
	}
	for {
		p.recover()
		if p.tok.kind == tEOF {
			break
		}
		doc := p.tok.doc
		switch {
		case p.is("struct"):
			p.next()
			f.Decls = append(f.Decls, p.structDecl(doc))
		case p.is("enum"):
			p.next()
			f.Decls = append(f.Decls, p.enumDecl(doc))
		case p.is("global"):
			p.next()
			f.Decls = append(f.Decls, p.global(doc))
		case p.is("import"):
			p.errorf(p.tok.pos, "import after declarations: imports come right after the package line")
		default:
			p.errorf(p.tok.pos, "expected struct, enum or global declaration, found %s", p.tok.describe())
		}
		p.optSemi()
	}
	return f
}

func (p *parser) importSpec() *Import {
	im := &Import{Pos: p.tok.pos}
	if p.tok.kind == tIdent {
		a := p.ident("import name")
		im.Alias = &a
	}
	if p.failed() {
		return im
	}
	if p.tok.kind != tString {
		p.errorf(p.tok.pos, "expected import path string, found %s", p.tok.describe())
		return im
	}
	im.Path = p.tok.val
	p.next()
	return im
}

func (p *parser) structDecl(doc []string) *Struct {
	s := &Struct{Doc: doc, Name: p.ident("struct name")}
	p.expect("{", "after struct name")
	for !p.failed() && !p.is("}") {
		fd := &Field{Doc: p.tok.doc}
		fd.Name = p.ident("field name or }")
		fd.Type = p.typ()
		s.Fields = append(s.Fields, fd)
		p.optSemi()
	}
	p.expect("}", "to close struct")
	return s
}

func (p *parser) enumDecl(doc []string) *Enum {
	en := &Enum{Doc: doc, Name: p.ident("enum name")}
	en.Base = p.typ()
	p.expect("{", "after enum type")
	for !p.failed() && !p.is("}") {
		v := &EnumValue{Doc: p.tok.doc}
		v.Name = p.ident("enum value name or }")
		v.LitPos = v.Name.Pos
		if p.is("=") {
			p.next()
			v.LitPos = p.tok.pos
			sign := ""
			if p.is("-") {
				sign = "-"
				p.next()
			}
			if !p.failed() && p.tok.kind != tInt {
				p.errorf(p.tok.pos, "expected enum value (a decimal integer), found %s", p.tok.describe())
			}
			if p.failed() {
				return en
			}
			v.Lit = sign + p.tok.text
			p.next()
		}
		en.Values = append(en.Values, v)
		p.optSemi()
	}
	p.expect("}", "to close enum")
	return en
}

func (p *parser) global(doc []string) *Global {
	g := &Global{Doc: doc, Name: p.ident("global name")}
	g.First, g.FirstAt = p.integer("first call ID")
	p.expect("{", "after first call ID")
	for !p.failed() && !p.is("}") {
		g.Methods = append(g.Methods, p.method())
		p.optSemi()
	}
	p.expect("}", "to close global")
	return g
}

func (p *parser) method() *Method {
	m := &Method{Doc: p.tok.doc}
	m.Name = p.ident("method name or }")
	m.IDPos = m.Name.Pos
	p.expect("(", "after method name")
	for !p.failed() && !p.is(")") {
		if len(m.Params) > 0 {
			p.expect(",", "between parameters")
		}
		m.Params = append(m.Params, p.param())
	}
	p.expect(")", "to close parameters")
	if !p.failed() && p.tok.kind == tIdent && p.tok.text == "returns" {
		p.next()
		m.Request = true
		p.expect("(", "after returns")
		for !p.failed() && !p.is(")") {
			if len(m.Results) > 0 {
				p.expect(",", "between results")
			}
			t := p.typ()
			m.Results = append(m.Results, &Param{Type: t, Name: p.ident("result name")})
		}
		p.expect(")", "to close results")
	}
	if p.is("=") {
		p.next()
		m.ID, m.IDPos = p.integer("call ID")
		m.Explicit = true
	}
	return m
}

func (p *parser) param() *Param {
	if p.failed() {
		return &Param{}
	}
	if !p.is("[") {
		p.errorf(p.tok.pos, "missing [in] before parameter: only input parameters are supported")
		return &Param{}
	}
	p.next()
	if p.tok.kind == tIdent && p.tok.text == "out" {
		p.errorf(p.tok.pos, "[out] parameters are not supported: declare results with returns (Type name, ...) after the parameters")
		return &Param{}
	}
	if p.tok.kind != tIdent || p.tok.text != "in" {
		p.errorf(p.tok.pos, "expected in inside [ ], found %s", p.tok.describe())
		return &Param{}
	}
	p.next()
	p.expect("]", "after [in")
	t := p.typ()
	return &Param{Type: t, Name: p.ident("parameter name")}
}

func (p *parser) typ() *Type {
	t := &Type{Pos: p.tok.pos}
	if p.failed() {
		return t
	}
	switch {
	case p.is("["):
		p.next()
		if !p.expect("]", "in slice type (arrays [N]T are not supported)") {
			return t
		}
		elem := p.typ()
		if elem.Kind == Basic && (elem.Name == "byte" || elem.Name == "uint8") {
			t.Kind = Bytes
			t.Name = "[]byte"
			return t
		}
		t.Kind, t.Elem = Slice, elem
	case p.is("map"):
		p.next()
		p.expect("[", "after map")
		t.Key = p.typ()
		p.expect("]", "after map key type")
		t.Kind, t.Elem = Map, p.typ()
	case p.tok.kind == tIdent && !keywords[p.tok.text]:
		id := p.ident("type")
		if p.is(".") {
			p.next()
			name := p.ident("type name after " + id.Name + ".")
			t.Kind, t.Pkg, t.Name = GoType, id.Name, name.Name
			return t
		}
		t.Name = id.Name // Basic or Named: the checker decides
		if basicTypes[id.Name] {
			t.Kind = Basic
			if id.Name == "byte" {
				t.Name = "uint8"
			}
		} else {
			t.Kind = Named
		}
	default:
		p.errorf(p.tok.pos, "expected type, found %s", p.tok.describe())
	}
	return t
}

// basicTypes are the predeclared types the IDL accepts (byte means uint8).
var basicTypes = map[string]bool{
	"bool": true, "string": true, "byte": true,
	"int": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"uint": true, "uint8": true, "uint16": true, "uint32": true, "uint64": true,
	"float32": true, "float64": true,
}
