package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Validate reports every impossible value in c, joined; nil when c can be applied.
// bundled names the strategies built into the core. Each error is an *Error naming
// the file and the key and, when the key is in the file Parse read, the line and
// column of its value.
func (c *Config) Validate(bundled []string) error {
	v := validator{file: c.Path}
	lb := &c.LoadBalancer
	v.check(lb.Port >= 0, "load_balancer.load_balancer_port", "must be a port from 1 to 65535")
	v.check(strings.HasPrefix(lb.StatusPath, "/"), "load_balancer.status_path", "must start with /, got %q", lb.StatusPath)
	if lb.AdminAddr != "" {
		_, _, err := net.SplitHostPort(lb.AdminAddr)
		v.check(err == nil, "load_balancer.admin_addr", "must be host:port (or \"\" to turn it off), got %q", lb.AdminAddr)
	}
	v.check(lb.Retries >= 0 && lb.Retries <= 10, "load_balancer.retries", "must be from 0 to 10, got %d", lb.Retries)
	v.check(lb.Reuse == ReuseSafe || lb.Reuse == ReuseAlways, "load_balancer.reuse", "must be %q or %q, got %q", ReuseSafe, ReuseAlways, lb.Reuse)
	t := &lb.Timeouts
	for _, d := range []struct {
		key string
		d   Duration
	}{
		{"connect", t.Connect}, {"response_header", t.ResponseHeader}, {"idle", t.Idle},
		{"read_header", t.ReadHeader}, {"body_idle", t.BodyIdle}, {"shutdown", t.Shutdown},
		{"plugin_start", t.PluginStart},
	} {
		v.check(d.d > 0, "load_balancer.timeouts."+d.key, "must be positive, got %s", d.d)
	}
	v.check(lb.Limits.MaxHeaderBytes >= 1024, "load_balancer.limits.max_header_bytes", "must be at least 1024, got %d", lb.Limits.MaxHeaderBytes)
	v.check(lb.Limits.MaxHeaders >= 1, "load_balancer.limits.max_headers", "must be at least 1, got %d", lb.Limits.MaxHeaders)
	v.strategy(c, bundled)
	v.servers(c)
	v.engine(c)
	v.listeners(c)

	tp := &c.Threadpool
	v.check(tp.MinWorkers >= 0, "threadpool.min_workers", "must be 0 or more, got %d", tp.MinWorkers)
	v.check(tp.MaxWorkers >= 1, "threadpool.max_workers", "must be at least 1, got %d", tp.MaxWorkers)
	// Larger values can only be typos: each worker may hold a backend connection.
	v.check(tp.MaxWorkers <= MaxWorkers, "threadpool.max_workers", "must be at most %d, got %d", MaxWorkers, tp.MaxWorkers)
	v.check(tp.QueueCapacity <= MaxQueue, "threadpool.queue_capacity", "must be at most %d, got %d", MaxQueue, tp.QueueCapacity)
	v.check(c.Servers.QueueCapacity <= MaxQueue, "servers.queue_capacity", "must be at most %d, got %d", MaxQueue, c.Servers.QueueCapacity)
	v.check(tp.MinWorkers <= tp.MaxWorkers, "threadpool.min_workers", "must not exceed max_workers (%d), got %d", tp.MaxWorkers, tp.MinWorkers)
	v.check(tp.QueueCapacity >= 0, "threadpool.queue_capacity", "must be 0 or more, got %d", tp.QueueCapacity)
	v.check(tp.QueueTimeout > 0, "threadpool.queue_timeout", "must be positive, got %s", tp.QueueTimeout)
	v.check(tp.IdleTimeout > 0, "threadpool.idle_timeout", "must be positive, got %s", tp.IdleTimeout)

	v.healthCheck("health_check", c.HealthCheck, nil)
	v.pools(c, bundled)
	v.routes(c)
	locate(c.raw, v.errs)
	return errors.Join(v.errs...)
}

// validator collects the errors of one Validate call.
type validator struct {
	file string
	errs []error
}

// check records an error for key unless ok.
func (v *validator) check(ok bool, key, format string, args ...any) {
	if !ok {
		v.errs = append(v.errs, &Error{File: v.file, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
}

// healthCheck checks the health check hc, under key (health_check, or a pool's).
// given reports whether the file gives a field ("passive.ejection_time"); nil means
// every field is checked. A pool's health check is checked for the fields it gives:
// those it leaves out are the top level's, checked there.
func (v *validator) healthCheck(key string, hc HealthCheck, given func(field string) bool) {
	for _, r := range []struct {
		field string
		ok    bool
		msg   string
	}{
		{"path", strings.HasPrefix(hc.Path, "/"), fmt.Sprintf("must start with /, got %q", hc.Path)},
		{"interval", hc.Interval > 0, fmt.Sprintf("must be positive, got %s", hc.Interval)},
		{"timeout", hc.Timeout > 0, fmt.Sprintf("must be positive, got %s", hc.Timeout)},
		{"healthy_threshold", hc.HealthyThreshold >= 1, fmt.Sprintf("must be at least 1, got %d", hc.HealthyThreshold)},
		{"unhealthy_threshold", hc.UnhealthyThreshold >= 1, fmt.Sprintf("must be at least 1, got %d", hc.UnhealthyThreshold)},
		{"passive.consecutive_failures", hc.Passive.ConsecutiveFailures >= 0, fmt.Sprintf("must be 0 (off) or more, got %d", hc.Passive.ConsecutiveFailures)},
		{"passive.ejection_time", hc.Passive.EjectionTime > 0, fmt.Sprintf("must be positive, got %s", hc.Passive.EjectionTime)},
	} {
		if given == nil || given(r.field) {
			v.check(r.ok, key+"."+r.field, "%s", r.msg)
		}
	}
}

// strategy checks that the strategy exists and that every plugin command can run.
func (v *validator) strategy(c *Config, bundled []string) {
	v.strategyName("load_balancer.strategy", c.LoadBalancer.Strategy, c, bundled)
	for pname, p := range c.Plugins {
		key := "plugins." + pname
		v.check(p.OnFailure == "" || p.OnFailure == OnFailureFallback || p.OnFailure == OnFailureRefuse, key+".on_failure",
			"must be %q or %q, got %q", OnFailureFallback, OnFailureRefuse, p.OnFailure)
		switch {
		case p.Command != "" && p.Script != "":
			v.check(false, key, "has both command and script: name one")
		case p.Script != "":
			v.script(key+".script", p.Script, c.PluginScript(pname))
		case p.Command == "":
			v.check(false, key+".command", "must name the plugin's executable (or use script)")
		default:
			_, err := exec.LookPath(c.PluginCommand(pname))
			v.check(err == nil, key+".command", "%q cannot be run: %v", p.Command, errors.Unwrap(err))
		}
	}
}

// Upper bounds of the pool's sizes: above them a value can only be a typo.
const (
	MaxWorkers = 100_000
	MaxQueue   = 10_000_000
)

// ScriptExts are the file extensions of the script languages strategies may be
// written in.
var ScriptExts = []string{".star"}

// script checks that a strategy script exists and is in a known language; whether it
// loads is checked by the script engine (see lb.Validate).
func (v *validator) script(key, raw, path string) {
	if ext := filepath.Ext(path); !slices.Contains(ScriptExts, ext) {
		v.check(false, key, "%q: unknown script extension %q (known: %s)", raw, ext, strings.Join(ScriptExts, ", "))
		return
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		v.check(false, key, "%q cannot be read: %v", raw, errors.Unwrap(err))
	case st.IsDir():
		v.check(false, key, "%q is a directory", raw)
	}
}

// PluginScript is the script of plugin name, resolved against the config file's
// directory when it is relative; "" when the plugin has none.
func (c *Config) PluginScript(name string) string {
	s := c.Plugins[name].Script
	if s == "" || filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(filepath.Dir(c.Path), s)
}

// PluginCommand is the executable of plugin name, as exec is to run it: a bare name
// ("strat") as it is, for exec to look up in PATH; an absolute path as it is; and a
// relative path ("./strat", "bin/strat") resolved against the config file's directory,
// in a form that exec never looks up in PATH ("./strat", never "strat").
func (c *Config) PluginCommand(name string) string {
	cmd := c.Plugins[name].Command
	if filepath.IsAbs(cmd) || !strings.ContainsAny(cmd, pathSeparators) {
		return cmd // absolute, or a bare name looked up in PATH
	}
	path := filepath.Join(filepath.Dir(c.Path), cmd)
	if !filepath.IsAbs(path) && !strings.ContainsAny(path, pathSeparators) {
		// Join cleaned "./strat" beside a relative config path to "strat": a bare
		// name again, which exec would look up in PATH.
		path = "." + string(filepath.Separator) + path
	}
	return path
}

// pathSeparators are the characters that make a command a path rather than a name
// to look up in PATH.
const pathSeparators = "/" + string(filepath.Separator)

// strategyName checks that the strategy name given under key is a bundled one or a
// key of plugins.
func (v *validator) strategyName(key, name string, c *Config, bundled []string) {
	_, isPlugin := c.Plugins[name]
	v.check(isPlugin || slices.Contains(bundled, name), key,
		"%q is neither a bundled strategy (%s) nor a key of plugins", name, strings.Join(bundled, ", "))
}

// servers checks servers, the pool named default. Its backends may be an empty list
// only beside routes: default then has no backends, and a request no route takes
// gets 404 (DESIGN section 4.1).
func (v *validator) servers(c *Config) {
	s := &c.Servers
	v.check(s.QueueCapacity >= 1, "servers.queue_capacity", "must be at least 1, got %d", s.QueueCapacity)
	v.check(len(s.Backends) > 0 || s.Discovery != nil || len(c.Routes) > 0, "servers.backends",
		"is empty: list at least one backend, or leave the key out for the local test servers (an empty list is for a file with routes)")
	if d := s.Discovery; d != nil {
		v.discovery("servers.discovery", d)
	}
	v.backends("servers.backends", s.Backends)
}

// backends checks the backend list under key: valid URLs, none twice, weights >= 1.
// Whether the list may be empty is the caller's rule.
func (v *validator) backends(key string, bs []Backend) {
	seen := make(map[string]int, len(bs))
	for i, b := range bs {
		k := fmt.Sprintf("%s[%d]", key, i)
		v.check(b.Weight >= 1, k+".weight", "must be at least 1, got %d", b.Weight)
		norm, err := NormalizeURL(b.URL)
		if err != nil {
			v.check(false, k+".url", "%v", err)
			continue
		}
		if j, dup := seen[norm]; dup {
			v.check(false, k+".url", "%q duplicates %s[%d]", b.URL, key, j)
		}
		seen[norm] = i
	}
}

// discovery checks a discovery section under key (servers.discovery, or a pool's).
func (v *validator) discovery(key string, d *Discovery) {
	v.check((d.SRV == "") != (d.DNS == ""), key, "names one record: srv, or dns with port")
	v.check(d.DNS == "" || d.Port > 0, key+".port", "must be given with dns (the backends' port)")
	v.check(d.SRV == "" || d.Port == 0, key+".port", "goes with dns only: an SRV record gives the ports")
	v.check(d.Resolver == nil || len(d.Resolver) > 0, key+".resolver", "is an empty list: list at least one host:port, or leave the key out for the system's resolver")
	for i, addr := range d.Resolver {
		k := key + ".resolver"
		if len(d.Resolver) > 1 {
			k = fmt.Sprintf("%s[%d]", k, i)
		}
		_, port, err := net.SplitHostPort(addr)
		v.check(err == nil && port != "", k, "must be host:port, got %q", addr)
	}
	v.check(d.Interval > 0, key+".interval", "must be positive, got %s", d.Interval)
	v.check(d.Scheme == "http" || d.Scheme == "https" || d.Scheme == "h2c", key+".scheme", "must be http, https or h2c, got %q", d.Scheme)
	v.check(d.Weight >= 1, key+".weight", "must be at least 1, got %d", d.Weight)
}

// NormalizeURL checks a backend URL and returns its canonical form, scheme://host:port.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL: %v", raw, errors.Unwrap(err))
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "h2c":
		return "", fmt.Errorf("%q must start with http://, https:// or h2c:// (HTTP/2 without TLS)", raw)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host", raw)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.User != nil:
		return "", fmt.Errorf("%q must be scheme://host:port only (no path, query or user)", raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "h2c": "80"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}

// engine checks the front choice.
func (v *validator) engine(c *Config) {
	switch c.LoadBalancer.Engine {
	case "", EngineNetHTTP, EngineEventLoop:
	default:
		v.check(false, "load_balancer.engine", "must be %q, %q or \"\" (eventloop where it runs), got %q", EngineEventLoop, EngineNetHTTP, c.LoadBalancer.Engine)
	}
	n := c.LoadBalancer.Processes
	v.check(n >= 0 && n <= MaxProcesses, "load_balancer.processes", "must be 0 (one per CPU), 1 (all in one process) or up to %d, got %d", MaxProcesses, n)
	v.check(n <= 1 || c.LoadBalancer.Engine != EngineNetHTTP, "load_balancer.processes",
		"the nethttp front runs in one process; use 1 (or 0), or \"engine\": \"eventloop\"")
	for _, name := range c.PoolNames() {
		ep, _ := c.Pool(name)
		if ep.CA == "" {
			continue
		}
		key := "pools." + name + ".ca"
		if name == DefaultPool {
			key = "servers.ca"
		}
		_, _, err := BackendTLS(c, ep)
		v.check(err == nil, key, "%v", err)
	}
}
