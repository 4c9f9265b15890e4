package gen

import (
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	goparser "go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
// engine/net (loaded from source once).
type typeChecker struct {
	imp              types.ImporterFrom
	dir              string
	checked, skipped int
}

func newTypeChecker(tb testing.TB) *typeChecker {
	dir, err := filepath.Abs(".")
	if err != nil {
		tb.Fatal(err)
	}
	// Export data from the build cache (go list -export) is much faster than
	// type-checking the standard library from source in every fuzz worker.
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-export", "-deps",
		"-f", "{{.ImportPath}} {{.Export}}",
		"github.com/skein-dev/skein/engine/rmi", "github.com/skein-dev/skein/engine/rmi/internal/testidl/gotypes",
		"github.com/vmihailenco/msgpack/v5", "time", "net", "net/netip", "encoding/json")
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("go list -export: %v", err)
	}
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, " "); ok && file != "" {
			exports[path] = file
		}
	}
	lookup := func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %q", path)
		}
		return os.Open(file)
	}
	return &typeChecker{imp: importer.ForCompiler(token.NewFileSet(), "gc", lookup).(types.ImporterFrom), dir: dir}
}

func (tc *typeChecker) check(src []byte) error {
	fset := token.NewFileSet()
	f, err := goparser.ParseFile(fset, "gen.go", src, goparser.ParseComments)
	if err != nil {
		return err
	}
	var missing bool
	conf := types.Config{Importer: importerFunc(func(path string) (*types.Package, error) {
		p, err := tc.imp.ImportFrom(path, tc.dir, 0)
		if err != nil {
			missing = true
		}
		return p, err
	})}
	_, err = conf.Check("gen", fset, []*ast.File{f}, nil)
	if missing {
		tc.skipped++
		return nil
	}
	tc.checked++
	return err
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// FuzzGenerate feeds arbitrary IDL to the generator: it must never panic,
// must fail only with positioned messages, and whatever it accepts must
// type-check against the real runtime (imports of unknown paths excepted).
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
