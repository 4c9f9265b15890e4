// Command rmigen compiles a Skein RMI IDL file (.rmi) into Go proxies and
// stubs for package github.com/skein-dev/skein/engine/rmi.
//
// Usage:
//
//	rmigen [-o out.go] file.rmi
//
// Without -o the output is written next to the input as file_rmi.go (for
// game.rmi, game_rmi.go). Errors are printed as file:line:col: message and
// make rmigen exit with status 1; usage errors exit with status 2. Put a line
// such as
//
//	//go:generate go run github.com/skein-dev/skein/tools/rmigen -o game_rmi.go game.rmi
//
// in a Go file of the package and run go generate. Go types that the IDL
// imports are checked against the packages the go command loads from the
// directory of file.rmi. See README.md for the IDL grammar.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/skein-dev/skein/tools/rmigen/internal/gen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("rmigen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `file` (default: the input name with .rmi replaced by _rmi.go)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: rmigen [-o out.go] file.rmi\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	in := fs.Arg(0)
	if *out == "" {
		*out = strings.TrimSuffix(in, ".rmi") + "_rmi.go"
	}
	src, err := os.ReadFile(in)
	if err != nil {
		fmt.Fprintf(stderr, "rmigen: %v\n", err)
		return 1
	}
	code, err := gen.Generate(in, src)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := os.WriteFile(*out, code, 0o644); err != nil { //nolint:gosec // Go source, read by the build and by people like any other
		fmt.Fprintf(stderr, "rmigen: %v\n", err)
		return 1
	}
	return 0
}
