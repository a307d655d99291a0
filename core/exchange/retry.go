package exchange

// Idempotent reports whether a request with method may be sent again after a byte
// of it reached a backend (RFC 9110 section 9.2.2; DESIGN section 3).
func Idempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}
