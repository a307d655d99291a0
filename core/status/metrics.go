package status

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-lb/switchyard/core/backend"
)

// collector turns the status into Prometheus metrics when scraped, so the request
// path pays nothing for them.
type collector struct{ s *Source }

var (
	descWorkers      = prometheus.NewDesc("lb_pool_workers", "Workers in the adaptive pool.", nil, nil)
	descBusy         = prometheus.NewDesc("lb_pool_busy_workers", "Workers serving a request.", nil, nil)
	descQueue        = prometheus.NewDesc("lb_pool_queue_length", "Requests waiting for a worker.", nil, nil)
	descQueueCap     = prometheus.NewDesc("lb_pool_queue_capacity", "Most requests that may wait for a worker.", nil, nil)
	descAdmitted     = prometheus.NewDesc("lb_pool_admitted_total", "Requests given a worker.", nil, nil)
	descShed         = prometheus.NewDesc("lb_pool_shed_total", "Requests answered 503 by the pool.", []string{"reason"}, nil)
	descHealthy      = prometheus.NewDesc("lb_backend_healthy", "1 when the backend takes new requests.", []string{"backend"}, nil)
	descInflight     = prometheus.NewDesc("lb_backend_inflight", "Requests open on the backend.", []string{"backend"}, nil)
	descBackendQueue = prometheus.NewDesc("lb_backend_queue_length", "The backend's own reported queue, -1 when unknown.", []string{"backend"}, nil)
	descRequests     = prometheus.NewDesc("lb_backend_requests_total", "Requests sent to the backend.", []string{"backend"}, nil)
	descFailures     = prometheus.NewDesc("lb_backend_failures_total", "Requests to the backend that failed.", []string{"backend"}, nil)
	descStale        = prometheus.NewDesc("lb_backend_stale_connections_total", "Pooled connections to the backend discarded before reuse (closed while idle, or holding unasked bytes).", []string{"backend"}, nil)
	descWeight       = prometheus.NewDesc("lb_backend_weight", "The backend's weight in force: configured, or set at run time.", []string{"backend"}, nil)
	descEjections    = prometheus.NewDesc("lb_backend_ejections", "Passive ejections of the backend in a row.", []string{"backend"}, nil)
	descGeneration   = prometheus.NewDesc("lb_config_generation", "Configurations applied so far.", nil, nil)
	descStrategy     = prometheus.NewDesc("lb_strategy_info", "The running strategy.", []string{"name", "state"}, nil)
	descFallbacks    = prometheus.NewDesc("lb_strategy_fallbacks_total", "Picks made by the built-in strategy because the plugin could not answer well.", nil, nil)
	descRestarts     = prometheus.NewDesc("lb_strategy_restarts_total", "Restarts of the strategy plugin.", nil, nil)
	descByCode       = prometheus.NewDesc("lb_requests_total", "Requests answered, by status code and the backend that answered (\"\" for the proxy's own answers).", []string{"backend", "code"}, nil)
	descDuration     = prometheus.NewDesc("lb_request_duration_seconds", "Time from a request's arrival to the end of its answer.", []string{"backend"}, nil)
	descReloads      = prometheus.NewDesc("lb_config_reloads_total", "Configuration reloads, applied or refused.", []string{"result"}, nil)
	descEjectTotal   = prometheus.NewDesc("lb_backend_ejections_total", "Passive ejections of the backend since it joined.", []string{"backend"}, nil)
	descState        = prometheus.NewDesc("lb_backend_state", "1 for the backend's current state (up, down, ejected, drain).", []string{"backend", "state"}, nil)
	descPriority     = prometheus.NewDesc("lb_backend_priority", "The backend's rank for taking requests: it takes none while one of a lower priority can.", []string{"backend"}, nil)
	descLookups      = prometheus.NewDesc("lb_discovery_lookups_total", "DNS lookups of servers.discovery, by result (ok, partial, error).", []string{"result"}, nil)
	descDiscovered   = prometheus.NewDesc("lb_discovery_backends", "Backends found in DNS (the last known set).", nil, nil)
	descResolvedAt   = prometheus.NewDesc("lb_discovery_resolved_timestamp_seconds", "When the last DNS lookup that found backends ended, in Unix seconds.", nil, nil)
	descBodyBytes    = prometheus.NewDesc("lb_backend_body_bytes_total", "Body bytes passed to (in: of requests) and from (out: of answers) the backend.", []string{"backend", "direction"}, nil)
	descCheckTime    = prometheus.NewDesc("lb_backend_check_duration_seconds", "How long the backend's last active health check took.", []string{"backend"}, nil)
)

// backendStates are the values of lb_backend_state's state label.
var backendStates = []string{backend.StateUp, backend.StateDown, backend.StateEjected, backend.StateDrain}

// collectAnswers sends a's counts by code and its duration histogram for url.
func collectAnswers(ch chan<- prometheus.Metric, a *backend.Answers, url string) {
	a.Codes(func(code int, n uint64) {
		ch <- prometheus.MustNewConstMetric(descByCode, prometheus.CounterValue, float64(n), url, strconv.Itoa(code))
	})
	count, sum, buckets := a.Histogram()
	ch <- prometheus.MustNewConstHistogram(descDuration, count, sum, buckets, url)
}

// Describe sends the metrics' descriptions.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkers, descBusy, descQueue, descQueueCap, descAdmitted, descShed,
		descHealthy, descInflight, descBackendQueue, descRequests, descFailures, descStale, descWeight, descEjections, descGeneration, descStrategy, descFallbacks, descRestarts,
		descByCode, descDuration, descReloads, descEjectTotal, descState, descPriority, descLookups, descDiscovered, descResolvedAt,
		descBodyBytes, descCheckTime} {
		ch <- d
	}
}

// Collect reads the status and sends it as metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	p := st.Pool
	gauge(descWorkers, float64(p.Workers))
	gauge(descBusy, float64(p.Busy))
	gauge(descQueue, float64(p.QueueLength))
	gauge(descQueueCap, float64(p.QueueCapacity))
	counter(descAdmitted, p.Admitted)
	counter(descShed, p.ShedFull, "queue_full")
	counter(descShed, p.ShedTimeout, "queue_timeout")
	for _, b := range st.Backends {
		healthy := 0.0
		if b.Healthy {
			healthy = 1
		}
		gauge(descHealthy, healthy, b.URL)
		gauge(descInflight, float64(b.Inflight), b.URL)
		gauge(descBackendQueue, float64(b.QueueLength), b.URL)
		gauge(descWeight, float64(b.Weight), b.URL)
		gauge(descEjections, float64(b.Ejections), b.URL)
		gauge(descPriority, float64(b.Priority), b.URL)
		counter(descRequests, b.Requests, b.URL)
		counter(descFailures, b.Failures, b.URL)
		counter(descStale, b.StaleConns, b.URL)
		counter(descBodyBytes, b.BytesIn, b.URL, "in")
		counter(descBodyBytes, b.BytesOut, b.URL, "out")
		if b.Check != nil {
			gauge(descCheckTime, b.Check.DurationMs/1e3, b.URL)
		}
	}
	for _, b := range c.s.Backends.Snapshot().All {
		collectAnswers(ch, b.Answers, b.URL)
		counter(descEjectTotal, b.EjectionsTotal(), b.URL)
		state := b.Health().State
		for _, s := range backendStates {
			v := 0.0
			if s == state {
				v = 1
			}
			gauge(descState, v, b.URL, s)
		}
	}
	if c.s.Own != nil {
		collectAnswers(ch, c.s.Own, "")
	}
	if d := st.Discovery; d != nil {
		counter(descLookups, d.Lookups.OK, "ok")
		counter(descLookups, d.Lookups.Partial, "partial")
		counter(descLookups, d.Lookups.Error, "error")
		gauge(descDiscovered, float64(d.Backends))
		if !d.ResolvedAt.IsZero() {
			gauge(descResolvedAt, float64(d.ResolvedAt.UnixNano())/1e9)
		}
	}
	counter(descReloads, c.s.applied.Load(), "applied")
	counter(descReloads, c.s.refused.Load(), "refused")
	gauge(descGeneration, float64(st.Config.Generation))
	gauge(descStrategy, 1, st.Strategy.Name, st.Strategy.State)
	counter(descFallbacks, st.Strategy.Fallbacks)
	counter(descRestarts, st.Strategy.Restarts)
}
