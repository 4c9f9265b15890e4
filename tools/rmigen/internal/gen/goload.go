package gen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// goListTimeout bounds one run of go list: loading never hangs rmigen.
const goListTimeout = 2 * time.Minute

// goPackage is the outcome of loading one import path.
type goPackage struct {
	pkg *types.Package
	err string // why the path cannot be imported; "" when pkg is set
}

// goLoader loads the Go packages that IDL import lines name, as the go
// command sees them from one directory (the IDL file's): `go list -export
// -deps` compiles them (or finds them in the build cache) and the type
// information is read from the export data. Nothing is fetched that the go
// command would not fetch for a build in that directory. Every import path is
// loaded at most once per process; the results, failures included, are
// cached.
type goLoader struct {
	dir string

	mu      sync.Mutex        // guards everything below and every use of the types they hold
	exports map[string]string // import path -> export data file, for imp
	pkgs    map[string]*goPackage
	imp     types.Importer
	carry   map[types.Type]*carryFault // why a type named by an IDL cannot be carried; nil when it can

	// Learnt once, to refuse without running go list a path that cannot
	// exist (the fuzzer tries thousands): the go command's GOROOT ("" if
	// unknown) and the modules of the build (nil if unknown).
	probed  bool
	goroot  string
	modules []goModule
}

var (
	loadersMu sync.Mutex
	loaders   = map[string]*goLoader{}
)

// loaderFor returns the process-wide loader of directory dir.
func loaderFor(dir string) *goLoader {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	loadersMu.Lock()
	defer loadersMu.Unlock()
	l, ok := loaders[dir]
	if !ok {
		l = &goLoader{dir: dir, exports: map[string]string{}, pkgs: map[string]*goPackage{}, carry: map[types.Type]*carryFault{}}
		l.imp = importer.ForCompiler(token.NewFileSet(), "gc", l.lookup)
		loaders[dir] = l
	}
	return l
}

// lookup opens the export data of path for the gc importer. It runs with
// l.mu held (the importer is only used under it).
func (l *goLoader) lookup(path string) (io.ReadCloser, error) {
	file, ok := l.exports[path]
	if !ok || file == "" {
		return nil, fmt.Errorf("no export data for %q", path)
	}
	return os.Open(file)
}

// goListMeta are go list's meta-patterns: arguments that name sets of
// packages, not a package.
var goListMeta = map[string]bool{"all": true, "std": true, "cmd": true, "tool": true, "work": true}

// loadablePath reports why the go command cannot load p as one package, or ""
// if it can try. It keeps patterns ("net/...", "std"), flags ("-x") and
// version queries ("p@v1") away from go list.
func loadablePath(p string) string {
	if goListMeta[p] {
		return "it is a go command pattern, not a package path"
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == "" || elem[0] == '-' || elem[0] == '.' || strings.Contains(elem, "...") {
			return "it is not a package path the go command accepts"
		}
		for _, r := range elem {
			if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune("-._~+", r) {
				return "it is not a package path the go command accepts"
			}
		}
	}
	return ""
}

// goCommand returns the go command to run: the one of $GOROOT (go generate
// sets it), else the one on $PATH.
func goCommand() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); isFile(p) {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go" // not found: running it fails with a clear error
}

func isFile(p string) bool {
	fi, err := os.Stat(p) //nolint:gosec // p is $GOROOT/bin/go, from the environment of whoever runs rmigen
	return err == nil && fi.Mode().IsRegular()
}

// listed is the part of go list -json output the loader reads.
type listed struct {
	ImportPath string
	Name       string
	Export     string
	Standard   bool
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

// load returns the packages of paths (each loaded once per process). It must
// be called with l.mu held.
func (l *goLoader) load(paths []string) map[string]*goPackage {
	var missing []string
	for _, p := range paths {
		if _, ok := l.pkgs[p]; ok {
			continue
		}
		why := loadablePath(p)
		if why == "" {
			why = l.impossible(p)
		}
		if why != "" {
			l.pkgs[p] = &goPackage{err: why}
			continue
		}
		missing = append(missing, p)
	}
	if len(missing) > 0 {
		l.list(missing)
	}
	out := make(map[string]*goPackage, len(paths))
	for _, p := range paths {
		out[p] = l.pkgs[p]
	}
	return out
}

// goModule is a module of the build: its path, and its directory if it is
// on disk ("" if not downloaded).
type goModule struct {
	path, dir string
}

// probe learns, once, the go command's GOROOT and the modules of the build
// as seen from l.dir. Either may stay unknown (no module, a vendor
// directory, an error): the checks that need it are then left to go list.
func (l *goLoader) probe() {
	l.probed = true
	ctx, cancel := context.WithTimeout(context.Background(), goListTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCommand(), "env", "GOROOT")
	cmd.Dir = l.dir
	if out, err := cmd.Output(); err == nil {
		l.goroot = strings.TrimSpace(string(out))
	}
	cmd = exec.CommandContext(ctx, goCommand(), "list", "-m", "-e", "-f", "{{.Path}}\t{{.Dir}}", "all")
	cmd.Dir = l.dir
	if out, err := cmd.Output(); err == nil {
		l.modules = []goModule{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			path, dir, _ := strings.Cut(line, "\t")
			l.modules = append(l.modules, goModule{path, dir})
		}
	}
}

// impossible returns why path p cannot be imported, if that is known without
// loading it: a standard-library path that only the toolchain may import, or
// a path that is neither in the standard library nor a directory of a module
// of the build. It returns "" when go list must decide. It must be called with l.mu
// held.
func (l *goLoader) impossible(p string) string {
	if !l.probed {
		l.probe()
	}
	if l.goroot == "" {
		return ""
	}
	if fi, err := os.Stat(filepath.Join(l.goroot, "src", filepath.FromSlash(p))); err == nil && fi.IsDir() {
		switch {
		case strings.HasPrefix(p, "cmd/"):
			return "it belongs to the Go toolchain (cmd/...), not an importable package"
		case stdInternal(p):
			return "it is internal to the Go standard library"
		}
		return ""
	}
	if l.modules == nil {
		return ""
	}
	for _, m := range l.modules {
		if p != m.path && !strings.HasPrefix(p, m.path+"/") {
			continue
		}
		if m.dir == "" {
			return "" // not downloaded: go list will say
		}
		rel := filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(p, m.path), "/"))
		if fi, err := os.Stat(filepath.Join(m.dir, rel)); err == nil && fi.IsDir() {
			return ""
		}
	}
	return "it is not in the standard library, and no module of the build provides it"
}

// list runs go list once for paths and records a result for each.
func (l *goLoader) list(paths []string) {
	ctx, cancel := context.WithTimeout(context.Background(), goListTimeout)
	defer cancel()
	args := append([]string{"list", "-e", "-export", "-deps",
		"-json=ImportPath,Name,Export,Standard,Error,DepsErrors", "--"}, paths...)
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = l.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		why := "go list failed: " + oneLine(stderr.String())
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			why = fmt.Sprintf("go list did not finish within %v", goListTimeout)
		} else if stderr.Len() == 0 {
			why = "go list failed: " + err.Error()
		}
		for _, p := range paths {
			l.pkgs[p] = &goPackage{err: why}
		}
		return
	}
	found := map[string]*listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var e listed
		if err := dec.Decode(&e); err != nil {
			if !errors.Is(err, io.EOF) {
				for _, p := range paths {
					if _, ok := found[p]; !ok {
						l.pkgs[p] = &goPackage{err: "cannot read go list output: " + err.Error()}
					}
				}
			}
			break
		}
		if e.Export != "" {
			l.exports[e.ImportPath] = e.Export
		}
		found[e.ImportPath] = &e
	}
	for _, p := range paths {
		if l.pkgs[p] != nil {
			continue
		}
		l.pkgs[p] = l.result(p, found[p])
	}
}

// result turns go list's report on path p into a package or a reason.
func (l *goLoader) result(p string, e *listed) *goPackage {
	switch {
	case e == nil:
		return &goPackage{err: "go list did not report it"}
	case e.Error != nil:
		return &goPackage{err: listError(e.Error.Err)}
	case len(e.DepsErrors) > 0:
		return &goPackage{err: "a package it imports fails: " + listError(e.DepsErrors[0].Err)}
	case e.Name == "main":
		return &goPackage{err: "it is a program (package main), not an importable package"}
	case e.Standard && stdInternal(p):
		return &goPackage{err: "it is internal to the Go standard library"}
	case p == "unsafe":
		return &goPackage{pkg: types.Unsafe}
	case e.Export == "":
		return &goPackage{err: "the go command has no compiled form of it (package " + e.Name + " cannot be imported)"}
	}
	pkg, err := l.imp.Import(p)
	if err != nil {
		return &goPackage{err: "cannot read its export data: " + oneLine(err.Error())}
	}
	return &goPackage{pkg: pkg}
}

// stdInternal reports whether the standard-library path p can only be
// imported by the standard library itself.
func stdInternal(p string) bool {
	if strings.HasPrefix(p, "vendor/") || strings.HasPrefix(p, "cmd/") {
		return true
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == "internal" {
			return true
		}
	}
	return false
}

// listError shortens an error of go list to one line without
// machine-specific paths.
func listError(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "# ") { // "# path\nfile:line:col: message" from the compiler
		if _, rest, ok := strings.Cut(s, "\n"); ok {
			s = rest
		}
	}
	// "package x is not in std (/usr/local/go/src/x)"
	if i := strings.Index(s, " is not in std ("); i >= 0 && strings.HasSuffix(s, ")") {
		s = s[:i] + " is not in the standard library"
	}
	return oneLine(s)
}

// oneLine joins the lines of s with single spaces and caps its length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:297], "") + "..."
	}
	return s
}
