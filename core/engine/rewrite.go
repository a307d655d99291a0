//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

import (
	"bytes"
	"strconv"

	"github.com/switchyard-lb/switchyard/core/exchange"

	"github.com/switchyard-lb/switchyard/core/h1"
)

// Which header fields a hop keeps is the exchange's rule (exchange.HopByHop and
// the rest); here it is applied to a head in one pass.

// named reports whether Connection lists name.
func named(list [][]byte, name []byte) bool {
	for _, n := range list {
		if len(n) == len(name) && bytes.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// appendRequestHead appends the head sent to a backend for r on route rt: HTTP/1.1,
// an origin-form target (its path without the route's prefix), hop-by-hop fields and
// the client's X-Forwarded-* dropped, Host kept (the target's host for an
// absolute-form target; fallback when the client sent none), the route's header rules
// applied, and X-Forwarded-For, -Proto and -Host set.
func appendRequestHead(dst []byte, r *h1.Request, rt *exchange.Route, ip, fallback []byte) []byte {
	target, host := r.Target, r.Host
	if t, authority, ok := exchange.OriginForm(target); ok {
		target, host = t, authority
	}
	if len(host) == 0 {
		host = fallback
	}
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = rt.Strip(dst, target)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	for _, h := range r.Headers {
		if len(h.Name) == 4 && h1.EqualFold(h.Name, "host") || exchange.ContentLength(h.Name) || exchange.Forwarded(h.Name) ||
			exchange.HopByHop(h.Name, true) && !(r.Upgrade && h1.EqualFold(h.Name, "upgrade")) ||
			len(r.Connection) > 0 && named(r.Connection, h.Name) && !exchange.Protected(h.Name) ||
			!rt.Request.Empty() && rt.Request.Drops(h.Name) {
			continue
		}
		dst = appendField(dst, h)
	}
	dst = rt.Request.AppendSet(dst)
	if r.Framing == h1.BodyLength {
		dst = appendLength(dst, r.ContentLength)
	}
	if r.Upgrade {
		dst = append(dst, "Connection: Upgrade\r\n"...)
	}
	dst = append(dst, "X-Forwarded-For: "...)
	dst = append(dst, ip...)
	dst = append(dst, "\r\nX-Forwarded-Proto: http\r\n"...)
	if len(host) > 0 {
		dst = append(dst, "X-Forwarded-Host: "...)
		dst = append(dst, host...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// appendResponseHead appends the head sent to the client for the answer r, whose raw
// head is raw: HTTP/1.1, the backend's status and reason, its fields but the hop-by-hop
// ones, the route's header rules applied (rules; nil for an interim answer),
// Content-Length as one value (none for 1xx, 204 and 304, which lose their
// Transfer-Encoding too), and the client connection's own Connection field.
func appendResponseHead(dst, raw []byte, r *h1.Response, rules *exchange.HeaderRules, keep, clientHTTP10, upgrade bool) []byte {
	line := raw[:bytes.IndexByte(raw, '\n')]
	line = bytes.TrimSuffix(line, []byte("\r"))
	dst = append(dst, "HTTP/1.1"...)
	dst = append(dst, line[8:]...)
	dst = append(dst, "\r\n"...)
	bodiless := r.Bodiless()
	for _, h := range r.Headers {
		if exchange.ContentLength(h.Name) || bodiless && len(h.Name) == 17 && h1.EqualFold(h.Name, "transfer-encoding") ||
			exchange.HopByHop(h.Name, false) && !(upgrade && h1.EqualFold(h.Name, "upgrade")) ||
			len(r.Connection) > 0 && named(r.Connection, h.Name) && !exchange.Protected(h.Name) ||
			rules != nil && !rules.Empty() && rules.Drops(h.Name) {
			continue
		}
		dst = appendField(dst, h)
	}
	if rules != nil {
		dst = rules.AppendSet(dst)
	}
	if !bodiless && r.Length >= 0 {
		dst = appendLength(dst, r.Length)
	}
	switch {
	case upgrade:
		dst = append(dst, "Connection: Upgrade\r\n"...)
	case !keep:
		dst = append(dst, "Connection: close\r\n"...)
	case clientHTTP10:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// dropField removes from head the field called lower (in lower case).
func dropField(head []byte, lower string) []byte {
	out := head[:0]
	for line := range bytes.SplitAfterSeq(head, []byte("\n")) {
		if colon := bytes.IndexByte(line, ':'); colon > 0 && h1.EqualFold(line[:colon], lower) {
			continue
		}
		out = append(out, line...)
	}
	return out
}

// appendLength appends a Content-Length field of n.
func appendLength(dst []byte, n int64) []byte {
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, "\r\n"...)
}

func appendField(dst []byte, h h1.Header) []byte {
	dst = append(dst, h.Name...)
	dst = append(dst, ": "...)
	dst = append(dst, h.Value...)
	return append(dst, "\r\n"...)
}

// headerList lets a strategy read the request's fields by name.
type headerList []h1.Header

// Peek returns the value of the first field called name, nil when there is none.
func (hs *headerList) Peek(name string) []byte {
	for _, h := range *hs {
		if len(h.Name) == len(name) && bytes.EqualFold(h.Name, []byte(name)) {
			return h.Value
		}
	}
	return nil
}

func equalMethod(m []byte, s string) bool { return string(m) == s }
