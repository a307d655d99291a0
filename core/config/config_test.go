package config

import (
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var bundled = []string{"leastconn", "weighted"}

// parseValid parses and validates src as if read from config.json.
func parseValid(src string) (*Config, error) {
	c, err := Parse([]byte(src), "config.json")
	if err != nil {
		return nil, err
	}
	return c, c.Validate(bundled)
}

func TestSeedConfigGetsDefaults(t *testing.T) {
	seed := `{
  "load_balancer": {"load_balancer_port": "8000"},
  "servers": {"queue_capacity": 1000},
  "threadpool": {"min_workers": 1, "max_workers": 50, "queue_capacity": 100}
}`
	c, err := parseValid(seed)
	if err != nil {
		t.Fatalf("seed config: %v", err)
	}
	if got := len(c.Servers.Backends); got != 3 {
		t.Errorf("backends = %d, want the 3 local test servers", got)
	}
	if c.Servers.Backends[2].URL != "http://127.0.0.1:8083" || c.Servers.Backends[2].Weight != 1 {
		t.Errorf("backends[2] = %+v, want http://127.0.0.1:8083 weight 1", c.Servers.Backends[2])
	}
	if c.LoadBalancer.Strategy != "leastconn" || c.LoadBalancer.StatusPath != "/queue/status" || c.LoadBalancer.Retries != 2 {
		t.Errorf("load_balancer defaults = %+v", c.LoadBalancer)
	}
	if c.Threadpool.QueueTimeout.D() != 5*time.Second || c.HealthCheck.Interval.D() != time.Second {
		t.Errorf("durations = %v, %v, want 5s, 1s", c.Threadpool.QueueTimeout, c.HealthCheck.Interval)
	}
}

func TestShippedConfigIsValid(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "config.json"), bundled)
	if err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if c.LoadBalancer.Port != 8000 || len(c.Servers.Backends) != 3 {
		t.Errorf("config.json = port %d, %d backends, want 8000 and 3", c.LoadBalancer.Port, len(c.Servers.Backends))
	}
}

func TestPortAsNumberOrString(t *testing.T) {
	for _, src := range []string{`{"load_balancer":{"load_balancer_port":9000}}`, `{"load_balancer":{"load_balancer_port":"9000"}}`} {
		c, err := parseValid(src)
		if err != nil || c.LoadBalancer.Port != 9000 {
			t.Errorf("Parse(%s) = port %v, %v, want 9000", src, c.LoadBalancer.Port, err)
		}
	}
}

func TestWeightDefaultsToOne(t *testing.T) {
	c, err := parseValid(`{"servers":{"backends":[{"url":"http://a:1"},{"url":"http://b:1","weight":3}]}}`)
	if err != nil {
		t.Fatal(err)
	}
	if w0, w1 := c.Servers.Backends[0].Weight, c.Servers.Backends[1].Weight; w0 != 1 || w1 != 3 {
		t.Errorf("weights = %d, %d, want 1, 3", w0, w1)
	}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr []string // substrings of the error
	}{
		{"syntax", "{\n  \"threadpool\": {\"max_workers\": 5,}\n}", []string{"config.json:2:", "syntax error"}},
		{"truncated", "{\n\"threadpool\": {", []string{"config.json:2:", "syntax error"}},
		{"empty file", "  ", []string{"config.json", "empty"}},
		{"unknown key", `{"threadpool": {"max_wokers": 5}}`, []string{"threadpool.max_wokers", "unknown key"}},
		{"unknown top key", `{"helth_check": {}}`, []string{"helth_check", "unknown key"}},
		{"unknown backend key", `{"servers":{"backends":[{"url":"http://a:1","wieght":2}]}}`, []string{"servers.backends[0].wieght", "unknown key"}},
		{"wrong type", `{"threadpool": {"max_workers": "many"}}`, []string{"threadpool.max_workers", "string", "whole number"}},
		{"fraction", `{"threadpool": {"max_workers": 1.5}}`, []string{"threadpool.max_workers"}},
		{"bad duration", `{"threadpool": {"queue_timeout": "5 seconds"}}`, []string{"threadpool.queue_timeout", "not a duration"}},
		{"duration as number", `{"health_check": {"interval": 5}}`, []string{"health_check.interval", "duration string"}},
		{"bad port", `{"load_balancer": {"load_balancer_port": "http"}}`, []string{"load_balancer.load_balancer_port", "not a port"}},
		{"port range", `{"load_balancer": {"load_balancer_port": 70000}}`, []string{"load_balancer.load_balancer_port"}},
		{"duplicate key", `{"threadpool": {"max_workers": 5, "max_workers": 6}}`, []string{"config.json:1:", "duplicate"}},
		{"min over max", `{"threadpool": {"min_workers": 10, "max_workers": 5}}`, []string{"threadpool.min_workers", "must not exceed max_workers (5)"}},
		{"typo max", `{"threadpool": {"max_workers": 100000000}}`, []string{"threadpool.max_workers", "at most 100000"}},
		{"typo queue", `{"threadpool": {"queue_capacity": 1000000000}}`, []string{"threadpool.queue_capacity", "at most"}},
		{"zero max", `{"threadpool": {"min_workers": 0, "max_workers": 0}}`, []string{"threadpool.max_workers"}},
		{"empty backends", `{"servers": {"backends": []}}`, []string{"servers.backends", "empty"}},
		{"unknown engine", `{"load_balancer": {"engine": "epoll"}}`, []string{"load_balancer.engine", `"eventloop", "nethttp" or ""`}},
		{"unknown reuse", `{"load_balancer": {"reuse": "never"}}`, []string{"load_balancer.reuse", `"safe" or "always"`}},
		{"unknown on_failure", `{"plugins": {"p": {"command": "/bin/true", "on_failure": "open"}}}`, []string{"plugins.p.on_failure", `"fallback" or "refuse"`}},
		{"negative processes", `{"load_balancer": {"processes": -1}}`, []string{"load_balancer.processes", "got -1"}},
		{"too many processes", `{"load_balancer": {"processes": 100000}}`, []string{"load_balancer.processes", "up to 256"}},
		{"processes on nethttp", `{"load_balancer": {"engine": "nethttp", "processes": 2}}`, []string{"load_balancer.processes", "one process"}},
		{"processes on the old name of nethttp", `{"load_balancer": {"engine": "fasthttp", "processes": 2}}`, []string{"load_balancer.processes", "nethttp", "one process"}},
		{"backend CA missing", `{"servers": {"ca": "no-such-ca.pem"}}`, []string{"servers.ca", "reading the CA file"}},
		{"pool CA missing", `{"pools": {"api": {"backends": [{"url": "https://a:1"}], "ca": "no-such-ca.pem"}}, "routes": [{"pool": "api"}]}`, []string{"pools.api.ca", "reading the CA file"}},
		{"weight zero", `{"servers":{"backends":[{"url":"http://a:1","weight":0}]}}`, []string{"servers.backends[0].weight", "at least 1"}},
		{"duplicate backend", `{"servers":{"backends":[{"url":"http://a:1"},{"url":"http://A:1/"}]}}`, []string{"servers.backends[1].url", "duplicates servers.backends[0]"}},
		{"backend scheme", `{"servers":{"backends":[{"url":"ftp://a:1"}]}}`, []string{"servers.backends[0].url", "http://"}},
		{"backend path", `{"servers":{"backends":[{"url":"http://a:1/api"}]}}`, []string{"servers.backends[0].url", "no path"}},
		{"unknown strategy", `{"load_balancer": {"strategy": "fastest"}}`, []string{"load_balancer.strategy", `"fastest"`}},
		{"missing plugin", `{"load_balancer": {"strategy": "mine"}, "plugins": {"mine": {"command": "./bin/does-not-exist"}}}`, []string{"plugins.mine.command", "cannot be run"}},
		{"missing script", `{"load_balancer": {"strategy": "s"}, "plugins": {"s": {"script": "strategies/none.star"}}}`, []string{"plugins.s.script", "strategies/none.star", "cannot be read"}},
		{"script and command", `{"load_balancer": {"strategy": "s"}, "plugins": {"s": {"script": "a.star", "command": "/bin/true"}}}`, []string{"plugins.s", "both command and script"}},
		{"script extension", `{"load_balancer": {"strategy": "s"}, "plugins": {"s": {"script": "strategies/sticky.lua"}}}`, []string{"plugins.s.script", `unknown script extension ".lua"`, ".star"}},
		{"neither script nor command", `{"load_balancer": {"strategy": "s"}, "plugins": {"s": {"options": {}}}}`, []string{"plugins.s.command", "or use script"}},
		{"discovery both", `{"servers": {"discovery": {"srv": "_http._tcp.web", "dns": "web", "port": 80}}}`, []string{"servers.discovery", "one record"}},
		{"discovery neither", `{"servers": {"discovery": {}}}`, []string{"servers.discovery", "one record"}},
		{"discovery dns port", `{"servers": {"discovery": {"dns": "web"}}}`, []string{"servers.discovery.port", "with dns"}},
		{"discovery resolver", `{"servers": {"discovery": {"srv": "_http._tcp.web", "resolver": "10.0.0.1"}}}`, []string{"servers.discovery.resolver", "host:port"}},
		{"discovery resolver list", `{"servers": {"discovery": {"srv": "_http._tcp.web", "resolver": ["10.0.0.1:53", "10.0.0.2"]}}}`, []string{"servers.discovery.resolver[1]", "host:port", `"10.0.0.2"`}},
		{"discovery resolver empty list", `{"servers": {"discovery": {"srv": "_http._tcp.web", "resolver": []}}}`, []string{"servers.discovery.resolver", "empty list"}},
		{"discovery resolver type", `{"servers": {"discovery": {"srv": "_http._tcp.web", "resolver": 53}}}`, []string{"servers.discovery.resolver", "host:port"}},
		{"discovery resolver list type", `{"servers": {"discovery": {"srv": "_http._tcp.web", "resolver": ["10.0.0.1:53", 53]}}}`, []string{"servers.discovery.resolver", "host:port"}},
		{"discovery scheme", `{"servers": {"discovery": {"srv": "_http._tcp.web", "scheme": "ftp"}}}`, []string{"servers.discovery.scheme"}},
		{"discovery key", `{"servers": {"discovery": {"srvv": "_http._tcp.web"}}}`, []string{"servers.discovery.srvv", "unknown key"}},
		{"status path", `{"load_balancer": {"status_path": "status"}}`, []string{"load_balancer.status_path"}},
		{"admin addr", `{"load_balancer": {"admin_addr": "8001"}}`, []string{"load_balancer.admin_addr"}},
		{"negative timeout", `{"load_balancer": {"timeouts": {"connect": "-1s"}}}`, []string{"load_balancer.timeouts.connect", "positive"}},
		{"thresholds", `{"health_check": {"healthy_threshold": 0}}`, []string{"health_check.healthy_threshold"}},
		{"not an object", `[1,2]`, []string{"config.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRefused(t, tt.input, tt.wantErr) })
	}
}

func TestDiscoveryDefaultsAndNoTestServers(t *testing.T) {
	c, err := parseValid(`{"servers": {"discovery": {"srv": "_http._tcp.web.default.svc.cluster.local"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Servers.Discovery
	if d.Interval.D() != 5*time.Second || d.Scheme != "http" || d.Weight != 1 || d.Resolver != nil {
		t.Errorf("discovery defaults = %+v, want 5s, http, weight 1, the system's resolver", d)
	}
	if len(c.Servers.Backends) != 0 {
		t.Errorf("backends = %v, want none besides DNS (not the local test servers)", c.Servers.Backends)
	}
}

func TestDiscoveryResolverStringOrList(t *testing.T) {
	for _, tt := range []struct {
		resolver string
		want     Addrs
	}{
		{`""`, nil},
		{`null`, nil},
		{`"127.0.0.1:8600"`, Addrs{"127.0.0.1:8600"}},
		{`["127.0.0.1:8600"]`, Addrs{"127.0.0.1:8600"}},
		{`["10.0.0.1:53", "[::1]:53", "dns.internal:domain"]`, Addrs{"10.0.0.1:53", "[::1]:53", "dns.internal:domain"}},
	} {
		c, err := parseValid(`{"servers": {"discovery": {"srv": "_http._tcp.web", "resolver": ` + tt.resolver + `}}}`)
		if err != nil {
			t.Errorf("resolver %s: %v", tt.resolver, err)
			continue
		}
		if got := c.Servers.Discovery.Resolver; !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("resolver %s = %#v, want %#v", tt.resolver, got, tt.want)
		}
	}
}

func TestPluginScriptRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "strategies"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "strategies", "s.star"), []byte("def pick(r, b): return 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	src := `{"load_balancer": {"strategy": "s"}, "plugins": {"s": {"script": "strategies/s.star"}}}`
	c, err := Parse([]byte(src), path)
	if err == nil {
		err = c.Validate(bundled)
	}
	if err != nil {
		t.Fatalf("a script beside the config: %v", err)
	}
	if got, want := c.PluginScript("s"), filepath.Join(dir, "strategies", "s.star"); got != want {
		t.Errorf("PluginScript(s) = %q, want %q (against the config's directory)", got, want)
	}
}

func TestPluginCommandRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "mine")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	src := `{"load_balancer": {"strategy": "mine"}, "plugins": {"mine": {"command": "./bin/mine", "options": {"k": 1}}}}`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, bundled)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.PluginCommand("mine"); got != bin {
		t.Errorf("PluginCommand = %q, want %q", got, bin)
	}
	if got := string(c.Plugins["mine"].Options); got != `{"k": 1}` {
		t.Errorf("options = %s, want {\"k\": 1}", got)
	}
}

// TestPluginCommandPathIsNeverLookedUpInPATH: with the config file in the working
// directory, named by a relative path, "./strat" is the one beside it, whatever
// PATH holds; only a bare name is looked up in PATH. -check (Load) and the start
// (exec.Command) agree.
func TestPluginCommandPathIsNeverLookedUpInPATH(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	writeScript := func(path, says string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("#!/bin/sh\necho "+says+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeScript(filepath.Join(dir, "strat"), "config-dir")
	t.Chdir(dir)
	load := func(command string) (*Config, error) {
		t.Helper()
		src := `{"load_balancer": {"strategy": "mine"}, "plugins": {"mine": {"command": "` + command + `"}}}`
		if err := os.WriteFile("config.json", []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return Load("config.json", bundled)
	}
	runs := func(c *Config) string {
		t.Helper()
		out, err := exec.Command(c.PluginCommand("mine")).Output()
		if err != nil {
			t.Fatalf("running PluginCommand %q: %v", c.PluginCommand("mine"), err)
		}
		return strings.TrimSpace(string(out))
	}

	// No strat in PATH: ./strat is still found beside the config.
	c, err := load("./strat")
	if err != nil {
		t.Fatalf("Load with ./strat beside the config: %v", err)
	}
	if got := runs(c); got != "config-dir" {
		t.Errorf("./strat ran the one of %s, want the config directory's", got)
	}

	// Another strat first in PATH: ./strat is still the config directory's.
	writeScript(filepath.Join(elsewhere, "strat"), "PATH")
	t.Setenv("PATH", elsewhere+string(os.PathListSeparator)+os.Getenv("PATH"))
	if c, err = load("./strat"); err != nil {
		t.Fatalf("Load with ./strat beside the config: %v", err)
	}
	if got := runs(c); got != "config-dir" {
		t.Errorf("./strat with another strat in PATH ran the one of %s, want the config directory's", got)
	}

	// A bare name is looked up in PATH, not beside the config.
	if c, err = load("strat"); err != nil {
		t.Fatalf("Load with a bare name in PATH: %v", err)
	}
	if got := runs(c); got != "PATH" {
		t.Errorf("strat ran the one of %s, want the one in PATH", got)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := load("strat"); err == nil || !strings.Contains(err.Error(), "plugins.mine.command") {
		t.Errorf("Load with a bare name found nowhere in PATH = %v, want plugins.mine.command refused", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"), bundled)
	if err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Errorf("Load(missing) = %v, want an error naming the file", err)
	}
}

func TestDiff(t *testing.T) {
	a, err := parseValid(`{"threadpool": {"max_workers": 5}, "plugins": {"p": {"command": "/bin/true", "options": {"k": 1}}}}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseValid(`{"threadpool": {"max_workers": 6}, "servers": {"backends": [{"url": "http://a:1"}]},
		"plugins": {"p": {"command": "/bin/true", "options": {"k": 2}}}, "load_balancer": {"load_balancer_port": 8000}}`)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Diff(a, b), " ")
	if want := "plugins.p.options.k servers.backends threadpool.max_workers"; got != want {
		t.Errorf("Diff = %q, want %q", got, want)
	}
	if d := Diff(a, a); len(d) != 0 {
		t.Errorf("Diff(a, a) = %v, want nothing", d)
	}
}

func TestOldEngineNameIsReadAsNetHTTPWithAWarning(t *testing.T) {
	for _, tc := range []struct{ input, engine string }{
		{`{"load_balancer": {"engine": "fasthttp"}}`, EngineNetHTTP},
		{`{"load_balancer": {"engine": "nethttp"}}`, EngineNetHTTP},
		{`{"load_balancer": {"engine": "eventloop"}}`, EngineEventLoop},
		{`{}`, ""},
	} {
		c, err := Parse([]byte(tc.input), "config.json")
		if err != nil {
			t.Fatalf("Parse(%s): %v", tc.input, err)
		}
		if err := c.Validate(bundled); err != nil {
			t.Errorf("Validate(%s): %v", tc.input, err)
		}
		if c.LoadBalancer.Engine != tc.engine {
			t.Errorf("Parse(%s).LoadBalancer.Engine = %q, want %q", tc.input, c.LoadBalancer.Engine, tc.engine)
		}
		old := strings.Contains(tc.input, "fasthttp")
		if got := len(c.Warnings) > 0; got != old {
			t.Errorf("Parse(%s).Warnings = %q, want a warning: %v", tc.input, c.Warnings, old)
		}
		if old && !strings.Contains(c.Warnings[0], `"nethttp"`) {
			t.Errorf("warning %q does not name nethttp", c.Warnings[0])
		}
	}
}

func TestBackendTLS(t *testing.T) {
	dir := t.TempDir()
	tlsOf := func(c *Config, pool string) (*tls.Config, string, error) {
		t.Helper()
		ep, ok := c.Pool(pool)
		if !ok {
			t.Fatalf("no pool %s", pool)
		}
		return BackendTLS(c, ep)
	}
	none, _, err := tlsOf(&Config{Path: filepath.Join(dir, "config.json")}, DefaultPool)
	if err != nil || none != nil {
		t.Errorf("BackendTLS(no ca, verify) = %v, %v; want nil, nil (the system's roots)", none, err)
	}
	skip, _, err := tlsOf(&Config{Servers: Servers{TLSSkipVerify: true}}, DefaultPool)
	if err != nil || skip == nil || !skip.InsecureSkipVerify {
		t.Errorf("BackendTLS(tls_skip_verify) = %+v, %v; want InsecureSkipVerify", skip, err)
	}
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for _, name := range []string{"ca.pem", "same.pem"} {
		if err := os.WriteFile(filepath.Join(dir, name), pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Config{Path: filepath.Join(dir, "config.json"), Servers: Servers{CA: "ca.pem"}, Pools: map[string]Pool{
		"api": {TLSSkipVerify: true}, "web": {}, "copy": {CA: "same.pem"}, "bad": {CA: "junk.pem"}}}
	cfg, key, err := tlsOf(c, DefaultPool)
	if err != nil || cfg == nil || cfg.RootCAs == nil {
		t.Fatalf("BackendTLS(servers.ca relative to the config) = %v, %v", cfg, err)
	}
	// The pool verifies the test server's certificate, which the system does not.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET with servers.ca: %v", err)
	}
	resp.Body.Close()
	// Each pool has its own: servers' is default's, not inherited.
	if api, apiKey, _ := tlsOf(c, "api"); api == nil || !api.InsecureSkipVerify || api.RootCAs != nil || apiKey == key {
		t.Errorf("pools.api (tls_skip_verify) = %+v key %q; want its own setting", api, apiKey)
	}
	if web, _, _ := tlsOf(c, "web"); web != nil {
		t.Errorf("pools.web (nothing set) = %+v, want nil: the system's roots, not servers.ca", web)
	}
	if _, copyKey, _ := tlsOf(c, "copy"); copyKey != key {
		t.Errorf("the same CA in another file: key %q, want %q", copyKey, key)
	}
	if _, _, err := tlsOf(c, "bad"); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("BackendTLS(junk) = %v, want a refusal", err)
	}
}

// wantRefused checks that input is refused with an error naming each of wantErr.
func wantRefused(t *testing.T, input string, wantErr []string) {
	t.Helper()
	_, err := parseValid(input)
	if err == nil {
		t.Fatalf("parseValid(%s) = nil error, want one containing %q", input, wantErr)
	}
	for _, want := range wantErr {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("parseValid(%s) = %q, want it to contain %q", input, err, want)
		}
	}
}
