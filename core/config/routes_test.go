package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// marker marks, in a test's config.json, where the value of the refused key starts.
const marker = "‸"

// refusal returns the *Error among the joined errors of err whose key is key.
func refusal(err error, key string) *Error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ce *Error
		if errors.As(e, &ce) && ce.Key == key {
			return ce
		}
	}
	return nil
}

// checkRefused parses and validates input, in which marker (if any) marks where the
// value of key starts, and checks that key is refused there with a message holding
// each of msg.
func checkRefused(t *testing.T, input, key string, msg ...string) {
	t.Helper()
	wantLine, wantCol := 0, 0
	if at := strings.Index(input, marker); at >= 0 {
		input = strings.Replace(input, marker, "", 1)
		wantLine, wantCol = lineCol([]byte(input), int64(at))
	}
	_, err := parseValid(input)
	if err == nil {
		t.Fatalf("parseValid(%s) = nil error, want %s refused", input, key)
	}
	e := refusal(err, key)
	if e == nil {
		t.Fatalf("parseValid(%s) = %q, want an error for key %s", input, err, key)
	}
	if e.File != "config.json" || e.Line != wantLine || e.Col != wantCol {
		t.Errorf("parseValid(%s): %s at %s:%d:%d, want config.json:%d:%d", input, key, e.File, e.Line, e.Col, wantLine, wantCol)
	}
	for _, m := range msg {
		if !strings.Contains(e.Msg, m) {
			t.Errorf("parseValid(%s): %s: %q, want it to contain %q", input, key, e.Msg, m)
		}
	}
}

func TestPoolsRefused(t *testing.T) {
	tests := []struct {
		name, input, key string
		msg              []string
	}{
		{"named default", `{"pools": {"default": ‸{"backends": [{"url": "http://a:1"}]}}}`,
			"pools.default", []string{"servers is the pool named default"}},
		{"name with a space", `{"pools": {"a b": ‸{"backends": [{"url": "http://a:1"}]}}}`,
			"pools.a b", []string{`"a b"`, "letters, digits", "metrics labels"}},
		{"name with a slash", `{"pools": {"a/b": ‸{"backends": [{"url": "http://a:1"}]}}}`,
			"pools.a/b", []string{`"a/b"`}},
		{"empty name", `{"pools": {"": ‸{"backends": [{"url": "http://a:1"}]}}}`,
			"pools.", []string{`""`, "not a pool name"}},
		{"no backends, no discovery", `{"pools": {"api": ‸{"strategy": "weighted"}}}`,
			"pools.api", []string{"no backends and no discovery"}},
		{"empty backends", `{"pools": {"api": {"backends": ‸[]}}}`,
			"pools.api.backends", []string{"is empty", "discovery"}},
		{"backend url", `{"pools": {"api": {"backends": [{"url": ‸"ftp://a:1"}]}}}`,
			"pools.api.backends[0].url", []string{"http://"}},
		{"backend weight", `{"pools": {"api": {"backends": [{"url": "http://a:1"}, {"url": "http://b:1", "weight": ‸0}]}}}`,
			"pools.api.backends[1].weight", []string{"at least 1"}},
		{"backend twice", `{"pools": {"api": {"backends": [{"url": "http://a:1"}, {"url": ‸"http://A:1/"}]}}}`,
			"pools.api.backends[1].url", []string{"duplicates pools.api.backends[0]"}},
		{"discovery both records", `{"pools": {"api": {"discovery": ‸{"srv": "_http._tcp.api", "dns": "api", "port": 80}}}}`,
			"pools.api.discovery", []string{"one record"}},
		{"discovery dns without port", `{"pools": {"api": {"discovery": {"dns": "api"}}}}`,
			"pools.api.discovery.port", []string{"with dns"}},
		{"discovery scheme", `{"pools": {"api": {"discovery": {"srv": "_http._tcp.api", "scheme": ‸"ftp"}}}}`,
			"pools.api.discovery.scheme", []string{"http, https or h2c"}},
		{"discovery resolver", `{"pools": {"api": {"discovery": {"srv": "_http._tcp.api", "resolver": ["10.0.0.1:53", ‸"10.0.0.2"]}}}}`,
			"pools.api.discovery.resolver[1]", []string{"host:port"}},
		{"unknown strategy", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "strategy": ‸"fastest"}}}`,
			"pools.api.strategy", []string{`"fastest"`, "leastconn, weighted", "plugins"}},
		{"retries over 10", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "retries": ‸11}}}`,
			"pools.api.retries", []string{"0 to 10", "got 11"}},
		{"negative retries", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "retries": ‸-1}}}`,
			"pools.api.retries", []string{"got -1"}},
		{"health path", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "health_check": {"path": ‸"ready"}}}}`,
			"pools.api.health_check.path", []string{"must start with /", `"ready"`}},
		{"health interval", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "health_check": {"interval": ‸"0s"}}}}`,
			"pools.api.health_check.interval", []string{"positive"}},
		{"health timeout", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "health_check": {"timeout": ‸"-1s"}}}}`,
			"pools.api.health_check.timeout", []string{"positive"}},
		{"health healthy threshold", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "health_check": {"healthy_threshold": ‸0}}}}`,
			"pools.api.health_check.healthy_threshold", []string{"at least 1"}},
		{"health unhealthy threshold", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "health_check": {"unhealthy_threshold": ‸0}}}}`,
			"pools.api.health_check.unhealthy_threshold", []string{"at least 1"}},
		{"health passive failures", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "health_check": {"passive": {"consecutive_failures": ‸-1}}}}}`,
			"pools.api.health_check.passive.consecutive_failures", []string{"0 (off) or more"}},
		{"health passive ejection", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "health_check": {"passive": {"ejection_time": ‸"0s"}}}}}`,
			"pools.api.health_check.passive.ejection_time", []string{"positive"}},
		{"servers empty without routes", `{"servers": {"backends": ‸[]}, "pools": {"api": {"backends": [{"url": "http://a:1"}]}}}`,
			"servers.backends", []string{"is empty"}},
		{"servers empty with an empty routes list", `{"servers": {"backends": ‸[]}, "routes": []}`,
			"servers.backends", []string{"is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRefused(t, tt.input, tt.key, tt.msg...) })
	}
}

func TestRoutesRefused(t *testing.T) {
	tests := []struct {
		name, input, key string
		msg              []string
	}{
		// Actions.
		{"no action", `{"routes": [‸{"match": {"path": "/x"}}]}`,
			"routes[0]", []string{"no action", "pool, redirect or respond"}},
		{"pool and respond", `{"routes": [{"pool": "default"}, ‸{"pool": "default", "respond": {"status": 200}}]}`,
			"routes[1]", []string{"has pool and respond", "exactly one"}},
		{"all three", `{"routes": [‸{"pool": "default", "respond": {"status": 200}, "redirect": {"to": "/"}}]}`,
			"routes[0]", []string{"has pool and redirect and respond"}},
		{"unknown pool", `{"pools": {"api": {"backends": [{"url": "http://a:1"}]}}, "routes": [{"pool": ‸"apx"}]}`,
			"routes[0].pool", []string{`"apx" is not a pool`, "default, api"}},
		{"default without backends", `{"servers": {"backends": []}, "routes": [{"pool": ‸"default"}]}`,
			"routes[0].pool", []string{"default has no backends"}},
		{"strip_prefix with respond", `{"routes": [{"respond": {"status": 200}, "strip_prefix": ‸"/v1"}]}`,
			"routes[0].strip_prefix", []string{"goes with pool only"}},
		{"request_headers with redirect", `{"routes": [{"redirect": {"to": "/"}, "request_headers": ‸{"set": {"X-A": "1"}}}]}`,
			"routes[0].request_headers", []string{"goes with pool only"}},
		{"response_headers with respond", `{"routes": [{"respond": {"status": 200}, "response_headers": ‸{"remove": ["X-A"]}}]}`,
			"routes[0].response_headers", []string{"goes with pool only"}},
		{"strip_prefix relative", `{"routes": [{"pool": "default", "strip_prefix": ‸"v1"}]}`,
			"routes[0].strip_prefix", []string{"must start with /"}},

		// Match.
		{"path and path_prefix", `{"routes": [{"match": ‸{"path": "/a", "path_prefix": "/b"}, "pool": "default"}]}`,
			"routes[0].match", []string{"both path and path_prefix"}},
		{"path relative", `{"routes": [{"match": {"path": ‸"healthz"}, "pool": "default"}]}`,
			"routes[0].match.path", []string{"must start with /", `"healthz"`}},
		{"path_prefix relative", `{"routes": [{"match": {"path_prefix": ‸"v1/"}, "pool": "default"}]}`,
			"routes[0].match.path_prefix", []string{"must start with /"}},
		{"host with port", `{"routes": [{"match": {"host": ‸"api.example.com:8080"}, "pool": "default"}]}`,
			"routes[0].match.host", []string{"without a port"}},
		{"host wildcard alone", `{"routes": [{"match": {"host": ‸"*."}, "pool": "default"}]}`,
			"routes[0].match.host", []string{"at least one label"}},
		{"host bare star", `{"routes": [{"match": {"host": ‸"*"}, "pool": "default"}]}`,
			"routes[0].match.host", []string{"at least one label"}},
		{"host inner star", `{"routes": [{"match": {"host": ‸"api.*.com"}, "pool": "default"}]}`,
			"routes[0].match.host", []string{"'*' may only be the whole first label"}},
		{"host star in label", `{"routes": [{"match": {"host": ‸"*api.example.com"}, "pool": "default"}]}`,
			"routes[0].match.host", []string{"'*' may only be the whole first label"}},
		{"host empty label", `{"routes": [{"match": {"host": ‸"api..example.com"}, "pool": "default"}]}`,
			"routes[0].match.host", []string{"empty label"}},
		{"host trailing dot", `{"routes": [{"match": {"host": ‸"example.com."}, "pool": "default"}]}`,
			"routes[0].match.host", []string{"empty label"}},
		{"host with a path", `{"routes": [{"match": {"host": ‸"example.com/a"}, "pool": "default"}]}`,
			"routes[0].match.host", []string{"letters, digits"}},
		{"empty method", `{"routes": [{"match": {"methods": ["GET", ‸""]}, "pool": "default"}]}`,
			"routes[0].match.methods[1]", []string{`"" is not a method`}},
		{"method not a token", `{"routes": [{"match": {"methods": [‸"GE T"]}, "pool": "default"}]}`,
			"routes[0].match.methods[0]", []string{`"GE T" is not a method`}},
		{"method in lower case", `{"routes": [{"match": {"methods": [‸"get"]}, "pool": "default"}]}`,
			"routes[0].match.methods[0]", []string{"case-sensitive", `"GET"`}},
		{"match header name", `{"routes": [{"match": {"headers": {"X Canary": ‸"1"}}, "pool": "default"}]}`,
			"routes[0].match.headers.X Canary", []string{"not a header field name"}},
		{"match header value", `{"routes": [{"match": {"headers": {"X-Canary": ‸"1\r\nX-Evil: 1"}}, "pool": "default"}]}`,
			"routes[0].match.headers.X-Canary", []string{"CR, LF or NUL"}},
		{"match header twice", `{"routes": [{"match": {"headers": {"X-Canary": "1", "x-canary": ‸"2"}}, "pool": "default"}]}`,
			"routes[0].match.headers.x-canary", []string{"X-Canary", "case-insensitive"}},

		// Header rules.
		{"set Connection", "{\"routes\": [\n  {\"pool\": \"default\",\n   \"request_headers\": {\"set\": {\"Connection\": ‸\"close\"}}}\n]}",
			"routes[0].request_headers.set.Connection", []string{"Connection is a hop-by-hop header: a route may not set or remove it"}},
		{"remove Transfer-Encoding", `{"routes": [{"pool": "default", "response_headers": {"remove": ["X-A", ‸"transfer-encoding"]}}]}`,
			"routes[0].response_headers.remove[1]", []string{"Transfer-Encoding is a framing header: a route may not set or remove it"}},
		{"set Content-Length", `{"routes": [{"pool": "default", "response_headers": {"set": {"content-length": ‸"0"}}}]}`,
			"routes[0].response_headers.set.content-length", []string{"Content-Length is a framing header"}},
		{"set X-Forwarded-For", `{"routes": [{"pool": "default", "request_headers": {"set": {"X-Forwarded-For": ‸"1.2.3.4"}}}]}`,
			"routes[0].request_headers.set.X-Forwarded-For", []string{"the proxy's own to set"}},
		{"set Host", `{"routes": [{"pool": "default", "request_headers": {"set": {"Host": ‸"b.example"}}}]}`,
			"routes[0].request_headers.set.Host", []string{"Host", "may not set or remove it"}},
		{"remove TE", `{"routes": [{"pool": "default", "request_headers": {"remove": [‸"te"]}}]}`,
			"routes[0].request_headers.remove[0]", []string{"TE is a hop-by-hop header"}},
		{"remove Keep-Alive", `{"routes": [{"pool": "default", "response_headers": {"remove": [‸"Keep-Alive"]}}]}`,
			"routes[0].response_headers.remove[0]", []string{"Keep-Alive is a hop-by-hop header"}},
		{"set Proxy-Connection", `{"routes": [{"pool": "default", "request_headers": {"set": {"Proxy-Connection": ‸"x"}}}]}`,
			"routes[0].request_headers.set.Proxy-Connection", []string{"Proxy-Connection is a hop-by-hop header"}},
		{"set Proxy-Authenticate", `{"routes": [{"pool": "default", "response_headers": {"set": {"Proxy-Authenticate": ‸"x"}}}]}`,
			"routes[0].response_headers.set.Proxy-Authenticate", []string{"Proxy-Authenticate is a hop-by-hop header"}},
		{"remove Proxy-Authorization", `{"routes": [{"pool": "default", "request_headers": {"remove": [‸"Proxy-Authorization"]}}]}`,
			"routes[0].request_headers.remove[0]", []string{"Proxy-Authorization is a hop-by-hop header"}},
		{"set Trailer", `{"routes": [{"pool": "default", "response_headers": {"set": {"Trailer": ‸"x"}}}]}`,
			"routes[0].response_headers.set.Trailer", []string{"Trailer is a hop-by-hop header"}},
		{"remove Upgrade", `{"routes": [{"pool": "default", "request_headers": {"remove": [‸"UPGRADE"]}}]}`,
			"routes[0].request_headers.remove[0]", []string{"Upgrade is a hop-by-hop header"}},
		{"set name not a token", `{"routes": [{"pool": "default", "request_headers": {"set": {"X:Y": ‸"1"}}}]}`,
			"routes[0].request_headers.set.X:Y", []string{`"X:Y" is not a header field name`}},
		{"remove name not a token", `{"routes": [{"pool": "default", "request_headers": {"remove": [‸""]}}]}`,
			"routes[0].request_headers.remove[0]", []string{`"" is not a header field name`}},
		{"set value with LF", `{"routes": [{"pool": "default", "request_headers": {"set": {"X-Env": ‸"a\nb"}}}]}`,
			"routes[0].request_headers.set.X-Env", []string{"CR, LF or NUL"}},
		{"set value with NUL", `{"routes": [{"pool": "default", "response_headers": {"set": {"X-Env": ‸"a\u0000b"}}}]}`,
			"routes[0].response_headers.set.X-Env", []string{"CR, LF or NUL"}},
		{"set twice", `{"routes": [{"pool": "default", "request_headers": {"set": {"X-Env": "a", "x-env": ‸"b"}}}]}`,
			"routes[0].request_headers.set.x-env", []string{"X-Env", "case-insensitive"}},
		{"set and removed", `{"routes": [{"pool": "default", "request_headers": {"set": {"X-Env": "a"}, "remove": [‸"x-env"]}}]}`,
			"routes[0].request_headers.remove[0]", []string{"also set"}},

		// Redirect.
		{"redirect to nowhere", `{"routes": [{"redirect": {"to": ‸""}}]}`,
			"routes[0].redirect.to", []string{"must name where"}},
		{"redirect placeholder", `{"routes": [{"redirect": {"to": ‸"https://b.example{query}"}}]}`,
			"routes[0].redirect.to", []string{"unknown placeholder {query}", "{host}, {path}, {uri}"}},
		{"redirect brace", `{"routes": [{"redirect": {"to": ‸"https://b.example{uri"}}]}`,
			"routes[0].redirect.to", []string{"not closed"}},
		{"redirect CRLF", `{"routes": [{"redirect": {"to": ‸"/a\r\nSet-Cookie: x"}}]}`,
			"routes[0].redirect.to", []string{"CR, LF or NUL"}},
		{"redirect status", `{"routes": [{"redirect": {"to": "/", "status": ‸303}}]}`,
			"routes[0].redirect.status", []string{"301, 302, 307 or 308", "got 303"}},

		// Respond.
		{"respond informational", `{"routes": [{"respond": {"status": ‸103}}]}`,
			"routes[0].respond.status", []string{"informational answer cannot end a request"}},
		{"respond no status", `{"routes": [{"respond": {"body": "ok"}}]}`,
			"routes[0].respond.status", []string{"200 to 599", "got 0"}},
		{"respond 600", `{"routes": [{"respond": {"status": ‸600}}]}`,
			"routes[0].respond.status", []string{"200 to 599", "got 600"}},
		{"respond body with 204", `{"routes": [{"respond": {"status": 204, "body": ‸"x"}}]}`,
			"routes[0].respond.body", []string{"204 answer has no body"}},
		{"respond empty content type", `{"routes": [{"respond": {"status": 200, "content_type": ‸""}}]}`,
			"routes[0].respond.content_type", []string{"must not be empty"}},
		{"respond content type with LF", `{"routes": [{"respond": {"status": 200, "content_type": ‸"text/plain\nX: 1"}}]}`,
			"routes[0].respond.content_type", []string{"CR, LF or NUL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRefused(t, tt.input, tt.key, tt.msg...) })
	}
}

func TestPoolsAndRoutesAccepted(t *testing.T) {
	for _, tt := range []struct{ name, input string }{
		{"pool with backends", `{"pools": {"api": {"backends": [{"url": "http://a:1", "weight": 3}]}}}`},
		{"pool with discovery", `{"pools": {"api": {"discovery": {"srv": "_http._tcp.api"}}}}`},
		{"pool with both, backends empty", `{"pools": {"api": {"backends": [], "discovery": {"dns": "api", "port": 80}}}}`},
		{"pool name of every allowed kind", `{"pools": {"api.v2_eu-1": {"backends": [{"url": "http://a:1"}]}}}`},
		{"one URL in two pools and servers", `{"servers": {"backends": [{"url": "http://a:1"}]},
			"pools": {"x": {"backends": [{"url": "http://a:1"}]}, "y": {"backends": [{"url": "http://a:1"}]}}}`},
		{"pool strategy bundled", `{"pools": {"api": {"backends": [{"url": "http://a:1"}], "strategy": "weighted"}}}`},
		{"pool strategy a plugin", `{"plugins": {"p": {"command": "/bin/true"}},
			"pools": {"api": {"backends": [{"url": "http://a:1"}], "strategy": "p"}}}`},
		{"pool retries 0 and 10", `{"pools": {"a": {"backends": [{"url": "http://a:1"}], "retries": 0},
			"b": {"backends": [{"url": "http://a:1"}], "retries": 10}}}`},
		{"pool health check", `{"pools": {"api": {"backends": [{"url": "http://a:1"}],
			"health_check": {"path": "/ready", "interval": "2s", "timeout": "1s", "healthy_threshold": 1,
			"unhealthy_threshold": 3, "passive": {"consecutive_failures": 0, "ejection_time": "1s"}}}}}`},
		{"servers empty beside routes", `{"servers": {"backends": []}, "pools": {"api": {"backends": [{"url": "http://a:1"}]}},
			"routes": [{"pool": "api"}]}`},
		{"route to default", `{"routes": [{"match": {}, "pool": "default"}]}`},
		{"route to default by discovery", `{"servers": {"discovery": {"srv": "_http._tcp.web"}}, "routes": [{"pool": "default"}]}`},
		{"every match field", `{"routes": [{"match": {"host": "API.example.com", "path_prefix": "/v1/", "methods": ["GET", "HEAD", "PURGE"],
			"headers": {"X-Canary": "1", "X-Empty": ""}}, "pool": "default"}]}`},
		{"wildcard host", `{"routes": [{"match": {"host": "*.example.com"}, "pool": "default"}, {"match": {"host": "*.local"}, "pool": "default"}]}`},
		{"one-label host", `{"routes": [{"match": {"host": "localhost", "path": "/"}, "pool": "default"}]}`},
		{"header rules", `{"routes": [{"pool": "default", "strip_prefix": "/v1",
			"request_headers": {"set": {"X-Env": "prod", "X-Empty": ""}, "remove": ["X-Debug", "Cookie"]},
			"response_headers": {"set": {"Strict-Transport-Security": "max-age=31536000"}, "remove": ["Server"]}}]}`},
		{"redirect", `{"routes": [{"redirect": {"to": "https://{host}{path}", "status": 301}}, {"redirect": {"to": "https://b.example{uri}"}},
			{"redirect": {"to": "/elsewhere", "status": 302}}, {"redirect": {"to": "/", "status": 307}}]}`},
		{"respond", `{"routes": [{"respond": {"status": 204}}, {"respond": {"status": 404, "body": "{}", "content_type": "application/json"}},
			{"respond": {"status": 599, "body": "\u0000 any body\r\n"}}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseValid(tt.input); err != nil {
				t.Errorf("parseValid(%s) = %v, want nil", tt.input, err)
			}
		})
	}
}

func TestRouteDefaults(t *testing.T) {
	c, err := parseValid(`{"routes": [{"redirect": {"to": "/"}}, {"respond": {"status": 200}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Routes[0].Redirect.Status; got != 308 {
		t.Errorf("redirect status = %d, want 308", got)
	}
	if got := c.Routes[1].Respond.ContentType; got != DefaultContentType {
		t.Errorf("respond content_type = %q, want %q", got, DefaultContentType)
	}
}

// TestPoolInheritsABadTopLevelHealthCheckOnce: a value a pool inherits is refused
// under the top-level key only.
func TestPoolInheritsABadTopLevelHealthCheckOnce(t *testing.T) {
	_, err := parseValid(`{"health_check": {"path": "health"},
		"pools": {"api": {"backends": [{"url": "http://a:1"}], "health_check": {"interval": "2s"}}}}`)
	if refusal(err, "health_check.path") == nil {
		t.Errorf("parseValid = %v, want health_check.path refused", err)
	}
	if e := refusal(err, "pools.api.health_check.path"); e != nil {
		t.Errorf("parseValid refused %v, want the inherited path refused at the top level only", e)
	}
}

// designExample is DESIGN section 4's file with section 4.1's pools and routes, the
// plugin left out (its command is not built here) and the h2c backend made http.
const designExample = `{
  "load_balancer": {
    "load_balancer_port": "8000",
    "strategy": "leastconn",
    "status_path": "/queue/status",
    "admin_addr": "127.0.0.1:8001",
    "retries": 2,
    "timeouts": {"connect": "2s", "response_header": "30s", "idle": "90s"}
  },
  "servers": {
    "queue_capacity": 1000,
    "backends": [
      {"url": "http://127.0.0.1:8081", "weight": 1},
      {"url": "http://127.0.0.1:8082", "weight": 1},
      {"url": "http://127.0.0.1:8083", "weight": 1}
    ]
  },
  "threadpool": {
    "min_workers": 1,
    "max_workers": 50,
    "queue_capacity": 100,
    "queue_timeout": "5s"
  },
  "health_check": {
    "path": "/health",
    "interval": "1s",
    "timeout": "500ms",
    "healthy_threshold": 2,
    "unhealthy_threshold": 2,
    "passive": {"consecutive_failures": 3, "ejection_time": "5s"}
  },
  "pools": {
    "api": {
      "backends": [{"url": "http://127.0.0.1:9001", "weight": 3}, {"url": "http://127.0.0.1:9002"}],
      "strategy": "weighted",
      "health_check": {"path": "/ready"},
      "retries": 1
    },
    "static": {"discovery": {"srv": "_http._tcp.static.default.svc.cluster.local"}}
  },
  "routes": [
    {"match": {"host": "api.example.com", "path_prefix": "/v1/"}, "pool": "api",
     "strip_prefix": "/v1",
     "request_headers": {"set": {"X-Env": "prod"}, "remove": ["X-Debug"]},
     "response_headers": {"set": {"Strict-Transport-Security": "max-age=31536000"}}},
    {"match": {"host": "*.example.com", "methods": ["GET", "HEAD"]}, "pool": "static"},
    {"match": {"headers": {"X-Canary": "1"}}, "pool": "api"},
    {"match": {"path": "/healthz"}, "respond": {"status": 200, "body": "ok\n"}},
    {"match": {"host": "old.example.com"}, "redirect": {"to": "https://new.example.com{uri}", "status": 308}}
  ]
}`

func TestDesignExampleIsValid(t *testing.T) {
	c, err := parseValid(designExample)
	if err != nil {
		t.Fatalf("the DESIGN 4.1 example: %v", err)
	}
	if got, want := c.PoolNames(), []string{"default", "api", "static"}; !slices.Equal(got, want) {
		t.Errorf("PoolNames() = %v, want %v", got, want)
	}
	api, ok := c.Pool("api")
	if !ok {
		t.Fatal(`Pool("api") not found`)
	}
	want := HealthCheck{Path: "/ready", Interval: Duration(time.Second), Timeout: Duration(500 * time.Millisecond),
		HealthyThreshold: 2, UnhealthyThreshold: 2,
		Passive: Passive{ConsecutiveFailures: 3, EjectionTime: Duration(5 * time.Second)}}
	if api.HealthCheck != want {
		t.Errorf(`Pool("api").HealthCheck = %+v, want %+v (the path its own, the rest inherited)`, api.HealthCheck, want)
	}
	if api.Retries != 1 || api.Strategy != "weighted" || len(api.Backends) != 2 || api.Backends[1].Weight != 1 {
		t.Errorf(`Pool("api") = retries %d, strategy %q, backends %v; want 1, weighted, two with the second of weight 1`,
			api.Retries, api.Strategy, api.Backends)
	}
	static, _ := c.Pool("static")
	if static.Retries != 2 || static.Strategy != "leastconn" || static.HealthCheck.Path != "/health" || static.Discovery == nil {
		t.Errorf(`Pool("static") = %+v, want retries 2, leastconn, /health and discovery, all but discovery inherited`, static)
	}
	if r := c.Routes[4].Redirect; r == nil || r.Status != 308 || r.To != "https://new.example.com{uri}" {
		t.Errorf("routes[4].redirect = %+v", r)
	}
}

// TestValidationErrorsHavePositions: every validation error, the older ones too,
// gives the line and column of its key's value when the key is in the file, and
// none when it is not.
func TestValidationErrorsHavePositions(t *testing.T) {
	for _, tt := range []struct{ name, input, key string }{
		{"threadpool", "{\n  \"threadpool\": {\n    \"max_workers\": ‸0\n  }\n}", "threadpool.max_workers"},
		{"backend url", `{"servers": {"backends": [{"url": "http://a:1"}, {"url": ‸"ftp://b"}]}}`, "servers.backends[1].url"},
		{"strategy", "{\"load_balancer\":\n\t{\"strategy\":‸\"fastest\"}}", "load_balancer.strategy"},
		{"plugin", `{"plugins": {"p": ‸{"command": "/bin/true", "script": "a.star"}}}`, "plugins.p"},
		{"discovery resolver", `{"servers": {"discovery": {"srv": "_http._tcp.web", "resolver": ‸"10.0.0.1"}}}`, "servers.discovery.resolver"},
		{"CRLF file", "{\r\n\"health_check\": {\r\n\"healthy_threshold\":   ‸0}}", "health_check.healthy_threshold"},
		// min_workers over max_workers, both given: min_workers is refused where it is.
		{"min over max", `{"threadpool": {"max_workers": 5, "min_workers": ‸10}}`, "threadpool.min_workers"},
		// The default min_workers is over max_workers: no position to give.
		{"a default refused", `{"threadpool": {"max_workers": 0}}`, "threadpool.min_workers"},
	} {
		t.Run(tt.name, func(t *testing.T) { checkRefused(t, tt.input, tt.key) })
	}
}

func TestErrorStringHasPosition(t *testing.T) {
	_, err := parseValid("{\"routes\": [\n  {\"pool\": \"default\", \"request_headers\": {\"set\": {\"Connection\": \"close\"}}}\n]}")
	want := "config.json:2:65: routes[0].request_headers.set.Connection: Connection is a hop-by-hop header: a route may not set or remove it"
	if err == nil || err.Error() != want {
		t.Errorf("parseValid = %v, want %q", err, want)
	}
}

func TestNoPositionForAConfigBuiltInCode(t *testing.T) {
	c := Default()
	c.Threadpool.MaxWorkers = 0
	err := c.Validate(bundled)
	e := refusal(err, "threadpool.max_workers")
	if e == nil || e.Line != 0 || e.Col != 0 {
		t.Errorf("Validate = %v, want threadpool.max_workers refused without a position", err)
	}
	if l, col := c.Position("threadpool.max_workers"); l != 0 || col != 0 {
		t.Errorf("Position = %d:%d, want 0:0 for a config built in code", l, col)
	}
}

func TestPosition(t *testing.T) {
	c, err := Parse([]byte("{\"pools\": {\"a.b\": {\"backends\": [\n  {\"url\": \"http://a:1\"}]}}}"), "config.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key       string
		line, col int
	}{
		{"", 1, 1},
		{"pools", 1, 11},
		{"pools.a.b", 1, 19},
		{"pools.a.b.backends", 1, 32},
		{"pools.a.b.backends[0]", 2, 3},
		{"pools.a.b.backends[0].url", 2, 11},
		{"pools.a.b.backends[1]", 0, 0},
		{"pools.a.b.strategy", 0, 0},
	} {
		if l, col := c.Position(tt.key); l != tt.line || col != tt.col {
			t.Errorf("Position(%q) = %d:%d, want %d:%d", tt.key, l, col, tt.line, tt.col)
		}
	}
}

func TestDiffPoolsAndRoutes(t *testing.T) {
	parse := func(src string) *Config {
		t.Helper()
		c, err := parseValid(src)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse(`{"pools": {"api": {"backends": [{"url": "http://a:1"}], "retries": 1}, "old": {"backends": [{"url": "http://o:1"}]}},
		"routes": [{"pool": "api"}]}`)
	b := parse(`{"pools": {"api": {"backends": [{"url": "http://b:1"}], "retries": 2, "health_check": {"path": "/ready"}},
		"new": {"discovery": {"srv": "_http._tcp.new"}}},
		"routes": [{"pool": "api"}, {"respond": {"status": 200}}]}`)
	got := Diff(a, b)
	want := []string{"pools.api.backends", "pools.api.health_check", "pools.api.retries", "pools.new", "pools.old", "routes"}
	if !slices.Equal(got, want) {
		t.Errorf("Diff = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		key, want string
		ok        bool
	}{
		{"pools.api.retries", "2", true},
		{"pools.api.strategy", "", true},
		{"pools.api.backends", "", false},
		{"pools.old", "", false},
		{"routes", "", false},
	} {
		if v, ok := b.Value(tt.key); v != tt.want || ok != tt.ok {
			t.Errorf("Value(%q) = %q, %v, want %q, %v", tt.key, v, ok, tt.want, tt.ok)
		}
	}
	if d := Diff(Default(), parse(`{"pools": {"api": {"backends": [{"url": "http://a:1"}]}}}`)); !slices.Equal(d, []string{"pools"}) {
		t.Errorf("Diff(no pools, one pool) = %q, want [pools]", d)
	}
}

// A pool's health_check.grpc overrides the top level's; left out, it inherits.
func TestPoolHealthCheckGRPC(t *testing.T) {
	c, err := Parse([]byte(`{"health_check": {"grpc": true},
		"pools": {"a": {"backends": [{"url": "h2c://127.0.0.1:9"}]},
		          "b": {"backends": [{"url": "http://127.0.0.1:9"}], "health_check": {"grpc": false}}}}`), "c.json")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Pool("a")
	b, _ := c.Pool("b")
	if !a.HealthCheck.GRPC || b.HealthCheck.GRPC {
		t.Errorf("grpc: a %v (inherits true), b %v (its own false)", a.HealthCheck.GRPC, b.HealthCheck.GRPC)
	}
}
