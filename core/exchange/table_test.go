package exchange

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

func TestStripPrefix(t *testing.T) {
	for _, tc := range []struct{ prefix, target, want string }{
		{"/v1", "/v1/users?x=1", "/users?x=1"},
		{"/v1", "/v1", "/"},
		{"/v1", "/v1?x=1", "/?x=1"},
		{"/v1/", "/v1/users", "/users"},
		{"/v1/", "/v1/", "/"},
		{"/v1", "/v2/users", "/v2/users"}, // not the route's prefix: as it is
		{"", "/a", "/a"},
	} {
		r := Route{StripPrefix: tc.prefix}
		if got := string(r.Strip(nil, []byte(tc.target))); got != tc.want {
			t.Errorf("strip %q from %q = %q, want %q", tc.prefix, tc.target, got, tc.want)
		}
	}
}

func TestRouteHeaderRules(t *testing.T) {
	hr := NewHeaderRules(map[string]string{"x-env": "prod", "Strict-Transport-Security": "max-age=1"}, []string{"X-Debug"})
	for name, drops := range map[string]bool{"X-Debug": true, "x-debug": true, "X-ENV": true, "Strict-Transport-Security": true, "X-Other": false, "X-Debu": false} {
		if got := hr.Drops([]byte(name)); got != drops {
			t.Errorf("Drops(%q) = %v, want %v", name, got, drops)
		}
	}
	if got := string(hr.AppendSet(nil)); got != "Strict-Transport-Security: max-age=1\r\nX-Env: prod\r\n" {
		t.Errorf("AppendSet = %q, want the set fields in name order, canonical", got)
	}
	var none HeaderRules
	if !none.Empty() || hr.Empty() {
		t.Errorf("Empty: none %v, rules %v", none.Empty(), hr.Empty())
	}
}

func TestRedirectLocation(t *testing.T) {
	for _, tc := range []struct{ to, host, target, want string }{
		{"https://new.example.com{uri}", "old.example.com", "/a/b?c=d", "https://new.example.com/a/b?c=d"},
		{"https://{host}{path}", "example.com:8080", "/a?x=1", "https://example.com:8080/a"},
		{"https://example.com/moved", "h", "/x", "https://example.com/moved"},
		{"https://x{y}/{uri}", "h", "/p", "https://x{y}//p"}, // not a placeholder: as written
	} {
		rd := NewRedirect(tc.to, 308)
		if got := string(rd.AppendLocation(nil, []byte(tc.host), []byte(tc.target))); got != tc.want {
			t.Errorf("%q for %s%s = %q, want %q", tc.to, tc.host, tc.target, got, tc.want)
		}
	}
}

func TestReplyHTTP1(t *testing.T) {
	rp := Reply{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte("ok\n")}
	if got := string(rp.AppendHTTP1(nil, nil, false, "")); got != "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\nok\n" {
		t.Errorf("respond = %q", got)
	}
	if got := string(rp.AppendHTTP1(nil, nil, true, "close")); got != "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: close\r\n\r\n" {
		t.Errorf("respond to HEAD, closing = %q", got)
	}
	rd := Reply{Status: 308}
	if got := string(rd.AppendHTTP1(nil, []byte("https://x/"), false, "")); got != "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://x/\r\nContent-Length: 0\r\n\r\n" {
		t.Errorf("redirect = %q", got)
	}
	nc := Reply{Status: 204}
	if got := string(nc.AppendHTTP1(nil, nil, false, "keep-alive")); got != "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n" {
		t.Errorf("204 to an HTTP/1.0 keep-alive client = %q, want no Content-Length", got)
	}
}

func testUpstream(name string) *Upstream {
	return NewUpstream(name, backend.NewPoolSet(name, nil), strategy.NewLocal("weighted", strategy.NewBundled("weighted")), 1)
}

func TestTableRoutesAndFallback(t *testing.T) {
	def, api := testUpstream("default"), testUpstream("api")
	tb := NewTable(1, []RouteSpec{
		{Match: Match{PathPrefix: "/api/"}, Route: Route{Action: ToPool, Upstream: api, StripPrefix: "/api"}},
		{Match: Match{Path: "/healthz"}, Route: Route{Action: DoRespond, Reply: Reply{Status: 200}}},
		{Match: Match{Host: "old.example.com"}, Route: Route{Action: DoRedirect, Redirect: NewRedirect("https://new{uri}", 301)}},
	}, def)
	for _, tc := range []struct {
		host, path string
		action     Action
		pool       string
		index      int
	}{
		{"a", "/api/x", ToPool, "api", 0},
		{"a", "/healthz", DoRespond, "", 1},
		{"OLD.example.com:80", "/x", DoRedirect, "", 2},
		{"a", "/other", ToPool, "default", -1},
	} {
		r := tb.Route([]byte("GET"), []byte(tc.host), []byte(tc.path), nil)
		if r.Action != tc.action || r.Pool() != tc.pool || r.Index != tc.index {
			t.Errorf("%s%s: action %d pool %q index %d, want %d %q %d", tc.host, tc.path, r.Action, r.Pool(), r.Index, tc.action, tc.pool, tc.index)
		}
	}
	noDefault := NewTable(1, nil, nil)
	if r := noDefault.Route([]byte("GET"), []byte("a"), []byte("/"), nil); r.Action != NoRoute {
		t.Errorf("no route and no default: action %d, want NoRoute", r.Action)
	}
	if got := string(NoRouteAnswer.Body()); !strings.Contains(got, `"code":"no_route"`) || NoRouteAnswer.Status != 404 {
		t.Errorf("no route answer %d %s", NoRouteAnswer.Status, got)
	}
	if ups := tb.Upstreams(); len(ups) != 2 || ups[0] != def || ups[1] != api {
		t.Errorf("Upstreams = %v, want default then api", ups)
	}
}

// A staged table takes over at the first request after the shared generation names
// it, not before; without a shared word it takes over at once.
func TestProxyTableSwitchesWhenCommitted(t *testing.T) {
	var commit atomic.Uint64
	commit.Store(1)
	one, two := NewTable(1, nil, testUpstream("default")), NewTable(2, nil, nil)
	p := New(Config{Table: one, Commit: &commit})
	p.Stage(two)
	if p.Table() != one {
		t.Fatal("a staged table served before its generation was committed")
	}
	commit.Store(2)
	if p.Table() != two || p.Table() != two {
		t.Fatal("the committed table does not serve")
	}
	local := New(Config{Table: one})
	local.Stage(two)
	if local.Table() != two {
		t.Fatal("without a shared generation, a staged table does not serve at once")
	}
}

// Routing a request allocates nothing, with header matches and wildcards.
func TestTableRouteAllocatesNothing(t *testing.T) {
	def, api := testUpstream("default"), testUpstream("api")
	tb := NewTable(1, []RouteSpec{
		{Match: Match{Host: "*.example.com", Headers: map[string]string{"X-Canary": "1"}}, Route: Route{Action: ToPool, Upstream: api}},
		{Match: Match{PathPrefix: "/api/", Methods: []string{"GET"}}, Route: Route{Action: ToPool, Upstream: api}},
	}, def)
	h := byteFields{"X-Canary": []byte("1")}
	method, host, path := []byte("GET"), []byte("A.Example.com:8080"), []byte("/api/x")
	allocs := testing.AllocsPerRun(100, func() {
		tb.Route(method, host, path, h)
	})
	if allocs != 0 {
		t.Errorf("Route allocates %v times per request, want 0", allocs)
	}
}

// byteFields is a request's header whose values are bytes already, as the fronts'
// are.
type byteFields map[string][]byte

func (f byteFields) Peek(name string) []byte { return f[name] }
