package gen

import (
	"fmt"
	"go/types"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// checkGoTypes resolves every pkg.Name of the file against the real Go
// package: the package must load, the name must be a non-generic type, and
// the type must be one the runtime can carry. It runs after the rest of the
// check, on the imports that passed it.
func (c *checker) checkGoTypes() {
	var paths []string
	need := map[*Import]bool{}
	for _, t := range c.goTypes {
		im := c.imports[t.Pkg]
		if im == nil || c.badImport[im] || need[im] {
			continue
		}
		need[im] = true
		paths = append(paths, im.Path)
	}
	if len(paths) == 0 {
		return // no Go types: nothing to load, no go command needed
	}
	l := loaderFor(filepath.Dir(c.f.Name))
	l.mu.Lock()
	defer l.mu.Unlock()
	pkgs := l.load(paths)
	for _, im := range c.f.Imports {
		if !need[im] {
			continue
		}
		if p := pkgs[im.Path]; p.pkg == nil {
			c.errorf(im.Pos, "cannot import %q: %s", im.Path, p.err)
		} else {
			im.pkgName = p.pkg.Name()
		}
	}
	for _, t := range c.goTypes {
		im := c.imports[t.Pkg]
		if im == nil || !need[im] || pkgs[im.Path].pkg == nil {
			continue
		}
		c.checkGoType(l, t, pkgs[im.Path].pkg)
	}
}

// checkGoType checks one pkg.Name of the IDL against package pkg.
func (c *checker) checkGoType(l *goLoader, t *Type, pkg *types.Package) {
	obj := pkg.Scope().Lookup(t.Name)
	if obj == nil {
		c.errorf(t.Pos, "%s.%s: no such type in %s%s", t.Pkg, t.Name, pkg.Path(), suggest(t, pkg))
		return
	}
	tn, ok := obj.(*types.TypeName)
	if !ok {
		c.errorf(t.Pos, "%s.%s is a %s, not a type", t.Pkg, t.Name, objectKind(obj))
		return
	}
	if generic(tn) {
		c.errorf(t.Pos, "%s.%s is generic: rmigen cannot instantiate it (declare type T = %s.%s[...] in a Go package and name that)", t.Pkg, t.Name, t.Pkg, t.Name)
		return
	}
	if f := l.carried(tn.Type()); f != nil {
		c.errorf(t.Pos, "%s.%s cannot be carried: %s", t.Pkg, t.Name, f)
	}
}

// objectKind names the kind of a package-level object that is not a type.
func objectKind(obj types.Object) string {
	switch obj.(type) {
	case *types.Func:
		return "function"
	case *types.Var:
		return "variable"
	case *types.Const:
		return "constant"
	case *types.Builtin:
		return "built-in function"
	}
	return "name"
}

// generic reports whether tn is a generic type or alias (usable only with
// type arguments, which the IDL cannot write).
func generic(tn *types.TypeName) bool {
	switch t := tn.Type().(type) {
	case *types.Named:
		return t.TypeParams().Len() > 0 && t.TypeArgs().Len() == 0
	case *types.Alias:
		return t.TypeParams().Len() > 0
	}
	return false
}

// suggest returns "; did you mean pkg.A or pkg.B?" with the exported types of
// pkg whose names are close to t's (same start, or a small edit away), or "".
func suggest(t *Type, pkg *types.Package) string {
	var names []string
	for _, name := range pkg.Scope().Names() {
		if tn, ok := pkg.Scope().Lookup(name).(*types.TypeName); ok && tn.Exported() {
			names = append(names, name)
		}
	}
	return didYouMean(closeNames(t.Name, names), t.Pkg+".")
}

// closeNames returns at most three of names that are close to want, ignoring
// case (names that start with it, or a small edit away), closest first and
// then in alphabetical order.
func closeNames(want string, names []string) []string {
	want = strings.ToLower(want)
	type cand struct {
		name string
		dist int
	}
	var cs []cand
	for _, name := range names {
		low := strings.ToLower(name)
		switch d := editDistance(want, low); {
		case strings.HasPrefix(low, want):
			cs = append(cs, cand{name, 0})
		case d <= max(1, len(want)/3):
			cs = append(cs, cand{name, d})
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		return cs[i].dist < cs[j].dist || cs[i].dist == cs[j].dist && cs[i].name < cs[j].name
	})
	out := make([]string, 0, 3)
	for _, c := range cs[:min(3, len(cs))] {
		out = append(out, c.name)
	}
	return out
}

// didYouMean returns "; did you mean A, B or C?" with prefix before each
// name, or "" without names.
func didYouMean(names []string, prefix string) string {
	if len(names) == 0 {
		return ""
	}
	for i := range names {
		names[i] = prefix + names[i]
	}
	if len(names) == 1 {
		return "; did you mean " + names[0] + "?"
	}
	return "; did you mean " + strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1] + "?"
}

// editDistance is the optimal string alignment distance between a and b
// (bytes): the Levenshtein distance where swapping two adjacent bytes also
// counts as one edit (Tema is one edit from Team). Past 64 bytes it returns
// the longer length unless they are equal (a bound that no suggestion
// threshold reaches), so that a hostile name costs little.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	// Three rows: i-2, i-1 and i.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// ---- can the runtime carry a type? ----

// The generated code encodes a Go type T with rmi.Encoder.EncodeValue(&x) and
// decodes it with rmi.Decoder.DecodeValue(&x): with T's rmi.Marshaler and
// rmi.Unmarshaler methods if *T has both, else by reflection with
// github.com/vmihailenco/msgpack/v5. The rules below mirror what that
// package's reflective codec can write and read back.

// carryFault says why a type cannot be carried: what the offending part is,
// and where it sits inside the type ("" for the type itself, else a Go-like
// selector path such as ".Items[i].C").
type carryFault struct {
	path string
	what string
}

func (f *carryFault) String() string {
	switch {
	case f.path == "":
		return "it is " + f.what
	case strings.HasPrefix(f.path, "."):
		return "field " + f.path[1:] + " is " + f.what
	}
	return "element " + f.path + " is " + f.what
}

// under returns a fault for a part at path p below f's type.
func (f *carryFault) under(p string) *carryFault {
	if f == nil {
		return nil
	}
	return &carryFault{path: p + f.path, what: f.what}
}

// The method pairs msgpack honours, in the order it looks for them.
var (
	msgpackEnc = []string{"EncodeMsgpack", "MarshalMsgpack", "MarshalBinary", "MarshalText"}
	msgpackDec = []string{"DecodeMsgpack", "UnmarshalMsgpack", "UnmarshalBinary", "UnmarshalText"}
)

const msgpackPath = "github.com/vmihailenco/msgpack/v5"

// signatures of the methods above, as parameter and result type strings.
var methodSigs = map[string][2]string{
	"EncodeMsgpack":    {"*" + msgpackPath + ".Encoder", "error"},
	"MarshalMsgpack":   {"", "[]byte,error"},
	"MarshalBinary":    {"", "[]byte,error"},
	"MarshalText":      {"", "[]byte,error"},
	"DecodeMsgpack":    {"*" + msgpackPath + ".Decoder", "error"},
	"UnmarshalMsgpack": {"[]byte", "error"},
	"UnmarshalBinary":  {"[]byte", "error"},
	"UnmarshalText":    {"[]byte", "error"},
	"EncodeRMI":        {"*" + rmiPath + ".Encoder", ""},
	"DecodeRMI":        {"*" + rmiPath + ".Decoder", ""},
}

// hasMethod reports whether the method set ms has method name with the
// signature that the codec interfaces require.
func hasMethod(ms *types.MethodSet, name string) bool {
	sel := ms.Lookup(nil, name)
	if sel == nil {
		return false
	}
	sig, ok := sel.Type().(*types.Signature)
	if !ok || sig.Variadic() {
		return false
	}
	want := methodSigs[name]
	return tupleString(sig.Params()) == want[0] && tupleString(sig.Results()) == want[1]
}

func tupleString(t *types.Tuple) string {
	s := make([]string, t.Len())
	for i := range s {
		s[i] = types.TypeString(t.At(i).Type(), nil)
	}
	return strings.Join(s, ",")
}

// qualifier prints types with their package names (time.Time), as in the IDL.
func qualifier(p *types.Package) string { return p.Name() }

// carried returns why the runtime cannot carry a value of type t named by the
// IDL, or nil. It must be called with l.mu held.
func (l *goLoader) carried(t types.Type) *carryFault {
	if f, ok := l.carry[t]; ok {
		return f
	}
	f := carriedTop(l, t)
	l.carry[t] = f
	return f
}

func carriedTop(l *goLoader, t types.Type) *carryFault {
	ptr := types.NewMethodSet(types.NewPointer(t))
	enc, dec := hasMethod(ptr, "EncodeRMI"), hasMethod(ptr, "DecodeRMI")
	switch {
	case enc && dec:
		return nil // rmi.Marshaler and rmi.Unmarshaler: no reflection
	case enc:
		return &carryFault{what: "half of a codec: *" + types.TypeString(t, qualifier) + " has EncodeRMI but no DecodeRMI(*rmi.Decoder), so the receiving side would decode it by reflection"}
	case dec:
		return &carryFault{what: "half of a codec: *" + types.TypeString(t, qualifier) + " has DecodeRMI but no EncodeRMI(*rmi.Encoder), so the sending side would encode it by reflection"}
	}
	if _, ok := t.Underlying().(*types.Interface); ok {
		return &carryFault{what: "an interface: the receiving side could not know which type to decode"}
	}
	if s, ok := t.Underlying().(*types.Struct); ok && s.NumFields() > 0 && carriedFields(s) == 0 && msgpackCodec(t, true) == -1 {
		return &carryFault{what: "a struct without exported fields or encoding methods: msgpack would carry nothing of it"}
	}
	return l.walk(t, true, map[string]bool{})
}

// carriedFields counts the fields msgpack encodes: exported or embedded, and
// not tagged msgpack:"-".
func carriedFields(s *types.Struct) int {
	n := 0
	for i := 0; i < s.NumFields(); i++ {
		if carriedField(s, i) {
			n++
		}
	}
	return n
}

func carriedField(s *types.Struct, i int) bool {
	f := s.Field(i)
	if !f.Exported() && !f.Embedded() {
		return false
	}
	name, _, _ := strings.Cut(reflect.StructTag(s.Tag(i)).Get("msgpack"), ",")
	return name != "-"
}

// msgpackCodec returns the index in msgpackEnc of the method pair msgpack
// would use for t, -1 for none (reflection on its structure), or -2 with a
// fault when the methods do not pair up.
func msgpackCodec(t types.Type, addr bool) int {
	i, _, f := msgpackMethods(t, addr)
	if f != nil {
		return -2
	}
	return i
}

// msgpackMethods finds the encoding and decoding methods msgpack would use
// for a value of type t (a pointer receiver counts only if the value is
// addressable, as msgpack requires).
func msgpackMethods(t types.Type, addr bool) (int, bool, *carryFault) {
	if _, ok := t.Underlying().(*types.Pointer); ok {
		return -1, false, nil // msgpack follows the pointer: its element decides
	}
	val := types.NewMethodSet(t)
	ptr := types.NewMethodSet(types.NewPointer(t))
	find := func(names []string) (int, bool) {
		for i, n := range names {
			if hasMethod(val, n) {
				return i, false
			}
		}
		for i, n := range names {
			if hasMethod(ptr, n) {
				return i, true
			}
		}
		return -1, false
	}
	enc, encPtr := find(msgpackEnc)
	dec, _ := find(msgpackDec)
	name := types.TypeString(t, qualifier)
	switch {
	case enc < 0 && dec < 0:
		return -1, false, nil
	case dec < 0:
		return -2, false, &carryFault{what: fmt.Sprintf("%s, which has %s but no %s: msgpack would write a value it cannot read back", name, msgpackEnc[enc], msgpackDec[enc])}
	case enc < 0:
		return -2, false, &carryFault{what: fmt.Sprintf("%s, which has %s but no %s: msgpack would write it by reflection and read it with %s", name, msgpackDec[dec], msgpackEnc[dec], msgpackDec[dec])}
	case enc != dec:
		return -2, false, &carryFault{what: fmt.Sprintf("%s, which msgpack would write with %s but read with %s", name, msgpackEnc[enc], msgpackDec[dec])}
	case encPtr && !addr:
		return -2, false, &carryFault{what: fmt.Sprintf("%s, whose %s has a pointer receiver: msgpack cannot call it on a map key or value", name, msgpackEnc[enc])}
	}
	return enc, encPtr, nil
}

// maxTypeDepth bounds the walk of a type: the runtime refuses values nested
// more than 100 deep anyway.
const maxTypeDepth = 100

// walk checks that msgpack can write and read back a value of type t by
// reflection. addr says whether the value is addressable (map keys and
// values are not, so msgpack cannot call pointer-receiver methods on them);
// visiting breaks cycles through named types.
func (l *goLoader) walk(t types.Type, addr bool, visiting map[string]bool) *carryFault {
	t = types.Unalias(t)
	if n, ok := t.(*types.Named); ok {
		// Results are not cached below the top: one found inside a cycle
		// may be incomplete.
		// Keyed by spelling, so that the instances of a generic type that
		// the importer builds separately still close the cycle.
		key := types.TypeString(n, nil)
		if visiting[key] {
			return nil // a cycle: the part of the walk that entered it decides
		}
		if len(visiting) >= maxTypeDepth {
			return &carryFault{what: fmt.Sprintf("nested more than %d named types deep", maxTypeDepth)}
		}
		visiting[key] = true
		defer delete(visiting, key)
		return l.walkNamed(n, addr, visiting)
	}
	return l.walkStructure(t, addr, visiting)
}

func (l *goLoader) walkNamed(n *types.Named, addr bool, visiting map[string]bool) *carryFault {
	if path := n.Obj().Pkg(); path != nil && path.Path() == "time" && n.Obj().Name() == "Time" {
		return nil // a msgpack extension type
	}
	i, _, f := msgpackMethods(n, addr)
	if f != nil {
		return f
	}
	if i >= 0 {
		return nil // its own codec
	}
	return l.walkStructure(n, addr, visiting)
}

// walkStructure checks the structure of t (its underlying type); t names it
// in messages.
func (l *goLoader) walkStructure(t types.Type, addr bool, visiting map[string]bool) *carryFault {
	ts := types.TypeString(t, qualifier)
	switch u := t.Underlying().(type) {
	case *types.Basic:
		switch {
		case u.Kind() == types.UnsafePointer:
			return &carryFault{what: "an unsafe.Pointer, which msgpack cannot encode"}
		case u.Kind() == types.Uintptr:
			return &carryFault{what: "a uintptr (" + ts + "), which msgpack cannot encode"}
		case u.Info()&types.IsComplex != 0:
			return &carryFault{what: "a complex number (" + ts + "), which msgpack cannot encode"}
		}
		return nil
	case *types.Pointer:
		return l.walk(u.Elem(), true, visiting)
	case *types.Slice:
		return l.walk(u.Elem(), true, visiting).under("[i]")
	case *types.Array:
		return l.walk(u.Elem(), addr, visiting).under("[i]")
	case *types.Map:
		if f := l.walk(u.Key(), false, visiting).under("[key]"); f != nil {
			return f
		}
		return l.walk(u.Elem(), false, visiting).under("[k]")
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			if !carriedField(u, i) {
				continue
			}
			if f := l.walk(u.Field(i).Type(), addr, visiting).under("." + u.Field(i).Name()); f != nil {
				return f
			}
		}
		return nil
	case *types.Interface:
		if u.Empty() || types.Identical(t, types.Universe.Lookup("error").Type()) {
			return nil // msgpack decodes a generic value (or an error's text) into it
		}
		return &carryFault{what: "an interface (" + ts + "): the receiving side could not know which type to decode"}
	case *types.Chan:
		return &carryFault{what: "a channel (" + ts + "), which msgpack cannot encode"}
	case *types.Signature:
		return &carryFault{what: "a function (" + ts + "), which msgpack cannot encode"}
	}
	return &carryFault{what: "a " + ts + ", which rmigen does not know how to carry"}
}
