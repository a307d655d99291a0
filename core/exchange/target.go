package exchange

import "bytes"

// OriginForm splits an absolute-form target (RFC 9112 section 3.2.2) into the
// origin-form target and the authority.
func OriginForm(target []byte) (origin, authority []byte, ok bool) {
	if len(target) == 0 || target[0] == '/' || target[0] == '*' {
		return nil, nil, false
	}
	i := bytes.Index(target, []byte("://"))
	if i <= 0 {
		return nil, nil, false
	}
	rest := target[i+3:]
	j := bytes.IndexAny(rest, "/?")
	if j < 0 {
		return []byte("/"), rest, true
	}
	authority, origin = rest[:j], rest[j:]
	if origin[0] == '?' {
		return append([]byte("/"), origin...), authority, true
	}
	return origin, authority, true
}

// Path is the path of a request target, without its query.
func Path(target []byte) []byte {
	if t, _, ok := OriginForm(target); ok {
		target = t
	}
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		return target[:i]
	}
	return target
}
