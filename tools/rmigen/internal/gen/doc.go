// Package gen is rmigen's compiler: it turns an RMI IDL file (.rmi) into Go
// source for the engine/rmi runtime.
//
// Generate is the whole pipeline. Parse (parser.go over lexer.go) builds a
// File (ast.go); Check (check.go, enum.go, and gocheck.go with goload.go for
// the Go types an IDL imports) resolves names and reports every semantic
// problem; Emit (emit.go, enum.go) writes gofmt'd Go that compiles whenever
// Check accepted the file. Problems come back as an ErrorList of positioned
// *Error values ("file:line:col: message"): the parser reports the first
// syntax error of each declaration and goes on with the next one, and the
// checker, run when the file parsed, reports everything it finds, sorted.
//
// The grammar, the generated API and the wire format are documented in
// tools/rmigen/README.md; the runtime in package engine/rmi.
package gen
