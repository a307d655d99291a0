package exchange

import (
	"fmt"
	"net/textproto"
	"testing"
)

// fields is a request's header, for HeaderPeeker.
type fields map[string]string

func (f fields) Peek(name string) []byte {
	if v, ok := f[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return []byte(v)
	}
	return nil
}

func TestRouterMatches(t *testing.T) {
	routes := []Match{
		0: {Host: "api.example.com", PathPrefix: "/v1/"},
		1: {Host: "*.example.com", Methods: []string{"GET", "HEAD"}},
		2: {Headers: map[string]string{"x-canary": "1"}},
		3: {Path: "/healthz"},
		4: {Host: "old.example.com"},
		5: {PathPrefix: "/v"},
		6: {Host: "API.Example.COM", Path: "/"},
	}
	r := NewRouter(routes)
	for _, tc := range []struct {
		name, method, host, path string
		header                   fields
		want                     int
	}{
		{"exact host and prefix", "POST", "api.example.com", "/v1/users", nil, 0},
		{"host without case, port ignored", "POST", "API.example.com:8443", "/v1/x", nil, 0},
		{"prefix is a plain string prefix", "POST", "api.example.com", "/v1x", nil, 5},
		{"wildcard, one label", "GET", "www.example.com", "/a", nil, 1},
		{"wildcard, several labels", "HEAD", "a.b.example.com", "/a", nil, 1},
		{"wildcard needs a label", "GET", "example.com", "/a", nil, -1},
		{"wildcard, method not listed", "POST", "www.example.com", "/a", nil, -1},
		{"earlier route wins over a later exact host", "GET", "old.example.com", "/", nil, 1},
		{"later exact host when the earlier does not hold", "POST", "old.example.com", "/", nil, 4},
		{"header, name without case", "PUT", "other.test", "/x", fields{"X-Canary": "1"}, 2},
		{"header value exact", "PUT", "other.test", "/x", fields{"X-Canary": "10"}, -1},
		{"exact path", "GET", "other.test", "/healthz", nil, 3},
		{"exact path is not a prefix", "GET", "other.test", "/healthz/x", nil, -1},
		{"route order across host buckets", "GET", "api.example.com", "/v1/x", nil, 0},
		{"api host, no v1", "DELETE", "api.example.com", "/", nil, 6},
		{"ipv6 literal keeps its colons", "GET", "[::1]:80", "/v", nil, 5},
		{"nothing holds", "POST", "other.test", "/x", nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h HeaderPeeker
			if tc.header != nil {
				h = tc.header
			}
			if got := r.Route([]byte(tc.method), []byte(tc.host), []byte(tc.path), h); got != tc.want {
				t.Errorf("Route(%s %s%s) = %d, want %d", tc.method, tc.host, tc.path, got, tc.want)
			}
		})
	}
	if got := NewRouter(nil).Route([]byte("GET"), []byte("a"), []byte("/"), nil); got != -1 {
		t.Errorf("no routes: Route = %d, want -1", got)
	}
	if got := NewRouter([]Match{{}}).Route([]byte("GET"), nil, []byte("/"), nil); got != 0 {
		t.Errorf("an empty match: Route = %d, want 0", got)
	}
}

// manyRoutes is n routes by host, then n by path prefix, then a catch-all.
func manyRoutes(n int) []Match {
	var ms []Match
	for i := range n {
		ms = append(ms, Match{Host: fmt.Sprintf("svc%d.example.com", i)})
	}
	for i := range n {
		ms = append(ms, Match{PathPrefix: fmt.Sprintf("/svc%d/", i)})
	}
	return append(ms, Match{})
}

func TestRouterAllocatesNothing(t *testing.T) {
	r := NewRouter(append(manyRoutes(100), Match{Host: "*.wild.test", Headers: map[string]string{"X-A": "1"}}))
	h := fields{"X-A": "1"}
	for _, req := range [][2]string{{"SVC42.example.com:80", "/"}, {"other", "/svc77/x"}, {"a.b.wild.test", "/none"}, {"other", "/none"}} {
		host, path := []byte(req[0]), []byte(req[1])
		if n := testing.AllocsPerRun(100, func() { r.Route([]byte("GET"), host, path, h) }); n != 0 {
			t.Errorf("Route(%s %s) allocates %.0f times, want 0", req[0], req[1], n)
		}
	}
	if got := r.Route([]byte("GET"), []byte("SVC42.example.com:80"), []byte("/"), nil); got != 42 {
		t.Errorf("Route(svc42) = %d, want 42", got)
	}
	if got := r.Route([]byte("GET"), []byte("other"), []byte("/svc77/x"), nil); got != 177 {
		t.Errorf("Route(/svc77/) = %d, want 177", got)
	}
}

// BenchmarkRoute: the last host route, and the last path prefix, of 1,000 each; a
// request that matches only the catch-all after them; and no routes at all.
func BenchmarkRoute(b *testing.B) {
	r := NewRouter(manyRoutes(1000))
	for _, bc := range []struct{ name, host, path string }{
		{"last of 1000 hosts", "svc999.example.com", "/x"},
		{"last of 1000 prefixes", "other.test", "/svc999/x"},
		{"catch-all after 2000", "other.test", "/none"},
	} {
		host, path := []byte(bc.host), []byte(bc.path)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Route([]byte("GET"), host, path, nil)
			}
		})
	}
}
