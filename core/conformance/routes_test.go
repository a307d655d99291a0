//go:build linux || darwin || freebsd || netbsd || openbsd

package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// routeCases are raw requests to a table of routes (see routedProxy): both fronts
// route, rewrite and answer them alike.
var routeCases = []conformanceCase{
	{name: "respond", request: "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", status: 200},
	{name: "respond to HEAD", request: "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n", status: 200},
	{name: "respond 204", request: "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n", status: 204},
	{name: "respond to a request with a body", request: "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", status: 200},
	{name: "respond to a body that waits for 100 Continue", request: "POST /healthz HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", status: 200},
	{name: "respond to HTTP/1.0 keep-alive", request: "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", status: 200},
	{name: "redirect", request: "GET /a/b?c=d HTTP/1.1\r\nHost: old.example:8080\r\n\r\n", status: 308},
	{name: "strip_prefix and header rules", request: "GET /api/x?y=1 HTTP/1.1\r\nHost: a\r\nX-Debug: 1\r\nX-Keep: 2\r\n\r\n", status: 200, reached: true},
	{name: "strip_prefix down to /", request: "GET /api HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, reached: true},
	{name: "absolute target's host routes", request: "GET http://api.example/p HTTP/1.1\r\nHost: web.example\r\n\r\n", status: 200},
	{name: "Host routes when the target is origin form", request: "GET /p HTTP/1.1\r\nHost: API.example:80\r\n\r\n", status: 200},
	{name: "absolute target to another host goes to default", request: "GET http://web.example/p HTTP/1.1\r\nHost: api.example\r\n\r\n", status: 200, reached: true},
	{name: "method not in the route's", request: "DELETE /only-get HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, reached: true},
	{name: "method in the route's", request: "GET /only-get HTTP/1.1\r\nHost: a\r\n\r\n", status: 200},
}

// routedProxy is a proxy over be whose routes answer or rewrite the cases above;
// what no route matches goes to default, be.
func routedProxy(t *testing.T, be *rawBackend) *exchange.Proxy {
	t.Helper()
	set := backend.NewSet()
	set.Update([]config.Backend{{URL: "http://" + be.addr, Weight: 1}})
	def := exchange.NewUpstream(backend.DefaultPool, set, strategy.NewLocal("weighted", strategy.NewBundled("weighted")), 0)
	ok := exchange.Reply{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte("ok\n")}
	routes := []exchange.RouteSpec{
		{Match: exchange.Match{Path: "/healthz"}, Route: exchange.Route{Action: exchange.DoRespond, Reply: ok}},
		{Match: exchange.Match{Path: "/empty"}, Route: exchange.Route{Action: exchange.DoRespond, Reply: exchange.Reply{Status: 204}}},
		{Match: exchange.Match{Host: "old.example"}, Route: exchange.Route{Action: exchange.DoRedirect, Redirect: exchange.NewRedirect("https://new.example{uri}", 308)}},
		{Match: exchange.Match{PathPrefix: "/api"}, Route: exchange.Route{Action: exchange.ToPool, Upstream: def, StripPrefix: "/api",
			Request:  exchange.NewHeaderRules(map[string]string{"X-Env": "prod"}, []string{"X-Debug"}),
			Response: exchange.NewHeaderRules(map[string]string{"X-Pool": "api"}, nil)}},
		{Match: exchange.Match{Host: "api.example"}, Route: exchange.Route{Action: exchange.DoRespond, Reply: exchange.Reply{Status: 200, ContentType: "text/plain", Body: []byte("api")}}},
		{Match: exchange.Match{Path: "/only-get", Methods: []string{"GET"}}, Route: exchange.Route{Action: exchange.DoRespond, Reply: ok}},
	}
	p := pool.New(pool.Config{MinWorkers: 4, MaxWorkers: 64, QueueCapacity: 64, QueueTimeout: time.Second, IdleTimeout: time.Minute})
	go p.Run(t.Context())
	return exchange.New(exchange.Config{Pool: p, Table: exchange.NewTable(1, routes, def), Settings: exchange.Settings{StatusPath: "/lb-status",
		MaxHeaders: 100, ConnectTimeout: time.Second, Idle: 10 * time.Second, ReuseAlways: true}})
}

func TestRoutesSameBytesSameAnswer(t *testing.T) {
	var fs []*front
	for _, name := range fronts {
		be := startRawBackend(t)
		fs = append(fs, &front{name: name, be: be, addr: startFront(t, name, routedProxy(t, be))})
	}
	for _, tc := range routeCases {
		t.Run(tc.name, func(t *testing.T) {
			o := runOnEach(t, fs, tc)
			if tc.reached && strings.Contains(o.backend, "X-Debug") {
				t.Errorf("X-Debug reached the backend, want it removed by the route: %s", o.backend)
			}
			for _, want := range routeWants[tc.name] {
				if !strings.Contains(o.client+"\n"+o.backend, want) {
					t.Errorf("want %q in what the client and backend read:\n%s\n%s", want, o.client, o.backend)
				}
			}
		})
	}
}

// routeWants are what a case's client or backend must read, beyond both fronts
// agreeing.
var routeWants = map[string][]string{
	"respond":                       {`body="ok\n"`, "Content-Type: text/plain; charset=utf-8"},
	"respond 204":                   {"204 [] close=false"},
	"redirect":                      {"Location: https://new.example/a/b?c=d"},
	"strip_prefix and header rules": {"/x?y=1", "X-Env", "X-Keep", "X-Pool: api"},
	"strip_prefix down to /":        {"GET / "},
	"absolute target's host routes": {`body="api"`},
	"respond to a body that waits for 100 Continue": {"close=true"},
	"respond to HTTP/1.0 keep-alive":                {"close=false"},
}
