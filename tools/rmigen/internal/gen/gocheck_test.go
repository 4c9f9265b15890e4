package gen

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeModule writes a small module (no dependencies, so go list needs no
// network) into a temporary directory and returns the directory.
func writeModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.25\n"
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestGoTypesFromTheIDLDirectory checks that Go types are resolved as the go
// command sees them from the IDL file's directory (its module), that a
// package whose name differs from its path gets an alias in the output, and
// that a package that does not compile is an error at its import.
func TestGoTypesFromTheIDLDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	dir := writeModule(t, map[string]string{
		"dirname/p.go":    "package othername\n\n// V is carried by reflection.\ntype V struct{ X int }\n",
		"broken/b.go":     "package broken\n\nvar X int = \"s\"\n\n// T exists.\ntype T struct{ Y int }\n",
		"usesbroken/u.go": "package usesbroken\n\nimport \"example.com/m/broken\"\n\n// U exists.\ntype U broken.T\n",
	})

	src := "package p\nimport \"example.com/m/dirname\"\nstruct A { V dirname.V }\n"
	out, err := Generate(filepath.Join(dir, "a.rmi"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "dirname \"example.com/m/dirname\"") {
		t.Errorf("the import of package othername from .../dirname has no alias:\n%s", out)
	}

	// The same IDL elsewhere (outside the module) cannot load the package.
	_, err = Generate(filepath.Join(t.TempDir(), "a.rmi"), []byte(src))
	if err == nil || !strings.Contains(err.Error(), "a.rmi:2:8: cannot import \"example.com/m/dirname\"") {
		t.Errorf("outside the module: %v", err)
	}

	src = "package p\nimport \"example.com/m/broken\"\nimport \"example.com/m/usesbroken\"\nstruct A { T broken.T; U usesbroken.U }\n"
	_, err = Generate(filepath.Join(dir, "b.rmi"), []byte(src))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("broken packages: %v", err)
	}
	if want := `b.rmi:2:8: cannot import "example.com/m/broken": broken/b.go:3:13: cannot use "s"`; !strings.HasPrefix(list[0].Error(), filepath.Join(dir, want)) {
		t.Errorf("got %q, want prefix %q", list[0], want)
	}
	if want := `b.rmi:3:8: cannot import "example.com/m/usesbroken": a package it imports fails: broken/b.go:3:13`; !strings.HasPrefix(list[1].Error(), filepath.Join(dir, want)) {
		t.Errorf("got %q, want prefix %q", list[1], want)
	}
}

// TestNoGoCommandWithoutGoTypes checks that a file without Go types never
// runs go list: the loader of a directory that does not exist would fail.
func TestNoGoCommandWithoutGoTypes(t *testing.T) {
	name := filepath.Join(t.TempDir(), "missing", "a.rmi")
	if _, err := Generate(name, []byte("package p\nstruct A { X int32; Y []A }\nglobal G 1 { M([in] A a); }\n")); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(name, []byte("package p\nimport \"time\"\nstruct A { D time.Duration }\n"))
	if err == nil || !strings.Contains(err.Error(), "a.rmi:2:8: cannot import \"time\": go list failed") {
		t.Errorf("got %v, want a go list failure at the import", err)
	}
}

// TestSuggest checks the "did you mean" part of a missing type's message.
func TestSuggest(t *testing.T) {
	l := loaderFor(".")
	l.mu.Lock()
	defer l.mu.Unlock()
	pkg := l.load([]string{"time"})["time"].pkg
	if pkg == nil {
		t.Fatal("cannot load time")
	}
	for name, want := range map[string]string{
		"D":                      "; did you mean time.Duration?",
		"durAtion":               "; did you mean time.Duration?",
		"Tim":                    "; did you mean time.Time or time.Timer?",
		"Mnth":                   "; did you mean time.Month?",
		"Zzzzzz":                 "",
		strings.Repeat("x", 200): "",
	} {
		if got := suggest(&Type{Pkg: "time", Name: name}, pkg); got != want {
			t.Errorf("suggest(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestLoadablePath checks which import paths are kept away from go list.
func TestLoadablePath(t *testing.T) {
	for p, ok := range map[string]bool{
		"time": true, "net/netip": true, "github.com/vmihailenco/msgpack/v5": true, "gopkg.in/yaml.v3": true,
		"std": false, "all": false, "cmd": false, "net/...": false, "-toolexec=x": false, "a/-b": false,
		"example.com/x@v1": false, "a/.hidden": false, "é": false,
	} {
		if got := loadablePath(p) == ""; got != ok {
			t.Errorf("loadablePath(%q) allows = %v, want %v", p, got, ok)
		}
	}
}

// TestCarried checks what the runtime can carry on types msgpack handles by
// reflection: pointers, nested time.Time, error and any fields, value-receiver
// codecs in maps and recursion through slices are accepted; a channel reached
// through a cycle is found whichever type of the cycle the IDL names.
func TestCarried(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	dir := writeModule(t, map[string]string{"k/k.go": `package k

import "time"

// Ok is carried by reflection.
type Ok struct {
	P    *int
	When time.Time
	Err  error
	Any  any
	M    map[string]Text
	Kids []Ok
	skip chan int
	Tag  chan int ` + "`msgpack:\"-\"`" + `
}

// Text has value-receiver text methods: usable as a map value.
type Text struct{ S string }

// MarshalText returns t.S.
func (t Text) MarshalText() ([]byte, error) { return []byte(t.S), nil }

// UnmarshalText sets t.S.
func (t *Text) UnmarshalText(b []byte) error { t.S = string(b); return nil }

// A and B form a cycle; A holds a channel.
type A struct {
	Bs []B
	Ch chan int
}

// B is the other half of the cycle.
type B struct{ As []A }

// Empty carries nothing, and says so by having no fields.
type Empty struct{}

// List is generic and refers to itself.
type List[T any] struct {
	V    T
	Next *List[T]
}

// Ints is an instance of List: the IDL can name it.
type Ints = List[int]

// Chans is an instance of List that holds channels.
type Chans = List[chan int]
`})
	src := "package p\nimport \"example.com/m/k\"\nstruct S { O k.Ok; E k.Empty; I k.Ints }\n"
	if _, err := Generate(filepath.Join(dir, "ok.rmi"), []byte(src)); err != nil {
		t.Errorf("accepted types refused: %v", err)
	}
	src = "package p\nimport \"example.com/m/k\"\nstruct S { A k.A; B k.B; C k.Chans; L k.List }\n"
	_, err := Generate(filepath.Join(dir, "cycle.rmi"), []byte(src))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 4 {
		t.Fatalf("cycle: %v", err)
	}
	for i, want := range []string{"k.A cannot be carried: field Ch is a channel", "k.B cannot be carried: field As[i].Ch is a channel",
		"k.Chans cannot be carried: field V is a channel", "k.List is generic"} {
		if !strings.Contains(list[i].Msg, want) {
			t.Errorf("got %q, want %q", list[i].Msg, want)
		}
	}
}

// TestEditDistance checks the distance behind the suggestions: insertions,
// deletions, substitutions and swaps of adjacent bytes cost one each.
func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"team", "team", 0}, {"", "abc", 3}, {"float", "float32", 2},
		{"tema", "team", 1}, {"vce2", "vec2", 1}, {"strng", "string", 1}, {"uint65", "uint64", 1},
		{"abcd", "badc", 2}, {"ca", "abc", 3}, {"quaternion", "string", 7},
		{strings.Repeat("a", 65), strings.Repeat("a", 65), 0}, {strings.Repeat("a", 65), "a", 65},
	} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := editDistance(c.b, c.a); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (not symmetric)", c.b, c.a, got, c.want)
		}
	}
}
