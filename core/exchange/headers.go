package exchange

import "github.com/switchyard-lb/switchyard/core/h1"

// Which header fields a hop keeps, decided by name, with names compared by length
// first (DESIGN section 11).

// HopByHop reports whether name describes one connection only and is not passed on:
// Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization,
// TE, Trailer (requests only; an answer's announces its trailers) and Upgrade (passed
// on by an upgrade, which says so itself).
func HopByHop(name []byte, request bool) bool {
	switch len(name) {
	case 2:
		return h1.EqualFold(name, "te")
	case 7:
		return h1.EqualFold(name, "upgrade") || request && h1.EqualFold(name, "trailer")
	case 10:
		return h1.EqualFold(name, "connection") || h1.EqualFold(name, "keep-alive")
	case 16:
		return h1.EqualFold(name, "proxy-connection")
	case 18:
		return h1.EqualFold(name, "proxy-authenticate")
	case 19:
		return h1.EqualFold(name, "proxy-authorization")
	}
	return false
}

// Forwarded reports whether name is one of the headers the proxy sets itself: a
// client's own values are dropped, so that a backend can trust them.
func Forwarded(name []byte) bool {
	switch len(name) {
	case 9:
		return h1.EqualFold(name, "forwarded")
	case 15:
		return h1.EqualFold(name, "x-forwarded-for")
	case 16:
		return h1.EqualFold(name, "x-forwarded-host")
	case 17:
		return h1.EqualFold(name, "x-forwarded-proto")
	}
	return false
}

// Protected reports whether Connection may never remove name: framing, Host and the
// headers the proxy sets.
func Protected(name []byte) bool {
	switch len(name) {
	case 4:
		return h1.EqualFold(name, "host")
	case 14:
		return h1.EqualFold(name, "content-length")
	case 17:
		return h1.EqualFold(name, "transfer-encoding") || h1.EqualFold(name, "x-forwarded-proto")
	}
	return Forwarded(name)
}

// ContentLength reports whether name is Content-Length: it goes on as one value
// however it came (a list of equal values, repeated lines), so that every recipient
// reads the one the proxy framed the message by (RFC 9110 section 8.6).
func ContentLength(name []byte) bool { return len(name) == 14 && h1.EqualFold(name, "content-length") }
