package gen

import (
	"math/big"
	"strings"
)

// Pos is a position in an IDL file: 1-based line and byte column.
type Pos struct {
	Line, Col int
}

// Ident is a name and where it appears.
type Ident struct {
	Name string
	Pos  Pos
}

// File is a parsed IDL file.
type File struct {
	Name    string   // file name used in messages
	Doc     []string // comment before the package line (package doc)
	Package Ident
	Imports []*Import
	Decls   []Decl // *Struct, *Enum and *Global in source order
}

// Decl is a *Struct, an *Enum or a *Global.
type Decl interface{ decl() }

// Import is an import line: import [alias] "path".
type Import struct {
	Pos   Pos
	Alias *Ident // nil without an alias
	Path  string
	Name  string // alias, or the name inferred from the path (set by the checker)
	used  bool

	pkgName string // the Go package's own name, once loaded (set by the checker)
}

// Struct is a struct declaration.
type Struct struct {
	Doc     []string
	Name    Ident
	Fields  []*Field
	minSize int // minimum encoded size, set by the checker
	maxSize int // maximum encoded size (capped), -1 if unbounded, 0 before checkSizes
}

// Field is a struct field: Name Type.
type Field struct {
	Doc  []string
	Name Ident
	Type *Type
}

// Enum is an enum declaration: a named integer type and its values.
type Enum struct {
	Doc    []string
	Name   Ident
	Base   *Type // the underlying integer type, as written
	Values []*EnumValue
}

// EnumValue is one value of an enum: Name [= Lit].
type EnumValue struct {
	Doc    []string
	Name   Ident
	Lit    string   // the value as written ("-3"), or "" for the previous value + 1
	LitPos Pos      // position of the value, or of the name
	Value  *big.Int // set by the checker
}

// Global is a global declaration: a named group of calls with consecutive IDs.
type Global struct {
	Doc     []string
	Name    Ident
	First   int
	FirstAt Pos
	Methods []*Method
	lo, hi  int // ID range, set by the checker
}

// Method is a call in a global.
type Method struct {
	Doc      []string
	Name     Ident
	Params   []*Param
	Request  bool     // declared with returns: a request/response call
	Results  []*Param // the results of a request (Type Name)
	ID       int      // set by the checker unless Explicit
	IDPos    Pos      // position of "= N", or of the name
	Explicit bool
}

// Param is a parameter: [in] Type Name.
type Param struct {
	Type *Type
	Name Ident
}

func (*Struct) decl() {}
func (*Enum) decl()   {}
func (*Global) decl() {}

// Kind classifies a Type.
type Kind int

// Type kinds.
const (
	Basic    Kind = iota // bool, intN, uintN, floatN, string
	Bytes                // []byte
	Named                // a struct declared in the IDL
	GoType               // pkg.Name from an import line
	Slice                // []Elem
	Map                  // map[Key]Elem
	EnumKind             // an enum declared in the IDL (the parser says Named; the checker resolves it)
)

// Type is a type expression.
type Type struct {
	Pos  Pos
	Kind Kind
	Name string // Basic: the Go name; Named: struct name; GoType: type name
	Pkg  string // GoType: the package qualifier as written
	Key  *Type  // Map
	Elem *Type  // Slice, Map

	strct *Struct // Named, set by the checker
	enum  *Enum   // EnumKind, set by the checker
}

// String returns the Go spelling of t.
func (t *Type) String() string {
	var b strings.Builder
	t.write(&b)
	return b.String()
}

func (t *Type) write(b *strings.Builder) {
	switch t.Kind {
	case Bytes:
		b.WriteString("[]byte")
	case Slice:
		b.WriteString("[]")
		t.Elem.write(b)
	case Map:
		b.WriteString("map[")
		t.Key.write(b)
		b.WriteString("]")
		t.Elem.write(b)
	case GoType:
		b.WriteString(t.Pkg)
		b.WriteString(".")
		b.WriteString(t.Name)
	default:
		b.WriteString(t.Name)
	}
}
