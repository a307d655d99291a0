//go:build !linux

package main

// rss would read a process's resident memory in MiB; only Linux has /proc/PID/status
// to read it from, so here it reports 0 (compare with ps -o rss= -p PID).
func rss(int) float64 { return 0 }
