package main

import "golang.org/x/sys/windows"

// errConnRefused is the error a refused dial wraps. On Windows it is
// WSAECONNREFUSED, which syscall.ECONNREFUSED does not match.
var errConnRefused error = windows.WSAECONNREFUSED
