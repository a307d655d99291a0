//go:build linux

package engine

// writeWhileConnecting: a write to a socket whose connect is under way waits for
// it (EAGAIN), so a request may be written as soon as connect returns (see use).
const writeWhileConnecting = true
