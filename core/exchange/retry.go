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

// MayRetry reports whether a request whose attempts-th round trip failed goes to
// another backend (DESIGN section 3): at most retries more times, and only when the
// backend got none of it (notSent), whatever the method, or when the request is
// idempotent and has no body, so that it can be sent again as it was.
func MayRetry(attempts, retries int, notSent bool, method []byte, bodiless bool) bool {
	return attempts <= retries && (notSent || Idempotent(method) && bodiless)
}
