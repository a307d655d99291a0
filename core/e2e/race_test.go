//go:build race && unix

package e2e

// raceFlag builds the programs under test with the race detector when the tests run with it.
var raceFlag = []string{"-race"}
