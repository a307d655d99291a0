package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// echo is what the test backend's /echo-headers answers.
type echo struct {
	Server  string              `json:"server"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

// doEcho sends req and reads the backend's echo.
func doEcho(t *testing.T, req *http.Request) echo {
	t.Helper()
	e, _ := sendEcho(t, req)
	return e
}

// getEcho sends GET url with host (when not "") and reads the backend's echo.
func getEcho(t *testing.T, url, host string) (echo, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	return sendEcho(t, req)
}

// sendEcho sends req and reads the backend's echo, when the answer is 200.
func sendEcho(t *testing.T, req *http.Request) (echo, *http.Response) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echo
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s %s: %v in %q", req.Method, req.URL, err, body)
		}
	}
	return e, resp
}

// routesConfig is three pools, each with its own strategy: default (leastconn) on
// web, api (weighted) on api1 and api2, and model (a script that only serves its own
// pool) on model; and routes by path, host, header and method, with a redirect and a
// fixed answer.
func routesConfig(t *testing.T, web, api1, api2, model string) map[string]any {
	dir := t.TempDir()
	script := filepath.Join(dir, "queue.star")
	writeFile(t, script, `
def pick(req, backends):
    if req.pool != "model":
        fail("routed from pool " + req.pool)
    return least(backends)
`, 0o644)
	return map[string]any{
		"load_balancer": map[string]any{"strategy": "leastconn"},
		"servers":       backendsConfig(web),
		"plugins":       map[string]any{"queue": map[string]any{"script": script}},
		"pools": map[string]any{
			"api":   map[string]any{"backends": backendsConfig(api1, api2)["backends"], "strategy": "weighted", "retries": 1},
			"model": map[string]any{"backends": backendsConfig(model)["backends"], "strategy": "queue", "health_check": map[string]any{"interval": "500ms"}},
		},
		"routes": []any{
			map[string]any{"match": map[string]any{"path": "/healthz"}, "respond": map[string]any{"status": 200, "body": "ok\n"}},
			map[string]any{"match": map[string]any{"host": "old.example.com"}, "redirect": map[string]any{"to": "https://new.example.com{uri}", "status": 301}},
			map[string]any{"match": map[string]any{"host": "*.api.example.com"}, "pool": "api"},
			map[string]any{"match": map[string]any{"path_prefix": "/api/"}, "pool": "api", "strip_prefix": "/api",
				"request_headers":  map[string]any{"set": map[string]any{"X-Env": "prod"}, "remove": []string{"X-Debug"}},
				"response_headers": map[string]any{"set": map[string]any{"X-Pool": "api"}}},
			map[string]any{"match": map[string]any{"path_prefix": "/model/", "methods": []string{"GET", "POST"}}, "pool": "model", "strip_prefix": "/model"},
			map[string]any{"match": map[string]any{"headers": map[string]any{"X-Canary": "1"}}, "pool": "model"},
		},
	}
}

// Each matcher and action end to end, on the front under test: the pool each
// request reaches, the path and fields it arrives with, the answers the proxy makes
// itself, and the status, metrics and access log naming the pool.
func TestRoutesSendEachRequestToItsPool(t *testing.T) {
	_, web := startBackend(t, "-work", "0")
	_, api1 := startBackend(t, "-work", "0")
	_, api2 := startBackend(t, "-work", "0")
	_, model := startBackend(t, "-work", "0")
	cfg := routesConfig(t, web, api1, api2, model)
	cfg["load_balancer"].(map[string]any)["access_log"] = "access.log"
	lb := startCore(t, cfg)

	// path_prefix, strip_prefix and the header rules.
	req, _ := http.NewRequest("GET", lb.url+"/api/echo-headers?x=1", nil)
	req.Header.Set("X-Debug", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e echo
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if e.Server != hostOf(api1) && e.Server != hostOf(api2) {
		t.Errorf("/api/ served by %q, want pool api", e.Server)
	}
	if e.Path != "/echo-headers?x=1" {
		t.Errorf("/api/echo-headers?x=1 arrived as %q, want the prefix stripped and the query kept", e.Path)
	}
	if got := e.Headers["X-Env"]; len(got) != 1 || got[0] != "prod" {
		t.Errorf("X-Env = %v, want [prod] set by the route", got)
	}
	if _, ok := e.Headers["X-Debug"]; ok {
		t.Errorf("X-Debug arrived, want it removed by the route")
	}
	if got := resp.Header.Get("X-Pool"); got != "api" {
		t.Errorf("answer's X-Pool = %q, want api set by the route", got)
	}

	// Host wildcard (case and port ignored), header match, method, default.
	if e, _ := getEcho(t, lb.url+"/echo-headers", "V2.API.Example.com:8443"); e.Server != hostOf(api1) && e.Server != hostOf(api2) {
		t.Errorf("*.api.example.com served by %q, want pool api", e.Server)
	}
	if e, _ := getEcho(t, lb.url+"/model/echo-headers", ""); e.Server != hostOf(model) || e.Path != "/echo-headers" {
		t.Errorf("/model/ served by %q as %q, want pool model (its script sees req.pool)", e.Server, e.Path)
	}
	req, _ = http.NewRequest("PUT", lb.url+"/model/echo-headers", nil)
	if e := doEcho(t, req); e.Server != hostOf(web) {
		t.Errorf("PUT /model/ served by %q, want default (the route takes GET and POST)", e.Server)
	}
	req, _ = http.NewRequest("GET", lb.url+"/echo-headers", nil)
	req.Header.Set("X-Canary", "1")
	if e := doEcho(t, req); e.Server != hostOf(model) {
		t.Errorf("X-Canary: 1 served by %q, want pool model", e.Server)
	}
	if e, _ := getEcho(t, lb.url+"/echo-headers", ""); e.Server != hostOf(web) {
		t.Errorf("unmatched request served by %q, want default", e.Server)
	}

	// Answers the proxy makes itself.
	resp, err = http.Get(lb.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != 200 || body != "ok\n" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("/healthz = %d %q %q, want the route's 200 ok", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ = http.NewRequest("GET", lb.url+"/a/b?c=d", nil)
	req.Host = "old.example.com"
	if resp, err := noFollow.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://new.example.com/a/b?c=d" {
			t.Errorf("redirect = %d %q, want 301 to https://new.example.com/a/b?c=d", resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// Seen: status pools, metrics and the access log name the pool.
	st := lb.status(t)
	names := map[string]int{}
	for _, p := range st.Pools {
		names[p.Name] = len(p.Backends)
	}
	if names["default"] != 1 || names["api"] != 2 || names["model"] != 1 {
		t.Errorf("status pools = %v, want default 1, api 2, model 1 backends", names)
	}
	if v := metric(t, lb, regexp.QuoteMeta(`lb_requests_total{backend="`+model+`",code="200",pool="model"}`)); v < 1 {
		t.Errorf("model's requests metric with pool label = %v, want >= 1", v)
	}
	waitUntil(t, "access log lines with pools", func() bool {
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(lb.path), "access.log"))
		return strings.Contains(string(b), "pool=api") && strings.Contains(string(b), "pool=model") && strings.Contains(string(b), "pool=default")
	})
}

// A raw request whose absolute-form target and Host disagree is routed by the host
// it is sent on with: the target's.
func TestRouteFollowsTheHostSentOn(t *testing.T) {
	_, web := startBackend(t, "-work", "0")
	_, api := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{
		"servers": backendsConfig(web),
		"pools":   map[string]any{"api": map[string]any{"backends": backendsConfig(api)["backends"]}},
		"routes":  []any{map[string]any{"match": map[string]any{"host": "api.example.com"}, "pool": "api"}},
	})
	c, err := net.Dial("tcp", strings.TrimPrefix(lb.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET http://api.example.com/echo-headers HTTP/1.1\r\nHost: web.example.com\r\n\r\n")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	var e echo
	json.NewDecoder(resp.Body).Decode(&e)
	if e.Server != hostOf(api) || e.Host != "api.example.com" {
		t.Errorf("served by %q with Host %q, want pool api with Host api.example.com", e.Server, e.Host)
	}
}

// With routes, servers may list no backend: a request no route matches gets 404
// no_route.
func TestNoRouteWithoutDefaultBackends(t *testing.T) {
	_, api := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{
		"servers": map[string]any{"backends": []any{}},
		"pools":   map[string]any{"api": map[string]any{"backends": backendsConfig(api)["backends"]}},
		"routes":  []any{map[string]any{"match": map[string]any{"path_prefix": "/api/"}, "pool": "api", "strip_prefix": "/api"}},
	})
	resp, err := http.Post(lb.url+"/other", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != 404 || !strings.Contains(body, `"code":"no_route"`) {
		t.Errorf("unmatched = %d %s, want 404 no_route", resp.StatusCode, body)
	}
	if got := servedBy(t, lb.url+"/api", nil); got != hostOf(api) {
		t.Errorf("/api/requests served by %q, want %s", got, hostOf(api))
	}
}

// Three pools under load; an edit moves /api/ from pool api to pool model: no
// request fails, and the path is served by model within about a second. A bad edit
// of the routes is refused with file:line:col and the routes in force keep serving.
func TestRouteEditMovesTrafficWithoutFailures(t *testing.T) {
	_, web := startBackend(t, "-work", "0")
	_, api1 := startBackend(t, "-work", "0")
	_, api2 := startBackend(t, "-work", "0")
	_, model := startBackend(t, "-work", "0")
	cfg := routesConfig(t, web, api1, api2, model)
	lb := startCore(t, cfg)

	stop := make(chan struct{})
	sent, failures := loadUntil(t, lb.url+"/api/requests", stop)
	sentModel, failuresModel := loadUntil(t, lb.url+"/model/requests", stop)
	sentWeb, failuresWeb := loadUntil(t, lb.url+"/requests", stop)
	time.Sleep(500 * time.Millisecond)

	routes := cfg["routes"].([]any)
	routes[3].(map[string]any)["pool"] = "model"
	writeJSON(t, lb.path, cfg)
	saved := time.Now()
	waitUntil(t, "/api/ served by pool model", func() bool { return servedBy(t, lb.url+"/api", nil) == hostOf(model) })
	moved := time.Since(saved)
	// Every process switched at that instant: from now on no request, on whichever
	// process a new connection lands, is routed by the old table.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 40 {
		a := post(fresh, lb.url+"/api/requests")
		if a.status != 200 || a.server != hostOf(model) {
			t.Fatalf("request %d after the switch: %d served by %q, want only pool model (%s)", i, a.status, a.server, hostOf(model))
		}
	}

	// A bad edit: refused with its position, and the routes in force serve on.
	routes[3].(map[string]any)["request_headers"] = map[string]any{"set": map[string]any{"Connection": "close"}}
	writeJSON(t, lb.path, cfg)
	position := regexp.MustCompile(`config\.json:\d+:\d+: routes\[3\]\.request_headers\.set\.Connection: `)
	waitUntil(t, "the bad edit refused with its position", func() bool {
		_, lastErr := lb.generation(t)
		return position.MatchString(lastErr)
	})
	_, lastErr := lb.generation(t)
	if !strings.Contains(lastErr, "hop-by-hop") {
		t.Errorf("last_error %q, want it to say Connection is hop-by-hop", lastErr)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	for name, f := range map[string]func() []served{"/api/": failures, "/model/": failuresModel, "/": failuresWeb} {
		if bad := f(); len(bad) > 0 {
			t.Errorf("%s: %d requests failed across the edits, first: %d %q %v", name, len(bad), bad[0].status, bad[0].body, bad[0].err)
		}
	}
	t.Logf("sent %d + %d + %d requests; /api/ moved %v after the save", sent.Load(), sentModel.Load(), sentWeb.Load(), moved)
	if got := servedBy(t, lb.url+"/api", nil); got != hostOf(model) {
		t.Errorf("after the refused edit /api/ served by %s, want pool model still", got)
	}
}

// A pool's own discovery finds its backends, shown under its entry of status pools;
// default keeps its static backends.
func TestPoolDiscoversItsBackends(t *testing.T) {
	d := startDNS(t)
	_, web := startBackend(t, "-work", "0")
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	const name = "_http._tcp.api.test"
	d.set(name, "b0.hosts.test:"+portOf(a), "b1.hosts.test:"+portOf(b))
	lb := startCore(t, map[string]any{
		"servers": backendsConfig(web),
		"pools": map[string]any{"api": map[string]any{
			"discovery": map[string]any{"srv": name, "resolver": d.addr, "interval": "200ms"},
		}},
		"routes":       []any{map[string]any{"match": map[string]any{"path_prefix": "/api/"}, "pool": "api", "strip_prefix": "/api"}},
		"health_check": fastChecks(nil),
	})
	counts := countBy(t, postMany(lb.url+"/api/requests", 40, 4))
	if counts[hostOf(a)] == 0 || counts[hostOf(b)] == 0 || len(counts) != 2 {
		t.Errorf("/api/ served by %v, want the two discovered backends only", counts)
	}
	if got := servedBy(t, lb.url, nil); got != hostOf(web) {
		t.Errorf("default served by %s, want %s", got, hostOf(web))
	}
	st := lb.status(t)
	for _, p := range st.Pools {
		switch p.Name {
		case "api":
			if p.Discovery == nil || p.Discovery.Record != name || p.Discovery.Backends != 2 {
				t.Errorf("pool api discovery = %+v, want %s with 2 backends", p.Discovery, name)
			}
		case "default":
			if p.Discovery != nil || len(p.Backends) != 1 {
				t.Errorf("pool default = %+v, want its one static backend and no discovery", p)
			}
		}
	}
}

// A pool removed by an edit lets the request it is serving finish there; requests
// after the edit go where the new routes say.
func TestRemovedPoolFinishesItsRequests(t *testing.T) {
	_, web := startBackend(t, "-work", "0")
	_, slow := startBackend(t, "-work", "1500ms")
	cfg := map[string]any{
		"servers": backendsConfig(web),
		"pools":   map[string]any{"slow": map[string]any{"backends": backendsConfig(slow)["backends"]}},
		"routes":  []any{map[string]any{"match": map[string]any{"path_prefix": "/slow/"}, "pool": "slow", "strip_prefix": "/slow"}},
	}
	lb := startCore(t, cfg)
	done := make(chan served, 1)
	go func() { done <- post(&http.Client{Timeout: 10 * time.Second}, lb.url+"/slow/requests") }()
	time.Sleep(300 * time.Millisecond) // on its way at the slow backend
	delete(cfg, "pools")
	delete(cfg, "routes")
	writeJSON(t, lb.path, cfg)
	waitUntil(t, "the pool gone from the status", func() bool { return len(lb.status(t).Pools) == 1 })
	if got := servedBy(t, lb.url+"/slow", nil); got != hostOf(web) {
		t.Errorf("after the edit /slow/ served by %s, want default", got)
	}
	a := <-done
	if a.status != 200 || a.server != hostOf(slow) {
		t.Errorf("the request in flight: %d from %q (%v), want 200 from the removed pool's backend %s", a.status, a.server, a.err, hostOf(slow))
	}
}
