//go:build race

package net

// raceEnabled: the race detector is on (sync.Pool then drops items on
// purpose, so allocation counts mean nothing).
const raceEnabled = true
