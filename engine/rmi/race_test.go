//go:build race

package rmi_test

const raceEnabled = true
