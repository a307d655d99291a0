//go:build !race && unix

package e2e

var raceFlag []string
