package exchange

import (
	"bytes"
	"net/textproto"
	"strings"
)

// Match is what a route asks of a request (DESIGN section 4.1). Every field given must
// hold; an empty Match holds for every request.
type Match struct {
	// Host is an exact host name, or "*." and a suffix that matches one or more
	// labels before it; compared without case, the request's port ignored.
	Host string
	// Path is the exact path; PathPrefix a plain string prefix of it. At most one
	// is given.
	Path, PathPrefix string
	// Methods lists the methods that match; empty, any.
	Methods []string
	// Headers are fields the request must carry with exactly these values; names
	// without case.
	Headers map[string]string
}

// HeaderPeeker reads a request's header fields by name.
type HeaderPeeker interface {
	Peek(name string) []byte
}

// Router finds the first route, in order, whose Match holds for a request. Matching
// allocates nothing, and its cost stays flat as routes grow: routes are indexed by
// host (exact, and each wildcard's suffix) and, within a host, by the first segment of
// their path, so a request looks only at the routes that could hold for it.
//
// A Router is read-only once built: safe for use by multiple goroutines.
type Router struct {
	routes []compiledRoute
	exact  map[string]*routeBucket // host name → its routes
	wild   map[string]*routeBucket // ".suffix" of a *.suffix host → its routes
	any    routeBucket             // routes with no host
}

// compiledRoute is a Match made ready to test.
type compiledRoute struct {
	path, prefix string
	methods      []string
	headers      []headerMatch
}

type headerMatch struct{ name, value string }

// routeBucket is the routes of one host, in order: those whose path starts with a
// known first segment by that segment, the others together.
type routeBucket struct {
	bySegment map[string][]int32
	rest      []int32
}

// NewRouter indexes matches, which are tried in this order; Route returns an index
// into it.
func NewRouter(matches []Match) *Router {
	r := &Router{exact: map[string]*routeBucket{}, wild: map[string]*routeBucket{}}
	for i, m := range matches {
		c := compiledRoute{path: m.Path, prefix: m.PathPrefix, methods: m.Methods}
		for name, value := range m.Headers {
			c.headers = append(c.headers, headerMatch{textproto.CanonicalMIMEHeaderKey(name), value})
		}
		r.routes = append(r.routes, c)
		b := &r.any
		if host := strings.ToLower(m.Host); strings.HasPrefix(host, "*.") {
			b = bucketOf(r.wild, host[1:])
		} else if host != "" {
			b = bucketOf(r.exact, host)
		}
		if seg, ok := knownSegment(m); ok {
			if b.bySegment == nil {
				b.bySegment = map[string][]int32{}
			}
			b.bySegment[seg] = append(b.bySegment[seg], int32(i))
		} else {
			b.rest = append(b.rest, int32(i))
		}
	}
	return r
}

func bucketOf(m map[string]*routeBucket, key string) *routeBucket {
	b := m[key]
	if b == nil {
		b = new(routeBucket)
		m[key] = b
	}
	return b
}

// knownSegment is the first segment every path that m's path condition admits
// starts with, when there is one: "/v1/" and "/v1/x" give "v1", "/healthz" (exact)
// gives "healthz"; a prefix that ends inside its first segment ("/v1") gives none.
func knownSegment(m Match) (string, bool) {
	switch {
	case m.Path != "":
		return firstSegment(m.Path), true
	case m.PathPrefix != "" && m.PathPrefix[0] == '/':
		rest := m.PathPrefix[1:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[:i], true
		}
	}
	return "", false
}

// firstSegment is the first segment of path: what follows its leading slash, up to
// the next one.
func firstSegment[T string | []byte](path T) T {
	if len(path) > 0 && path[0] == '/' {
		path = path[1:]
	}
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			return path[:i]
		}
	}
	return path
}

// maxCandidateLists bounds the lists Route merges: per host bucket (the exact host,
// each of its suffixes, any host) one by segment and the rest.
const maxCandidateLists = 2 * 16

// Route returns the index of the first route whose match holds for the request, or
// -1 when none does. host is the request's (a Host field, or an absolute target's
// authority), with or without a port; path is its path, without the query.
func (r *Router) Route(method, host, path []byte, h HeaderPeeker) int {
	if len(r.routes) == 0 {
		return -1
	}
	var lower [256]byte
	name := hostName(host, lower[:0])
	seg := firstSegment(path)
	var lists [maxCandidateLists][]int32
	n := 0
	add := func(b *routeBucket) {
		if b == nil || n+2 > len(lists) {
			return
		}
		if b.bySegment != nil {
			if l := b.bySegment[string(seg)]; len(l) > 0 {
				lists[n] = l
				n++
			}
		}
		if len(b.rest) > 0 {
			lists[n] = b.rest
			n++
		}
	}
	if len(name) > 0 {
		add(r.exact[string(name)])
		if len(r.wild) > 0 {
			for i := 1; i < len(name); i++ { // each ".suffix" with a label before it
				if name[i] == '.' {
					add(r.wild[string(name[i:])])
				}
			}
		}
	}
	add(&r.any)
	// The lists are each in route order: take the smallest index left until one holds.
	for {
		best, from := int32(-1), -1
		for i := range n {
			if len(lists[i]) > 0 && (best < 0 || lists[i][0] < best) {
				best, from = lists[i][0], i
			}
		}
		if from < 0 {
			return -1
		}
		lists[from] = lists[from][1:]
		if r.routes[best].holds(method, path, h) {
			return int(best)
		}
	}
}

// holds reports whether the route's conditions other than its host hold.
func (c *compiledRoute) holds(method, path []byte, h HeaderPeeker) bool {
	switch {
	case c.path != "" && string(path) != c.path:
		return false
	case c.prefix != "" && !bytes.HasPrefix(path, []byte(c.prefix)):
		return false
	}
	if len(c.methods) > 0 {
		ok := false
		for _, m := range c.methods {
			if string(method) == m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, hm := range c.headers {
		if h == nil || string(h.Peek(hm.name)) != hm.value {
			return false
		}
	}
	return true
}

// hostName is host without its port, in lower case: host itself when it has no upper
// case letter, else a copy in buf.
func hostName(host, buf []byte) []byte {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 {
		host = host[:i] // a port; an IPv6 literal's colons are inside brackets
	}
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			if len(host) > cap(buf) {
				return host // too long to be a name a route could hold
			}
			buf = append(buf[:0], host...)
			for j := i; j < len(buf); j++ {
				if c := buf[j]; 'A' <= c && c <= 'Z' {
					buf[j] = c + 'a' - 'A'
				}
			}
			return buf
		}
	}
	return host
}
