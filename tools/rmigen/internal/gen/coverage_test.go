package gen

import (
	"errors"
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEveryErrorMessageHasACase checks that each message the lexer, parser
// and checker can report (every errorf format in this package) is produced
// by at least one case of the golden error table in
// tools/rmigen/testdata/errors.
func TestEveryErrorMessageHasACase(t *testing.T) {
	formats := map[string]string{} // format -> where it is reported
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "errorf" {
				return true
			}
			lit, ok := call.Args[1].(*ast.BasicLit)
			if !ok {
				t.Errorf("%v: errorf with a non-literal format", fset.Position(call.Pos()))
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			formats[s] = fset.Position(call.Pos()).String()
			return true
		})
	}
	if len(formats) < 40 {
		t.Fatalf("found only %d error formats", len(formats))
	}

	covered := map[string]bool{}
	cases, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "errors", "*.rmi"))
	for _, name := range cases {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Generate(filepath.Base(name), src)
		var list ErrorList
		if !errors.As(err, &list) {
			t.Errorf("%s: error %v is not an ErrorList", name, err)
			continue
		}
		for _, e := range list {
			covered[e.format] = true
		}
	}
	for f, where := range formats {
		if !covered[f] {
			t.Errorf("no case in testdata/errors reports %q (%s)", f, where)
		}
	}
}

// typeChecker type-checks generated files against the real engine/rmi and
// engine/net and the Go packages the IDL imports, all read from export data
// by the loader rmigen itself uses (go list -export from this directory,
// once per path and process: type-checking the standard library from
// source in every fuzz worker would be much slower).
type typeChecker struct {
	l       *goLoader
	checked int
}

func newTypeChecker(tb testing.TB) *typeChecker {
	l := loaderFor(".")
	l.mu.Lock()
	defer l.mu.Unlock()
	for path, p := range l.load([]string{rmiPath, netPath}) {
		if p.pkg == nil {
			tb.Fatalf("loading %s: %s", path, p.err)
		}
	}
	return &typeChecker{l: l}
}

// check type-checks one generated file. Every package it imports must load:
// rmigen accepts a Go type only from a package it could load.
func (tc *typeChecker) check(src []byte) error {
	fset := token.NewFileSet()
	f, err := goparser.ParseFile(fset, "gen.go", src, goparser.ParseComments)
	if err != nil {
		return err
	}
	tc.l.mu.Lock()
	defer tc.l.mu.Unlock()
	conf := types.Config{Importer: importerFunc(func(path string) (*types.Package, error) {
		p := tc.l.load([]string{path})[path]
		if p.pkg == nil {
			return nil, fmt.Errorf("rmigen accepted an import it cannot load: %q: %s", path, p.err)
		}
		return p.pkg, nil
	})}
	_, err = conf.Check("gen", fset, []*ast.File{f}, nil)
	tc.checked++
	return err
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// FuzzGenerate feeds arbitrary IDL to the generator: it must never panic,
// must fail only with positioned messages, and whatever it accepts must
// type-check against the real runtime and the real Go packages it imports.
// Inputs import arbitrary paths: each is loaded once per fuzz worker (go
// list, about 10 ms for a path that does not exist), then cached.
func FuzzGenerate(f *testing.F) {
	for _, dir := range []string{"golden", "errors"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", dir, "*.rmi"))
		for _, name := range files {
			src, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	tc := newTypeChecker(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		out, err := Generate("fuzz.rmi", src)
		if err == nil {
			if err := tc.check(out); err != nil {
				t.Fatalf("generated code does not type-check: %v\n%s", err, numbered(out))
			}
			return
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("not an ErrorList: %v", err)
		}
		for _, e := range list {
			if e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Fatalf("bad position: %v", e)
			}
		}
	})
}
