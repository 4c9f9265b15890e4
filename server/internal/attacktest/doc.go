// Package attacktest is the attack suite against the real match server
// binary: issue 11's eight attacks and a flood of refused connect tokens,
// each bounded in count and time, run on loopback while a legitimate client
// bound to 127.0.0.9 connects (with a fresh token against -auth token) and
// makes reliable round trips. README.md lists what each attack does and what it
// asserts; the code is all in the package's tests.
//
//	go test ./server/internal/attacktest                       # short form
//	go test ./server/internal/attacktest -attack.long -v -timeout 30m # figures
package attacktest
