package gen

import (
	"fmt"
	"go/token"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxCallID is the largest call ID (the frame holds a uint16; 0 is reserved).
const maxCallID = 65535

// checker resolves names and reports every semantic error in a file, so that
// the emitted Go code always compiles.
type checker struct {
	f       *File
	errs    ErrorList
	structs map[string]*Struct
	enums   map[string]*Enum
	globals map[string]*Global
	imports map[string]*Import
	// top holds every package-level name the output declares, with where it
	// comes from, to report collisions.
	top map[string]string
	// goTypes are the pkg.Name types of the file, resolved against the Go
	// packages at the end; badImport are imports already reported, which
	// are not loaded.
	goTypes   []*Type
	badImport map[*Import]bool
}

// Check resolves f in place and returns an ErrorList if anything is wrong.
func Check(f *File) error {
	c := &checker{f: f, structs: map[string]*Struct{}, enums: map[string]*Enum{}, globals: map[string]*Global{}, imports: map[string]*Import{}, top: map[string]string{}, badImport: map[*Import]bool{}}
	c.check()
	if len(c.errs) > 0 {
		c.errs.sort()
		return c.errs
	}
	return nil
}

func (c *checker) errorf(pos Pos, format string, args ...any) {
	c.errs = append(c.errs, newError(c.f.Name, pos, format, args...))
}

func (c *checker) at(p Pos) string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// predeclared are Go's predeclared identifiers.
var predeclared = map[string]bool{
	"any": true, "bool": true, "byte": true, "comparable": true, "complex64": true, "complex128": true,
	"error": true, "float32": true, "float64": true, "int": true, "int8": true, "int16": true,
	"int32": true, "int64": true, "rune": true, "string": true, "uint": true, "uint8": true,
	"uint16": true, "uint32": true, "uint64": true, "uintptr": true, "true": true, "false": true,
	"iota": true, "nil": true, "append": true, "cap": true, "clear": true, "close": true,
	"complex": true, "copy": true, "delete": true, "imag": true, "len": true, "make": true,
	"max": true, "min": true, "new": true, "panic": true, "print": true, "println": true,
	"real": true, "recover": true,
}

func exported(name string) bool {
	r, _ := utf8.DecodeRuneInString(name)
	return unicode.IsUpper(r)
}

// name checks a declared name: not a Go keyword or the blank identifier.
func (c *checker) name(id Ident, what string) bool {
	switch {
	case token.IsKeyword(id.Name):
		c.errorf(id.Pos, "%s %s is a Go keyword", what, id.Name)
		return false
	case id.Name == "_":
		c.errorf(id.Pos, "%s cannot be _", what)
		return false
	}
	return true
}

func (c *checker) exportedName(id Ident, what string) bool {
	if !c.name(id, what) {
		return false
	}
	if !exported(id.Name) {
		c.errorf(id.Pos, "%s %s must start with an upper-case letter (it becomes an exported Go name)", what, id.Name)
		return false
	}
	return true
}

// declare records a package-level Go name of the output.
func (c *checker) declare(name string, pos Pos, origin string) {
	if prev, ok := c.top[name]; ok {
		c.errorf(pos, "%s declares %s, which is already declared by %s", origin, name, prev)
		return
	}
	c.top[name] = fmt.Sprintf("%s at %s", origin, c.at(pos))
}

func (c *checker) check() {
	f := c.f
	c.name(f.Package, "package name")
	c.checkImports()

	// Declare every struct and enum first, so that globals and fields may
	// refer to types declared later in the file.
	for _, d := range f.Decls {
		if en, ok := d.(*Enum); ok {
			c.declareEnum(en)
		}
		if s, ok := d.(*Struct); ok {
			if !c.exportedName(s.Name, "struct name") {
				continue
			}
			if prev, ok := c.structs[s.Name.Name]; ok {
				c.errorf(s.Name.Pos, "struct %s redeclared (first declared at %s)", s.Name.Name, c.at(prev.Name.Pos))
				continue
			}
			c.structs[s.Name.Name] = s
			c.declare(s.Name.Name, s.Name.Pos, "struct "+s.Name.Name)
		}
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *Struct:
			c.checkStruct(d)
		case *Enum:
			c.checkEnum(d)
		case *Global:
			c.checkGlobal(d)
		}
	}
	c.checkRecursion()
	if len(c.errs) == 0 {
		c.checkSizes() // needs acyclic, resolved types
	}
	c.checkRanges()
	c.checkGoTypes()
	for _, im := range f.Imports {
		if im.Name != "" && !im.used {
			c.errorf(im.Pos, "import %q is not used", im.Path)
		}
	}
}

func (c *checker) checkImports() {
	for _, im := range c.f.Imports {
		if !validImportPath(im.Path) {
			c.errorf(im.Pos, "invalid import path %q", im.Path)
			continue
		}
		pos := im.Pos
		if im.Alias != nil {
			im.Name, pos = im.Alias.Name, im.Alias.Pos
		} else {
			im.Name = inferName(im.Path)
			if !token.IsIdentifier(im.Name) {
				c.errorf(im.Pos, "cannot infer the package name of %q: add a name, as in import mypkg %q", im.Path, im.Path)
				im.Name = ""
				continue
			}
		}
		if !c.name(Ident{im.Name, pos}, "import name") {
			im.Name = ""
			continue
		}
		// The names below are refused, but the import still resolves its
		// types, so that one mistake gives one message.
		switch {
		case im.Name == "rmi" || im.Name == "net" || strings.HasPrefix(im.Name, "rmi") ||
			c.fileHasRequests() && (im.Name == "context" || im.Name == "errors"):
			c.errorf(pos, "import name %s is reserved by generated code: add another name, as in import my%s %q", im.Name, im.Name, im.Path)
			c.badImport[im] = true
		case predeclared[im.Name]:
			c.errorf(pos, "import name %s would hide Go's predeclared %s", im.Name, im.Name)
			c.badImport[im] = true
		case exported(im.Name):
			c.errorf(pos, "import name %s must not start with an upper-case letter (it could collide with generated names)", im.Name)
			c.badImport[im] = true
		}
		if prev, ok := c.imports[im.Name]; ok {
			c.errorf(pos, "import name %s redeclared (first imported at %s)", im.Name, c.at(prev.Pos))
			im.Name = ""
			continue
		}
		c.imports[im.Name] = im
	}
}

// fileHasRequests reports whether a global of the file has a request, whose
// generated code imports context and errors.
func (c *checker) fileHasRequests() bool {
	for _, d := range c.f.Decls {
		if g, ok := d.(*Global); ok && hasRequests(g) {
			return true
		}
	}
	return false
}

// validImportPath applies Go's rules for import paths (the spec's
// implementation restriction, as go/types enforces it) and rejects relative
// and malformed paths.
func validImportPath(p string) bool {
	if p == "" {
		return false
	}
	for _, r := range p {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) || strings.ContainsRune("!\"#$%&'()*,:;<=>?[\\]^`{|}\uFFFD", r) {
			return false
		}
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

// inferName returns the package name Go would guess from an import path: the
// last element, or the one before a major-version suffix such as /v2.
func inferName(p string) string {
	base := path.Base(p)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" && strings.Contains(p, "/") {
		base = path.Base(path.Dir(p))
	}
	if i := strings.IndexByte(base, '.'); i >= 0 { // gopkg.in/yaml.v3
		base = base[:i]
	}
	return base
}

func (c *checker) checkStruct(s *Struct) {
	seen := map[string]*Field{}
	for _, fd := range s.Fields {
		c.resolve(fd.Type)
		if !c.exportedName(fd.Name, "field name") {
			continue
		}
		if fd.Name.Name == "EncodeRMI" || fd.Name.Name == "DecodeRMI" {
			c.errorf(fd.Name.Pos, "field name %s is reserved (generated method of %s)", fd.Name.Name, s.Name.Name)
		}
		if prev, ok := seen[fd.Name.Name]; ok {
			c.errorf(fd.Name.Pos, "duplicate field %s in struct %s (first at %s)", fd.Name.Name, s.Name.Name, c.at(prev.Name.Pos))
		}
		seen[fd.Name.Name] = fd
	}
}

// resolve checks a type expression and links named types to their struct.
func (c *checker) resolve(t *Type) {
	switch t.Kind {
	case Basic, Bytes, EnumKind: // nothing to resolve (EnumKind: done)
	case Named:
		if en, ok := c.enums[t.Name]; ok {
			t.Kind, t.enum = EnumKind, en
			return
		}
		s, ok := c.structs[t.Name]
		if !ok {
			if im, isImport := c.imports[t.Name]; isImport {
				im.used = true
				c.errorf(t.Pos, "%s is a package, not a type: write %s.TypeName", t.Name, t.Name)
				return
			}
			c.errorf(t.Pos, "unknown type %s%s", t.Name, c.suggestType(t.Name))
			return
		}
		t.strct = s
	case GoType:
		im, ok := c.imports[t.Pkg]
		if !ok {
			c.errorf(t.Pos, "unknown package %s in %s.%s: add an import line", t.Pkg, t.Pkg, t.Name)
			return
		}
		im.used = true
		if !exported(t.Name) {
			c.errorf(t.Pos, "%s.%s is not exported", t.Pkg, t.Name)
			return
		}
		c.goTypes = append(c.goTypes, t)
	case Slice:
		c.resolve(t.Elem)
	case Map:
		c.resolve(t.Key)
		if t.Key.Kind != Basic && t.Key.Kind != EnumKind {
			c.errorf(t.Key.Pos, "invalid map key type %s: use bool, a number type, string or an enum", t.Key)
		}
		c.resolve(t.Elem)
	}
}

// suggestType returns "; did you mean X?" with the basic types, structs
// and enums of the file whose names are close to name, or "".
func (c *checker) suggestType(name string) string {
	cands := make([]string, 0, len(basicTypes)+len(c.structs)+len(c.enums))
	for n := range basicTypes {
		cands = append(cands, n)
	}
	for n := range c.structs {
		cands = append(cands, n)
	}
	for n := range c.enums {
		cands = append(cands, n)
	}
	return didYouMean(closeNames(name, cands), "")
}

// checkRecursion rejects structs that contain themselves by value (Go
// rejects them too); slices and maps break the cycle.
func (c *checker) checkRecursion() {
	state := map[*Struct]int{} // 1 visiting, 2 done
	var path []string
	var visit func(s *Struct) bool
	walk := func(t *Type) bool {
		if t.Kind == Named && t.strct != nil {
			return visit(t.strct)
		}
		return true
	}
	visit = func(s *Struct) bool {
		switch state[s] {
		case 1:
			i := 0
			for path[i] != s.Name.Name {
				i++
			}
			cycle := append(append([]string{}, path[i:]...), s.Name.Name)
			c.errorf(s.Name.Pos, "invalid recursive struct %s: %s (use a slice to break the cycle)", s.Name.Name, strings.Join(cycle, " contains "))
			return false
		case 2:
			return true
		}
		state[s] = 1
		path = append(path, s.Name.Name)
		ok := true
		for _, fd := range s.Fields {
			if !walk(fd.Type) {
				ok = false
				break
			}
		}
		path = path[:len(path)-1]
		state[s] = 2
		return ok
	}
	for _, d := range c.f.Decls {
		if s, ok := d.(*Struct); ok && c.structs[s.Name.Name] == s {
			visit(s)
		}
	}
	if len(c.errs) > 0 {
		return // minSize needs acyclic structs
	}
	for _, d := range c.f.Decls {
		if s, ok := d.(*Struct); ok {
			structMinSize(s)
		}
	}
}

// structMinSize computes (once) the fewest bytes a value of s takes when
// encoded: its array header and the minimum of each field.
func structMinSize(s *Struct) int {
	if s.minSize == 0 {
		n := 1
		for _, fd := range s.Fields {
			n += minSize(fd.Type)
		}
		s.minSize = n
	}
	return s.minSize
}

// minSize returns the fewest bytes a value of t takes when encoded; the
// generated decoder uses it to bound slice lengths in hostile frames.
func minSize(t *Type) int {
	if t.Kind == Named && t.strct != nil {
		return structMinSize(t.strct)
	}
	return 1
}

// reserved parameter names: the leading parameters of generated methods.
var reservedParams = map[string]string{
	"to":   "the destination parameter of proxy methods",
	"how":  "the rmi.Context parameter of proxy methods",
	"ctx":  "the context.Context parameter of generated blocking calls",
	"info": "the rmi.CallInfo parameter of stub functions",
}

func (c *checker) checkGlobal(g *Global) {
	if !c.exportedName(g.Name, "global name") {
		return
	}
	gn := g.Name.Name
	if prev, ok := c.globals[gn]; ok {
		c.errorf(g.Name.Pos, "global %s redeclared (first declared at %s)", gn, c.at(prev.Name.Pos))
		return
	}
	c.globals[gn] = g
	origin := "global " + gn
	for _, suffix := range []string{"Proxy", "Stub", "Handler"} {
		c.declare(gn+suffix, g.Name.Pos, origin)
	}
	c.declare("New"+gn+"Proxy", g.Name.Pos, origin)
	c.declare("New"+gn+"Stub", g.Name.Pos, origin)
	c.declare("Unimplemented"+gn+"Handler", g.Name.Pos, origin)

	firstOK := g.First >= 1 && g.First <= maxCallID
	if !firstOK {
		// Reported, and the IDs that follow from it are not checked; the
		// methods' names and parameters still are, so that one bad number
		// does not hide the rest of the file's problems.
		c.errorf(g.FirstAt, "first call ID %d of global %s is out of range 1..%d", g.First, gn, maxCallID)
	}
	if len(g.Methods) == 0 {
		c.errorf(g.Name.Pos, "global %s declares no methods", gn)
		return
	}
	names := map[string]*Method{}
	ids := map[int]*Method{}
	next, idsOK := g.First, firstOK
	g.lo, g.hi = maxCallID+1, 0
	for _, m := range g.Methods {
		switch {
		case m.Explicit && (m.ID < 1 || m.ID > maxCallID):
			c.errorf(m.IDPos, "call ID %d of %s.%s is out of range 1..%d", m.ID, gn, m.Name.Name, maxCallID)
			idsOK = false // the methods after it number from it
		case m.Explicit:
			idsOK = true
		case idsOK:
			m.ID = next
			if m.ID > maxCallID {
				c.errorf(m.Name.Pos, "%s.%s would get call ID %d, above %d", gn, m.Name.Name, m.ID, maxCallID)
				idsOK = false
			}
		}
		if idsOK {
			next = m.ID + 1
			if prev, ok := ids[m.ID]; ok {
				c.errorf(m.IDPos, "duplicate call ID %d: %s.%s and %s.%s (at %s)", m.ID, gn, m.Name.Name, gn, prev.Name.Name, c.at(prev.Name.Pos))
			}
			ids[m.ID] = m
			g.lo, g.hi = min(g.lo, m.ID), max(g.hi, m.ID)
		}

		if !c.exportedName(m.Name, "method name") {
			continue
		}
		if strings.HasPrefix(m.Name.Name, "RMI") {
			c.errorf(m.Name.Pos, "method name %s is reserved: names starting with RMI belong to generated code", m.Name.Name)
		}
		if prev, ok := names[m.Name.Name]; ok {
			c.errorf(m.Name.Pos, "duplicate method %s in global %s (first at %s)", m.Name.Name, gn, c.at(prev.Name.Pos))
		} else {
			c.declare(gn+"_"+m.Name.Name, m.Name.Pos, fmt.Sprintf("call %s.%s", gn, m.Name.Name))
		}
		names[m.Name.Name] = m
		c.checkParams(g, m)
	}
	for _, m := range g.Methods {
		if !m.Request {
			continue
		}
		if o, ok := names[m.Name.Name+"Wait"]; ok {
			c.errorf(o.Name.Pos, "method %s of global %s collides with the blocking form of request %s (at %s)", o.Name.Name, gn, m.Name.Name, c.at(m.Name.Pos))
		}
	}
}

func (c *checker) checkParams(g *Global, m *Method) {
	seen := map[string]*Param{}
	for _, p := range m.Params {
		c.resolve(p.Type)
		n := p.Name.Name
		if !c.name(p.Name, "parameter name") {
			continue
		}
		if why, ok := reservedParams[n]; ok {
			c.errorf(p.Name.Pos, "parameter name %s is reserved (%s)", n, why)
		} else if why, ok := reservedResults[n]; ok && m.Request {
			c.errorf(p.Name.Pos, "parameter name %s of a request is reserved (%s)", n, why)
		} else if strings.HasPrefix(n, "rmi") {
			c.errorf(p.Name.Pos, "parameter name %s is reserved: names starting with rmi belong to generated code", n)
		}
		if prev, ok := seen[n]; ok {
			c.errorf(p.Name.Pos, "duplicate parameter %s in %s.%s (first at %s)", n, g.Name.Name, m.Name.Name, c.at(prev.Name.Pos))
		}
		seen[n] = p
	}
	for _, r := range m.Results {
		c.resolve(r.Type)
		n := r.Name.Name
		if !c.name(r.Name, "result name") {
			continue
		}
		if why, ok := reservedResults[n]; ok {
			c.errorf(r.Name.Pos, "result name %s is reserved (%s)", n, why)
		} else if why, ok := reservedParams[n]; ok {
			c.errorf(r.Name.Pos, "result name %s is reserved (%s)", n, why)
		} else if strings.HasPrefix(n, "rmi") {
			c.errorf(r.Name.Pos, "result name %s is reserved: names starting with rmi belong to generated code", n)
		}
		if prev, ok := seen[n]; ok {
			c.errorf(r.Name.Pos, "duplicate name %s in %s.%s: results and parameters share a scope (first at %s)", n, g.Name.Name, m.Name.Name, c.at(prev.Name.Pos))
		}
		seen[n] = r
	}
}

// reservedResults are names the generated request methods use besides the
// parameters'.
var reservedResults = map[string]string{
	"err":  "the error result of request handlers and callbacks",
	"done": "the callback parameter of request methods",
}

// checkRanges rejects globals whose ID ranges overlap: their stubs could not
// be attached to the same dispatcher.
func (c *checker) checkRanges() {
	var gs []*Global
	for _, d := range c.f.Decls {
		if g, ok := d.(*Global); ok && g.hi >= g.lo && g.hi > 0 {
			for _, o := range gs {
				if g.lo <= o.hi && o.lo <= g.hi {
					c.errorf(g.Name.Pos, "call IDs %d..%d of global %s overlap IDs %d..%d of global %s (at %s)",
						g.lo, g.hi, g.Name.Name, o.lo, o.hi, o.Name.Name, c.at(o.Name.Pos))
				}
			}
			gs = append(gs, g)
		}
	}
}
