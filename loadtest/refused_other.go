//go:build !windows

package main

import "syscall"

// errConnRefused is the error a refused dial wraps.
var errConnRefused error = syscall.ECONNREFUSED
