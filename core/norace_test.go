//go:build !race && unix

package main

var raceFlag []string
