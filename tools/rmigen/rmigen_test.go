package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/tools/rmigen/internal/gen"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tools/rmigen -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test ./tools/rmigen -update and review the diff):\n%s", path, diff(want, got))
	}
}

// diff shows the first differing line.
func diff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n- " + a + "\n+ " + b
		}
	}
	return ""
}

func inputs(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.rmi"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no inputs in testdata/%s: %v", dir, err)
	}
	return files
}

// TestGolden generates every testdata/golden/*.rmi and compares the output
// with its .go.golden file. It also checks that generation is deterministic.
func TestGolden(t *testing.T) {
	for _, in := range inputs(t, "golden") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gen.Generate(in, src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte(gen.Header+"\n")) {
				t.Errorf("output does not start with %q", gen.Header)
			}
			again, _ := gen.Generate(in, src)
			if !bytes.Equal(got, again) {
				t.Error("output is not deterministic")
			}
			checkGolden(t, strings.TrimSuffix(in, ".rmi")+".go.golden", got)
		})
	}
}

// TestErrors generates every testdata/errors/*.rmi, which must fail, and
// compares the messages with its .err file: the golden error table.
func TestErrors(t *testing.T) {
	for _, in := range inputs(t, "errors") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			_, err = gen.Generate(filepath.Base(in), src)
			if err == nil {
				t.Fatal("no error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, filepath.Base(in)+":") {
					t.Errorf("message not in file:line:col: form: %q", line)
				}
			}
			checkGolden(t, strings.TrimSuffix(in, ".rmi")+".err", []byte(err.Error()+"\n"))
		})
	}
}

// TestGoldenCompiles builds every golden output as a package inside the module
// (with go build -overlay, so nothing is written to the tree).
func TestGoldenCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	files := inputs(t, "golden")
	root := moduleRoot(t)
	overlay := map[string]string{}
	var pkgs []string
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".rmi")
		golden, err := filepath.Abs(strings.TrimSuffix(in, ".rmi") + ".go.golden")
		if err != nil {
			t.Fatal(err)
		}
		// Under engine/rmi/internal so that golden inputs may import the
		// internal test Go types.
		dir := filepath.Join(root, "engine", "rmi", "internal", "rmigencheck", name)
		overlay[filepath.Join(dir, name+"_rmi.go")] = golden
		pkgs = append(pkgs, "./engine/rmi/internal/rmigencheck/"+name)
	}
	out := goBuild(t, root, overlay, pkgs...)
	if out != "" {
		t.Fatalf("golden outputs do not compile:\n%s", out)
	}
}

// TestVersionGuard builds a generated file whose rmigen version is outside
// the runtime's range and checks the compiler's message.
func TestVersionGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	root := moduleRoot(t)
	src, err := os.ReadFile(filepath.Join("testdata", "golden", "basic.go.golden"))
	if err != nil {
		t.Fatal(err)
	}
	v := strconv.Itoa(rmi.GenVersion)
	for _, c := range []struct{ from, to, line string }{
		{"rmi.EnforceVersion(" + v + " - rmi.MinVersion)", "rmi.EnforceVersion(0 - rmi.MinVersion)", "older than engine/rmi supports"},
		{"rmi.EnforceVersion(rmi.MaxVersion - " + v + ")", "rmi.EnforceVersion(rmi.MaxVersion - 99)", "newer than engine/rmi"},
	} {
		old := strings.Replace(string(src), c.from, c.to, 1)
		if old == string(src) {
			t.Fatalf("basic.go.golden has no %q", c.from)
		}
		tmp := filepath.Join(t.TempDir(), "old.go")
		if err := os.WriteFile(tmp, []byte(old), 0o644); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, "engine", "rmi", "internal", "rmigencheck", "versionguard")
		out := goBuild(t, root, map[string]string{filepath.Join(dir, "old.go"): tmp}, "./engine/rmi/internal/rmigencheck/versionguard")
		if !strings.Contains(out, "overflows rmi.EnforceVersion") {
			t.Fatalf("build output %q does not report the version guard", out)
		}
		// The failing line carries the explanation.
		lineNo := strings.SplitN(strings.SplitN(out, "old.go:", 2)[1], ":", 2)[0]
		lines := strings.Split(old, "\n")
		n, err := strconv.Atoi(lineNo)
		if err != nil || n < 1 || n > len(lines) || !strings.Contains(lines[n-1], c.line) {
			t.Errorf("line %s of the generated file does not explain the failure", lineNo)
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	return root
}

// goBuild runs go build with an overlay and returns its output on failure.
func goBuild(t *testing.T, root string, overlay map[string]string, pkgs ...string) string {
	t.Helper()
	js, _ := json.Marshal(map[string]any{"Replace": overlay})
	ov := filepath.Join(t.TempDir(), "overlay.json")
	if err := os.WriteFile(ov, js, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"build", "-overlay", ov}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out) + err.Error()
	}
	return ""
}

// TestGeneratedFilesFresh regenerates the committed generated packages of the
// repository (every .rmi outside testdata) and compares bytes: a stale file
// means someone changed an IDL or rmigen without running go generate.
func TestGeneratedFilesFresh(t *testing.T) {
	root := moduleRoot(t)
	var found int
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || filepath.Ext(path) != ".rmi" {
			return nil
		}
		found++
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		want, err := gen.Generate(path, src)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		out := strings.TrimSuffix(path, ".rmi") + "_rmi.go"
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate in %s", out, filepath.Dir(out))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 3 {
		t.Errorf("found %d .rmi files, want at least the gamerpc and testidl examples and the lobby", found)
	}
}

// TestRun drives the command: default output name, -o, errors and usage.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "game.rmi")
	if err := os.WriteFile(in, []byte("package game\nglobal G 10 { Ping(); }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{in}, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "game_rmi.go")); err != nil {
		t.Errorf("default output: %v", err)
	}
	out := filepath.Join(dir, "other.go")
	if code := run([]string{"-o", out, in}, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.HasPrefix(b, []byte(gen.Header)) {
		t.Errorf("-o output: %v", err)
	}

	bad := filepath.Join(dir, "bad.rmi")
	if err := os.WriteFile(bad, []byte("package game\nglobal G 10 { Ping(int32 x); }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run([]string{bad}, &stderr); code != 1 {
		t.Errorf("bad input: exit %d, want 1", code)
	}
	if want := bad + ":2:20: missing [in]"; !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr = %q, want prefix %q", stderr.String(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad_rmi.go")); err == nil {
		t.Error("output written for bad input")
	}

	stderr.Reset()
	if code := run([]string{filepath.Join(dir, "missing.rmi")}, &stderr); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
	if code := run(nil, &stderr); code != 2 {
		t.Errorf("no args: exit %d, want 2", code)
	}
	if code := run([]string{"-x", in}, &stderr); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
}

// TestReadmeExample generates the full example of README.md.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "`game.rmi`:\n\n```\n")
	if !ok {
		t.Fatal("README.md has no game.rmi example")
	}
	idl, _, _ := strings.Cut(rest, "```\n")
	out, err := gen.Generate("game.rmi", []byte(idl))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Game_Player_Move rmi.CallID = 2000", "Game_Chat rmi.CallID = 2001",
		"Game_Shoot rmi.CallID = 2010", "Game_Respawn rmi.CallID = 2011"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("README example output lacks %q", want)
		}
	}
}

// TestIDGuard edits a call ID constant of a generated file and checks that
// the stringer-style guard stops it compiling.
func TestIDGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	root := moduleRoot(t)
	src, err := os.ReadFile(filepath.Join("testdata", "golden", "basic.go.golden"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "Game_Chat rmi.CallID = 2001", "Game_Chat rmi.CallID = 2002", 1)
	if edited == string(src) {
		t.Fatal("basic.go.golden has no Game_Chat constant")
	}
	tmp := filepath.Join(t.TempDir(), "edited.go")
	if err := os.WriteFile(tmp, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "engine", "rmi", "internal", "rmigencheck", "idguard")
	out := goBuild(t, root, map[string]string{filepath.Join(dir, "edited.go"): tmp}, "./engine/rmi/internal/rmigencheck/idguard")
	if !strings.Contains(out, "index 1 out of bounds") && !strings.Contains(out, "invalid array index") {
		t.Fatalf("build output %q does not report the ID guard", out)
	}
}
