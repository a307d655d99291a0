//go:build !unix || solaris

package lb

import "net"

// handOver: listen cannot bind a replacement front on the port the running one holds.
const handOver = false

// listen opens a plain TCP listener. Here (Windows; also Solaris and illumos, where
// golang.org/x/sys/unix has no SO_REUSEPORT) two listeners cannot bind the same port,
// so the live hand-over that listen_reuseport.go allows is impossible: a config edit
// that keeps the host and port but changes what the front is built from (the client
// timeouts or header limit) would need a second bind of the port the old front still
// holds. That edit is refused with errNoHandOver instead, and Apply leaves the running
// configuration unchanged (status last_error says why). Edits that move the listener
// to another host or port bind a fresh port and work as on Linux, as do all others.
//
// A plain bind is already exclusive here (Go sets no SO_REUSEADDR on Windows
// listeners), so exclusive needs no probe.
func listen(addr string, exclusive bool) (net.Listener, error) {
	if !exclusive {
		return nil, errNoHandOver
	}
	return net.Listen("tcp", addr)
}
