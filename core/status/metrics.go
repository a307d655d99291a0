package status

import (
	"strconv"
	"strings"

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
	descHealthy      = prometheus.NewDesc("lb_backend_healthy", "1 when the backend takes new requests.", []string{"pool", "backend"}, nil)
	descInflight     = prometheus.NewDesc("lb_backend_inflight", "Requests open on the backend.", []string{"pool", "backend"}, nil)
	descBackendQueue = prometheus.NewDesc("lb_backend_queue_length", "The backend's own reported queue, -1 when unknown.", []string{"pool", "backend"}, nil)
	descRequests     = prometheus.NewDesc("lb_backend_requests_total", "Requests sent to the backend.", []string{"pool", "backend"}, nil)
	descFailures     = prometheus.NewDesc("lb_backend_failures_total", "Requests to the backend that failed.", []string{"pool", "backend"}, nil)
	descStale        = prometheus.NewDesc("lb_backend_stale_connections_total", "Pooled connections to the backend discarded before reuse (closed while idle, or holding unasked bytes).", []string{"pool", "backend"}, nil)
	descWeight       = prometheus.NewDesc("lb_backend_weight", "The backend's weight in force: configured, or set at run time.", []string{"pool", "backend"}, nil)
	descEjections    = prometheus.NewDesc("lb_backend_ejections", "Passive ejections of the backend in a row.", []string{"pool", "backend"}, nil)
	descGeneration   = prometheus.NewDesc("lb_config_generation", "Configurations applied so far.", nil, nil)
	descStrategy     = prometheus.NewDesc("lb_strategy_info", "The running strategy of each pool.", []string{"pool", "name", "state"}, nil)
	descFallbacks    = prometheus.NewDesc("lb_strategy_fallbacks_total", "Picks made by the built-in strategy because the plugin could not answer well.", []string{"pool"}, nil)
	descRestarts     = prometheus.NewDesc("lb_strategy_restarts_total", "Restarts of the strategy plugin.", []string{"pool"}, nil)
	descByCode       = prometheus.NewDesc("lb_requests_total", "Requests answered, by status code and the pool and backend that answered (both \"\" for the proxy's own answers).", []string{"pool", "backend", "code"}, nil)
	descDuration     = prometheus.NewDesc("lb_request_duration_seconds", "Time from a request's arrival to the end of its answer.", []string{"pool", "backend"}, nil)
	descReloads      = prometheus.NewDesc("lb_config_reloads_total", "Configuration reloads, applied or refused.", []string{"result"}, nil)
	descEjectTotal   = prometheus.NewDesc("lb_backend_ejections_total", "Passive ejections of the backend since it joined.", []string{"pool", "backend"}, nil)
	descState        = prometheus.NewDesc("lb_backend_state", "1 for the backend's current state (up, down, ejected, drain).", []string{"pool", "backend", "state"}, nil)
	descPriority     = prometheus.NewDesc("lb_backend_priority", "The backend's rank for taking requests: it takes none while one of a lower priority can.", []string{"pool", "backend"}, nil)
	descLookups      = prometheus.NewDesc("lb_discovery_lookups_total", "DNS lookups of the pool's discovery, by result (ok, partial, error).", []string{"pool", "result"}, nil)
	descDiscovered   = prometheus.NewDesc("lb_discovery_backends", "Backends of the pool found in DNS (the last known set).", []string{"pool"}, nil)
	descResolvedAt   = prometheus.NewDesc("lb_discovery_resolved_timestamp_seconds", "When the pool's last DNS lookup that found backends ended, in Unix seconds.", []string{"pool"}, nil)
	descBodyBytes    = prometheus.NewDesc("lb_backend_body_bytes_total", "Body bytes passed to (in: of requests) and from (out: of answers) the backend.", []string{"pool", "backend", "direction"}, nil)
	descCertExpiry   = prometheus.NewDesc("lb_tls_certificate_expiry_seconds", "When a certificate a TLS listener serves expires, in Unix seconds.", []string{"listener", "names"}, nil)
	descHandshakes   = prometheus.NewDesc("lb_tls_handshakes_total", "TLS handshakes with clients, by result (ok, failed).", []string{"result"}, nil)
	descCheckTime    = prometheus.NewDesc("lb_backend_check_duration_seconds", "How long the backend's last active health check took.", []string{"pool", "backend"}, nil)
)

// backendStates are the values of lb_backend_state's state label.
var backendStates = []string{backend.StateUp, backend.StateDown, backend.StateEjected, backend.StateDrain}

// collectAnswers sends a's counts by code and its duration histogram for the
// backend url of pool ("" and "" for the proxy's own answers).
func collectAnswers(ch chan<- prometheus.Metric, a *backend.Answers, pool, url string) {
	a.Codes(func(code int, n uint64) {
		ch <- prometheus.MustNewConstMetric(descByCode, prometheus.CounterValue, float64(n), pool, url, strconv.Itoa(code))
	})
	count, sum, buckets := a.Histogram()
	ch <- prometheus.MustNewConstHistogram(descDuration, count, sum, buckets, pool, url)
}

// gauge sends a gauge of d.
func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// counter sends a counter of d.
func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// Describe sends the metrics' descriptions.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkers, descBusy, descQueue, descQueueCap, descAdmitted, descShed,
		descHealthy, descInflight, descBackendQueue, descRequests, descFailures, descStale, descWeight, descEjections, descGeneration, descStrategy, descFallbacks, descRestarts,
		descByCode, descDuration, descReloads, descEjectTotal, descState, descPriority, descLookups, descDiscovered, descResolvedAt,
		descBodyBytes, descCheckTime, descCertExpiry, descHandshakes} {
		ch <- d
	}
}

// Collect reads the status and sends it as metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st, snaps := c.s.read()
	p := st.Pool
	gauge(ch, descWorkers, float64(p.Workers))
	gauge(ch, descBusy, float64(p.Busy))
	gauge(ch, descQueue, float64(p.QueueLength))
	gauge(ch, descQueueCap, float64(p.QueueCapacity))
	counter(ch, descAdmitted, p.Admitted)
	counter(ch, descShed, p.ShedFull, "queue_full")
	counter(ch, descShed, p.ShedTimeout, "queue_timeout")
	for i, pl := range st.Pools {
		collectPool(ch, pl, snaps[i])
	}
	if c.s.Own != nil {
		collectAnswers(ch, c.s.Own, "", "")
	}
	counter(ch, descReloads, c.s.applied.Load(), "applied")
	counter(ch, descReloads, c.s.refused.Load(), "refused")
	gauge(ch, descGeneration, float64(st.Config.Generation))
	for _, l := range st.Listeners {
		for _, cert := range l.Certificates {
			gauge(ch, descCertExpiry, float64(cert.NotAfter.Unix()), l.Addr, strings.Join(cert.Names, ","))
		}
	}
	counter(ch, descHandshakes, c.s.handshakesOK.Load(), "ok")
	counter(ch, descHandshakes, c.s.handshakesFailed.Load(), "failed")
}

// collectPool sends the metrics of pool p: its strategy's, its discovery's and its
// backends', those that the status leaves out read from snap, the snapshot p shows.
func collectPool(ch chan<- prometheus.Metric, p Pool, snap *backend.Snapshot) {
	gauge(ch, descStrategy, 1, p.Name, p.Strategy.Name, p.Strategy.State)
	counter(ch, descFallbacks, p.Strategy.Fallbacks, p.Name)
	counter(ch, descRestarts, p.Strategy.Restarts, p.Name)
	if d := p.Discovery; d != nil {
		counter(ch, descLookups, d.Lookups.OK, p.Name, "ok")
		counter(ch, descLookups, d.Lookups.Partial, p.Name, "partial")
		counter(ch, descLookups, d.Lookups.Error, p.Name, "error")
		gauge(ch, descDiscovered, float64(d.Backends), p.Name)
		if !d.ResolvedAt.IsZero() {
			gauge(ch, descResolvedAt, float64(d.ResolvedAt.UnixNano())/1e9, p.Name)
		}
	}
	for i, e := range p.Backends {
		collectBackend(ch, e, snap.All[i])
	}
}

// collectBackend sends the metrics of the backend b, whose status entry is e.
func collectBackend(ch chan<- prometheus.Metric, e Backend, b *backend.Backend) {
	pool, url := e.Pool, e.URL
	healthy := 0.0
	if e.Healthy {
		healthy = 1
	}
	gauge(ch, descHealthy, healthy, pool, url)
	gauge(ch, descInflight, float64(e.Inflight), pool, url)
	gauge(ch, descBackendQueue, float64(e.QueueLength), pool, url)
	gauge(ch, descWeight, float64(e.Weight), pool, url)
	gauge(ch, descEjections, float64(e.Ejections), pool, url)
	gauge(ch, descPriority, float64(e.Priority), pool, url)
	counter(ch, descRequests, e.Requests, pool, url)
	counter(ch, descFailures, e.Failures, pool, url)
	counter(ch, descStale, e.StaleConns, pool, url)
	counter(ch, descBodyBytes, e.BytesIn, pool, url, "in")
	counter(ch, descBodyBytes, e.BytesOut, pool, url, "out")
	if e.Check != nil {
		gauge(ch, descCheckTime, e.Check.DurationMs/1e3, pool, url)
	}
	collectAnswers(ch, b.Answers, pool, url)
	counter(ch, descEjectTotal, b.EjectionsTotal(), pool, url)
	for _, s := range backendStates {
		v := 0.0
		if s == e.State {
			v = 1
		}
		gauge(ch, descState, v, pool, url, s)
	}
}
