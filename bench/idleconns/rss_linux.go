package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// rss returns the resident memory in MiB of pid and of every process it started (a
// load balancer's data-plane processes and plugins): their proportional set size, so
// that pages they share are counted once.
func rss(pid int) float64 {
	total := 0.0
	for _, p := range tree(pid) {
		total += pss(p)
	}
	return total
}

// tree returns pid and its descendants.
func tree(pid int) []int {
	out := []int{pid}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for f := range strings.FieldsSeq(string(data)) {
			if child, err := strconv.Atoi(f); err == nil {
				out = append(out, tree(child)...)
			}
		}
	}
	return out
}

// pss returns pid's proportional set size in MiB (its resident size where the kernel
// does not tell).
func pss(pid int) float64 {
	for _, file := range []string{"smaps_rollup", "status"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, map[string]string{"smaps_rollup": "Pss:", "status": "VmRSS:"}[file]); ok {
				var kb float64
				fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
				return kb / 1024
			}
		}
	}
	return 0
}
