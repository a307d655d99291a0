package h1

import "bytes"

// validHost reports whether a Host field's value holds only bytes that a host and
// port may hold (RFC 3986 section 3.2.2: unreserved, sub-delims, percent escapes, the
// brackets of an IPv6 address, the colon before a port). RFC 9112 section 3.2 asks
// for 400 for an invalid Host; a space or a byte beyond ASCII is never part of one.
func validHost(v []byte) bool {
	for _, c := range v {
		if !hostByte[c] {
			return false
		}
	}
	return true
}

// validAuthority reports whether a, the authority of an absolute-form target or the
// target of CONNECT, is host[:port] (RFC 3986 section 3.2): a non-empty registered
// name or IPv4 address, or an IPv6 address in brackets, then digits after a colon.
// It takes no user information, zone or percent escape.
func validAuthority(a []byte) bool {
	host, port := a, []byte(nil)
	if len(a) > 0 && a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 || !ipv6(a[1:end]) {
			return false
		}
		port = a[end+1:]
		if len(port) > 0 && port[0] != ':' {
			return false
		}
	} else {
		if i := bytes.IndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i:]
		}
		if len(host) == 0 {
			return false // RFC 9110 section 4.2.1: an empty host is invalid
		}
		for _, c := range host {
			if !regNameByte[c] {
				return false
			}
		}
	}
	for i := 1; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
	}
	return true
}

// ipv6 reports whether b is an IPv6 address (RFC 4291 section 2.2): eight groups
// of one to four hex digits, "::" standing for one or more zero groups once, the
// last two groups possibly written as an IPv4 address.
func ipv6(b []byte) bool {
	if i := bytes.Index(b, []byte("::")); i >= 0 {
		left, okl := groups(b[:i], false)
		right, okr := groups(b[i+2:], true)
		return okl && okr && left+right <= 7
	}
	n, ok := groups(b, true)
	return ok && n == 8
}

// groups counts the 16-bit groups in b, colon-separated; the last one may be an
// IPv4 address (two groups) when v4 is true. Empty b holds none.
func groups(b []byte, v4 bool) (int, bool) {
	if len(b) == 0 {
		return 0, true
	}
	n := 0
	for {
		g, rest, more := bytes.Cut(b, []byte(":"))
		if !more && v4 && bytes.IndexByte(g, '.') >= 0 {
			return n + 2, ipv4(g)
		}
		if len(g) == 0 || len(g) > 4 {
			return 0, false
		}
		for _, c := range g {
			if !isHex(c) {
				return 0, false
			}
		}
		n++
		if !more {
			return n, true
		}
		b = rest
	}
}

// ipv4 reports whether b is a dotted-decimal IPv4 address without leading zeros.
func ipv4(b []byte) bool {
	for part := range 4 {
		g, rest, more := bytes.Cut(b, []byte("."))
		if more != (part < 3) || len(g) == 0 || len(g) > 3 || len(g) > 1 && g[0] == '0' {
			return false
		}
		n := 0
		for _, c := range g {
			if !isDigit(c) {
				return false
			}
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return false
		}
		b = rest
	}
	return true
}

// regNameByte holds the bytes of a registered name or IPv4 address, unescaped
// (RFC 3986 section 3.2.2: unreserved and sub-delims).
var regNameByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-._~!$&'()*+,;=" {
		t[c] = true
	}
	return t
}()

// hostByte holds the bytes a Host field may hold: regNameByte's, and the percent
// sign, colon and brackets.
var hostByte = func() (t [256]bool) {
	t = regNameByte
	for _, c := range "%:[]" {
		t[c] = true
	}
	return t
}()
