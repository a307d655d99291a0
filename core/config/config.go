// Package config defines the load balancer's configuration (config.json), reads it
// strictly, fills defaults and validates it.
//
// A Config is immutable once loaded: a live reload builds a new one and swaps it in.
package config

import (
	"encoding/json"
	"time"
)

// Config is one generation of config.json. The zero value is not useful; use Default,
// Parse or Load.
type Config struct {
	LoadBalancer LoadBalancer      `json:"load_balancer"`
	Servers      Servers           `json:"servers"`
	Threadpool   Threadpool        `json:"threadpool"`
	HealthCheck  HealthCheck       `json:"health_check"`
	Plugins      map[string]Plugin `json:"plugins"`
	// Pools are the named pools beside default (servers), each with its own
	// backends, strategy and health check (DESIGN section 4.1).
	Pools map[string]Pool `json:"pools"`
	// Listeners are client listeners beside load_balancer_port's: TLS, h2c, or
	// redirecting to https (DESIGN section 4.2).
	Listeners []Listener `json:"listeners"`
	// Routes send each request, by host, path, method or header, to a pool, or
	// answer it; tried in order, the first that matches wins. A request no route
	// matches goes to default.
	Routes []Route `json:"routes"`

	// Path is the file this configuration was read from ("" when built in code).
	Path string `json:"-"`
	// Warnings are what Parse read differently from what the file says (an old
	// name of a value), for the log.
	Warnings []string `json:"-"`
	// raw is the file as Parse read it, where Validate finds the line and column of
	// a refused key.
	raw []byte
}

// LoadBalancer is the client-facing side.
type LoadBalancer struct {
	// Port clients connect to, a string or a number (default "8000"). 0 picks a free port.
	Port Port `json:"load_balancer_port"`
	// Host the client listener binds to (default "", all interfaces).
	Host string `json:"host"`
	// Strategy selects backends: a bundled strategy or a key of Plugins (default "leastconn").
	Strategy string `json:"strategy"`
	// StatusPath answers the status JSON on the client port, GET or POST (default "/queue/status").
	StatusPath string `json:"status_path"`
	// AdminAddr serves /metrics and /status (default "127.0.0.1:8001"; "" turns it off).
	AdminAddr string `json:"admin_addr"`
	// Retries is how many more backends a failed request may try (default 2).
	Retries int `json:"retries"`
	// Timeouts bound every stage of a request.
	Timeouts Timeouts `json:"timeouts"`
	// Limits protect the proxy from abusive clients.
	Limits Limits `json:"limits"`
	// AccessLog names the access log: a file (relative to the config file's
	// directory), "-" for standard output, "" for none (default "").
	AccessLog string `json:"access_log"`
	// Engine is the front that serves the client listener: "eventloop" (event
	// loops; Linux, macOS and the BSDs), "nethttp" (Go's net/http server, a
	// goroutine per connection; every system), or "" (the default): eventloop where
	// it runs, nethttp elsewhere. Either reaches http and https backends. An older
	// file's "fasthttp" is read as "nethttp", with a warning (see Warnings).
	Engine string `json:"engine"`
	// Reuse is which idle backend connection a request may take, as HAProxy's
	// http-reuse: "safe" (the default) never sends the first request of a client
	// connection on a backend connection another client's request used last, so a
	// backend that answers twice, late, can confuse no other client; "always" takes
	// any sound idle connection.
	Reuse string `json:"reuse"`
	// Processes is the number of data-plane processes of the eventloop engine, each
	// one event loop sharing the port (0, the default: one per CPU the core may use on
	// Linux, GOMAXPROCS, which follows a container's CPU limit; 1 elsewhere; 1:
	// everything in the core's own process).
	Processes int `json:"processes"`
}

// The backend connection reuse policies of LoadBalancer.Reuse.
const (
	ReuseSafe   = "safe"
	ReuseAlways = "always"
)

// MaxProcesses bounds LoadBalancer.Processes.
const MaxProcesses = 256

// The data planes LoadBalancer.Engine selects.
const (
	EngineNetHTTP   = "nethttp"
	EngineEventLoop = "eventloop"
)

// Timeouts bound each stage of a proxied request and of a client connection.
type Timeouts struct {
	// Connect bounds dialing a backend (default 2s).
	Connect Duration `json:"connect"`
	// ResponseHeader bounds the wait for a backend's response headers (default 30s).
	ResponseHeader Duration `json:"response_header"`
	// Idle closes a keep-alive connection, to a client or a backend, unused this long (default 90s).
	Idle Duration `json:"idle"`
	// ReadHeader bounds reading a client's request headers (default 10s).
	ReadHeader Duration `json:"read_header"`
	// BodyIdle closes a connection whose body, either way, makes no progress this long (default 60s).
	BodyIdle Duration `json:"body_idle"`
	// Shutdown bounds the drain of in-flight requests on SIGINT/SIGTERM (default 30s).
	Shutdown Duration `json:"shutdown"`
	// PluginStart bounds a strategy plugin's start, up to its first answer (default
	// 10s); a plugin that takes longer is stopped with every process it started.
	PluginStart Duration `json:"plugin_start"`
}

// Limits protect the proxy from abusive clients.
type Limits struct {
	// MaxHeaderBytes is the largest request header block accepted (default 16384); larger gets 431.
	MaxHeaderBytes int `json:"max_header_bytes"`
	// MaxHeaders is the most request header fields accepted (default 100); more gets 431.
	MaxHeaders int `json:"max_headers"`
}

// Servers is the backend pool.
type Servers struct {
	// QueueCapacity is the queue size of each test backend (server/ reads it; default 1000).
	QueueCapacity int `json:"queue_capacity"`
	// Backends to balance over (default the three local test servers on 8081-8083,
	// unless Discovery is given). An explicitly empty list is refused without Discovery.
	Backends []Backend `json:"backends"`
	// Discovery finds more backends in DNS (default none).
	Discovery *Discovery `json:"discovery"`
	// CA names a PEM file of the certificates that https backends are verified
	// against, resolved against the config file's directory (default "": the
	// system's roots).
	CA string `json:"ca"`
	// TLSSkipVerify accepts any certificate from https backends: for tests and
	// private networks only.
	TLSSkipVerify bool `json:"tls_skip_verify"`
}

// Backend is one upstream server.
type Backend struct {
	// URL is the backend's base URL, scheme://host:port; its identity across reloads.
	URL string `json:"url"`
	// Weight is its share relative to the others (default 1, at least 1).
	Weight int `json:"weight"`
	// Source says where the backend comes from: "config" (the default) or "dns".
	Source string `json:"-"`
	// Priority ranks the backend for taking requests: a backend takes none while
	// one of a lower Priority can (DESIGN section 4, an SRV record's priorities, as
	// nginx's service= honours them). 0 for the backends of config.json and of A/AAAA
	// records; for an SRV target, the place of its priority among the values the
	// record's targets have, 0 for the lowest.
	Priority int `json:"-"`
}

// Discovery finds backends in DNS, as HAProxy's server-template and nginx's resolve
// do: each target of an SRV record, or each address of an A/AAAA record on Port.
type Discovery struct {
	// SRV names an SRV record; each target:port is a backend. Exclusive with DNS.
	SRV string `json:"srv"`
	// DNS names an A/AAAA record; each address, on Port, is a backend.
	DNS string `json:"dns"`
	// Port is the backends' port with DNS.
	Port Port `json:"port"`
	// Resolver lists the DNS servers to ask, host:port each, in order: the next is
	// asked when one does not answer (default none: the system's resolver). One
	// server may be given as a string.
	Resolver Addrs `json:"resolver"`
	// Interval is how often the records are resolved again (default 5s).
	Interval Duration `json:"interval"`
	// Scheme of the backends' URLs, http or https (default http).
	Scheme string `json:"scheme"`
	// Weight of each backend of an A/AAAA record (default 1). An SRV target's
	// weight is the record's (0 counts as 1).
	Weight int `json:"weight"`
}

// Threadpool is the adaptive worker pool in front of the backends.
type Threadpool struct {
	// MinWorkers is the floor the pool never shrinks below (default 1).
	MinWorkers int `json:"min_workers"`
	// MaxWorkers is the most requests served at once (default 50).
	MaxWorkers int `json:"max_workers"`
	// QueueCapacity is how many requests may wait for a worker (default 100); more get 503.
	QueueCapacity int `json:"queue_capacity"`
	// QueueTimeout is the longest a request waits for a worker before it gets 503 (default 5s).
	QueueTimeout Duration `json:"queue_timeout"`
	// IdleTimeout is how long a worker sits idle before the pool shrinks (default 10s).
	IdleTimeout Duration `json:"idle_timeout"`
}

// HealthCheck configures active probes and passive ejection.
type HealthCheck struct {
	// Path probed with GET on each backend (default "/health").
	Path string `json:"path"`
	// Interval between probes of one backend (default 1s).
	Interval Duration `json:"interval"`
	// Timeout of one probe (default 500ms).
	Timeout Duration `json:"timeout"`
	// HealthyThreshold is the consecutive successes that bring a backend back (default 2).
	HealthyThreshold int `json:"healthy_threshold"`
	// UnhealthyThreshold is the consecutive failures that take a backend out (default 2).
	UnhealthyThreshold int `json:"unhealthy_threshold"`
	// GRPC checks with the standard grpc.health.v1 service (Check, which must
	// answer SERVING) instead of GET path (default false).
	GRPC bool `json:"grpc"`
	// Passive ejects backends on failures of real traffic.
	Passive Passive `json:"passive"`
}

// Passive configures ejection on failures of real traffic.
type Passive struct {
	// ConsecutiveFailures (connection errors or 5xx) that eject a backend (default 3; 0 turns it off).
	ConsecutiveFailures int `json:"consecutive_failures"`
	// EjectionTime is the first ejection's length, doubled on repeats (default 5s).
	EjectionTime Duration `json:"ejection_time"`
}

// Plugin names an external strategy: an executable, or a script.
type Plugin struct {
	// Command is the executable, absolute or relative to the config file's directory.
	Command string `json:"command"`
	// Script is a strategy script (.star, Starlark), absolute or relative to the
	// config file's directory; exclusive with Command.
	Script string `json:"script"`
	// Args are passed to Command.
	Args []string `json:"args"`
	// Options are handed to the strategy's Configure, as written.
	Options json.RawMessage `json:"options"`
	// OnFailure is what a pick the strategy fails to make (it crashed, is
	// restarting, hung, or answered nonsense) gets: "fallback" (the default, "" too)
	// the built-in least-connections pick, or "refuse" a 503 with code
	// strategy_failed, for rules that must hold even then (tenant isolation, a
	// canary ceiling).
	OnFailure string `json:"on_failure"`
}

// The choices of Plugin.OnFailure.
const (
	OnFailureFallback = "fallback"
	OnFailureRefuse   = "refuse"
)

// Refuses reports whether the strategy in force fails closed: its plugins entry says
// "on_failure": "refuse".
func (c *Config) Refuses() bool {
	return c.Plugins[c.LoadBalancer.Strategy].OnFailure == OnFailureRefuse
}

// DefaultBackends are the backends used when config.json has no servers.backends key:
// the three local test servers of `go run server/server.go 8081` (8082, 8083).
func DefaultBackends() []Backend {
	return []Backend{
		{URL: "http://127.0.0.1:8081", Weight: 1},
		{URL: "http://127.0.0.1:8082", Weight: 1},
		{URL: "http://127.0.0.1:8083", Weight: 1},
	}
}

// Default returns the configuration of an empty config.json.
func Default() *Config {
	c := defaults()
	c.Servers.Backends = DefaultBackends()
	return c
}

// defaults is Default without backends: Parse tells a missing list from an empty one.
func defaults() *Config {
	return &Config{
		LoadBalancer: LoadBalancer{
			Port:       8000,
			Strategy:   "leastconn",
			StatusPath: "/queue/status",
			AdminAddr:  "127.0.0.1:8001",
			Retries:    2,
			Reuse:      ReuseSafe,
			Timeouts: Timeouts{
				Connect:        Duration(2 * time.Second),
				ResponseHeader: Duration(30 * time.Second),
				Idle:           Duration(90 * time.Second),
				ReadHeader:     Duration(10 * time.Second),
				BodyIdle:       Duration(60 * time.Second),
				Shutdown:       Duration(30 * time.Second),
				PluginStart:    Duration(10 * time.Second),
			},
			Limits: Limits{MaxHeaderBytes: 16384, MaxHeaders: 100},
		},
		Servers: Servers{QueueCapacity: 1000},
		Threadpool: Threadpool{
			MinWorkers:    1,
			MaxWorkers:    50,
			QueueCapacity: 100,
			QueueTimeout:  Duration(5 * time.Second),
			IdleTimeout:   Duration(10 * time.Second),
		},
		HealthCheck: HealthCheck{
			Path:               "/health",
			Interval:           Duration(time.Second),
			Timeout:            Duration(500 * time.Millisecond),
			HealthyThreshold:   2,
			UnhealthyThreshold: 2,
			Passive:            Passive{ConsecutiveFailures: 3, EjectionTime: Duration(5 * time.Second)},
		},
	}
}
