//go:build darwin || freebsd || netbsd || openbsd

package engine

// writeWhileConnecting: these systems refuse a write to a socket whose connect is
// under way (ENOTCONN), so a request waits for the connect to end (see use).
const writeWhileConnecting = false
