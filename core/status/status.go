// Package status reports the load balancer's state: the status JSON of DESIGN section 9,
// Prometheus metrics, and the admin HTTP server that serves both.
package status

import (
	"encoding/json"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// started is when this process started, near enough.
var started = time.Now().UTC()

// Status is the status JSON. Its fields are a contract: add, never rename.
type Status struct {
	Strategy strategy.Status `json:"strategy"`
	Pool     pool.Stats      `json:"pool"`
	Backends []Backend       `json:"backends"`
	Config   Config          `json:"config"`
	// Listeners are the client listeners (DESIGN section 4.2), the plaintext one of
	// load_balancer_port first; [] until the first is set (Source.SetListeners).
	Listeners []Listener `json:"listeners"`
	Process   Process    `json:"process"`
	Totals    Totals     `json:"totals"`
	// Discovery is present when servers.discovery is configured.
	Discovery *Discovery `json:"discovery,omitempty"`
	// Pools lists every pool (DESIGN section 4.1), default first, even when it is
	// the only one. Strategy, Backends and Discovery above are those of default.
	Pools []Pool `json:"pools"`
}

// Pool describes one pool of backends (DESIGN section 4.1) as the top level of the
// status describes the default pool. Not to be confused with Status.Pool, the
// adaptive worker pool that every request goes through.
type Pool struct {
	Name     string          `json:"name"`
	Strategy strategy.Status `json:"strategy"`
	Backends []Backend       `json:"backends"`
	// Discovery is present when the pool's discovery is configured.
	Discovery *Discovery `json:"discovery,omitempty"`
}

// Discovery describes the backends' DNS discovery.
type Discovery struct {
	// LastError is what went wrong in the last lookup, "" when nothing did: why it
	// failed (the last known backends stay), or what it left out (targets that did
	// not resolve, DNS servers that failed before another answered).
	LastError  string    `json:"last_error"`
	ResolvedAt time.Time `json:"resolved_at"` // of the last lookup that found backends
	// Record is the name looked up: the SRV record, or the A/AAAA record.
	Record string `json:"record"`
	// Resolver is the DNS server that answered the last lookup, or the one asked
	// last when none did.
	Resolver string `json:"resolver"`
	// Backends is the number of backends found (the last known set).
	Backends int `json:"backends"`
	// Lookups counts the lookups by result.
	Lookups Lookups `json:"lookups"`
}

// Lookups counts DNS lookups by result.
type Lookups struct {
	OK uint64 `json:"ok"` // found backends; nothing went wrong
	// Partial found backends, but something went wrong (Discovery.LastError): a
	// target left out, or a DNS server that failed before another answered.
	Partial uint64 `json:"partial"`
	Error   uint64 `json:"error"` // failed: the last known backends stayed
}

// Listener describes one client listener: where it accepts and what serves it.
// A plaintext listener leaves the TLS fields empty, and they do not show.
type Listener struct {
	Addr string `json:"addr"` // host:port it accepts on, with the port chosen when config said 0
	// Front is the data plane that serves it: "eventloop" or "nethttp".
	Front string `json:"front"`
	TLS   bool   `json:"tls,omitempty"`
	// Protocols are those offered by ALPN, in order of preference ("h2", "http/1.1").
	Protocols []string `json:"protocols,omitempty"`
	// Certificates are those the listener may serve, in the order of its config.
	Certificates []Certificate `json:"certificates,omitempty"`
	// Pending says why a listener with tls.acme has no certificate yet for some of
	// its domains, one reason per domain joined by "; ": "obtaining a certificate
	// for lb.example.com from <directory>: <the last attempt's error>" (without
	// the error before an attempt failed). Handshakes for such a domain fail with
	// the TLS alert internal_error meanwhile. Empty once every domain has one.
	Pending string `json:"pending,omitempty"`
}

// Certificate describes a TLS certificate a listener serves.
type Certificate struct {
	Names    []string  `json:"names"`     // the DNS names SNI chooses it for
	Issuer   string    `json:"issuer"`    // who issued it
	NotAfter time.Time `json:"not_after"` // when it expires
	// RenewalError says why the last attempt to renew it (tls.acme) failed:
	// "renewing the certificate for lb.example.com from <directory>: <the error>".
	// It serves on meanwhile, until NotAfter. Empty once a renewal succeeds.
	RenewalError string `json:"renewal_error,omitempty"`
}

// Process describes the core's own process: the PID that kill -HUP takes.
type Process struct {
	PID       int       `json:"pid"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	// UptimeSeconds is the time since StartedAt, in whole seconds.
	UptimeSeconds int64 `json:"uptime_seconds"`
}

// Totals sums the answers since start: those of the backends of every pool (a
// backend that leaves takes its counts with it) and the proxy's own.
type Totals struct {
	Answers backend.Classes `json:"answers"` // all of them, by class
	// OwnAnswers are those the proxy made with no backend: shed, no backend,
	// refused requests.
	OwnAnswers backend.Classes `json:"own_answers"`
	BytesIn    uint64          `json:"bytes_in"`  // body bytes from clients
	BytesOut   uint64          `json:"bytes_out"` // body bytes to clients
}

// Check is the outcome of a backend's last active health check.
type Check struct {
	At         time.Time `json:"at"`          // when it started
	DurationMs float64   `json:"duration_ms"` // until its answer, error or timeout
	OK         bool      `json:"ok"`
}

// Backend describes one backend.
type Backend struct {
	URL string `json:"url"`
	// Pool names the backend's pool: a URL in two pools is two backends, each with
	// its own counts and state.
	Pool        string  `json:"pool"`
	Healthy     bool    `json:"healthy"`
	Weight      int     `json:"weight"`
	Inflight    int     `json:"inflight"`
	QueueLength int     `json:"queue_length"` // the backend's own report, -1 when unknown
	Requests    uint64  `json:"requests"`
	Failures    uint64  `json:"failures"`
	LatencyMs   float64 `json:"latency_ms"` // moving average
	ErrorRate   float64 `json:"error_rate"` // moving average, 0..1
	// StaleConns counts pooled connections discarded before reuse: closed by the
	// backend while idle, or holding bytes it sent unasked.
	StaleConns uint64 `json:"stale_conns"`
	// Source says where the backend comes from: "config" or "dns".
	Source string `json:"source"`
	// Priority ranks the backend for taking requests: it takes none while one of a
	// lower priority can (0 but for an SRV record's backups; see
	// config.Backend.Priority).
	Priority int `json:"priority"`
	// Health says why the backend is or is not a candidate: state (up, down,
	// ejected), reason, since, last_error, ejected_until, ejections.
	backend.Health
	// Answers counts the answers through the backend since it joined, by class.
	Answers  backend.Classes `json:"answers"`
	BytesIn  uint64          `json:"bytes_in"`  // request body bytes sent to it
	BytesOut uint64          `json:"bytes_out"` // answer body bytes from it
	// Check is its last active health check; absent before the first.
	Check *Check `json:"check,omitempty"`
}

// Config describes the configuration in force.
type Config struct {
	Path       string    `json:"path"`
	Generation int       `json:"generation"` // configurations applied so far
	LoadedAt   time.Time `json:"loaded_at"`
	LastError  string    `json:"last_error"` // the last refused edit (of the file or of a strategy script), "" once a good one applies
}

// PoolSource is one pool as the status reads it.
type PoolSource struct {
	Name     string
	Backends *backend.Set // nil: none
	// Strategy reports the pool's strategy's state (nil: a zero Status).
	Strategy func() strategy.Status
	// Discovery reports the pool's DNS discovery (nil, or returning nil: no
	// discovery). The status copies what it returns.
	Discovery func() *Discovery
}

// Source gathers the status from the running parts.
//
// Source is safe for use by multiple goroutines.
type Source struct {
	Pool *pool.Pool
	// Backends, Strategy and the discovery of SetDiscovery describe the default
	// pool: the top level of the status, and the first of its pools.
	Backends *backend.Set
	// Strategy reports the default pool's strategy's state.
	Strategy func() strategy.Status
	// Pools lists the pools, the default one first (nil: only default, from
	// Backends, Strategy and SetDiscovery). It is called once per status and per
	// scrape, so it may return a list that changes with the configuration. In the
	// entry named backend.DefaultPool, a nil Backends or Strategy is taken from the
	// fields above, and so is the discovery of SetDiscovery when its own reports
	// none; a list without that entry gets it from them.
	Pools func() []PoolSource

	// Own counts the answers the proxy made without a backend (nil: none).
	Own *backend.Answers
	// Control changes backends at run time (nil: POST /backends/state and
	// /backends/weight answer 404).
	Control Controller
	// Version is the core's version, shown under "process".
	Version string

	history History // the samples of SampleHistory

	mu        sync.Mutex
	config    Config
	scriptErr string     // the last refused version of the strategy script
	discovery *Discovery // nil when there is none
	listeners []Listener // never changed in place: SetListeners replaces it
	pending   *strategy.Pending
	applied   atomic.Uint64
	refused   atomic.Uint64
	// TLS handshakes with clients, by result (CountHandshake).
	handshakesOK, handshakesFailed atomic.Uint64
}

// CountReload counts a configuration reload, applied or refused.
func (s *Source) CountReload(applied bool) {
	if applied {
		s.applied.Add(1)
	} else {
		s.refused.Add(1)
	}
}

// SetConfig records the configuration state shown under "config".
func (s *Source) SetConfig(c Config) {
	s.mu.Lock()
	s.config = c
	s.mu.Unlock()
}

// SetLastError records a refused configuration edit ("" clears it).
func (s *Source) SetLastError(msg string) {
	s.mu.Lock()
	s.config.LastError = msg
	s.mu.Unlock()
}

// SetDiscovery records the state of the default pool's DNS discovery (nil: none
// configured).
func (s *Source) SetDiscovery(d *Discovery) {
	s.mu.Lock()
	s.discovery = d
	s.mu.Unlock()
}

// CountHandshake counts a TLS handshake with a client, completed or failed.
func (s *Source) CountHandshake(ok bool) {
	if ok {
		s.handshakesOK.Add(1)
	} else {
		s.handshakesFailed.Add(1)
	}
}

// SetListeners records the client listeners shown under "listeners", replacing
// those recorded before: call it when a listener starts or is replaced. The order is
// the status's, the plaintext listener of load_balancer_port first. SetListeners
// copies ls but keeps its elements' slices (Protocols, Certificates): the caller must
// not change them afterwards.
func (s *Source) SetListeners(ls []Listener) {
	ls = slices.Clone(ls)
	s.mu.Lock()
	s.listeners = ls
	s.mu.Unlock()
}

// SetPendingStrategy records the strategy that an edit is starting, shown under
// strategy.pending of the default pool when its strategy reports none (nil: none).
func (s *Source) SetPendingStrategy(p *strategy.Pending) {
	s.mu.Lock()
	s.pending = p
	s.mu.Unlock()
}

// SetScriptError records a refused version of the strategy script ("" clears it).
// It shows as last_error while no refused edit of the file does.
func (s *Source) SetScriptError(msg string) {
	s.mu.Lock()
	s.scriptErr = msg
	s.mu.Unlock()
}

// ConfigState returns what SetConfig recorded, with the last error.
func (s *Source) ConfigState() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.config
	if c.LastError == "" {
		c.LastError = s.scriptErr
	}
	return c
}

// Status returns the current status.
func (s *Source) Status() Status {
	st, _ := s.read()
	return st
}

// read returns the current status and, for each of its pools, the snapshot of the
// backends it shows, in the same order, for what the status leaves out (metrics).
func (s *Source) read() (Status, []*backend.Snapshot) {
	st := Status{
		Pool:   s.Pool.Stats(),
		Config: s.ConfigState(),
		Process: Process{PID: os.Getpid(), Version: s.Version, StartedAt: started,
			UptimeSeconds: int64(time.Since(started).Seconds())},
	}
	s.mu.Lock()
	st.Listeners = append([]Listener{}, s.listeners...) // [], not null, before the first is set
	var disc *Discovery
	if s.discovery != nil {
		d := *s.discovery
		disc = &d
	}
	var pending *strategy.Pending
	if s.pending != nil {
		p := *s.pending
		pending = &p
	}
	s.mu.Unlock()

	srcs := s.poolSources(disc)
	st.Pools = make([]Pool, 0, len(srcs))
	snaps := make([]*backend.Snapshot, 0, len(srcs))
	for _, src := range srcs {
		p, snap := readPool(src, &st.Totals)
		st.Pools = append(st.Pools, p)
		snaps = append(snaps, snap)
	}
	def := &st.Pools[0]
	if def.Strategy.Pending == nil {
		def.Strategy.Pending = pending
	}
	st.Strategy, st.Backends = def.Strategy, slices.Clone(def.Backends)
	if def.Discovery != nil {
		d := *def.Discovery
		st.Discovery = &d
	}
	if s.Own != nil {
		st.Totals.OwnAnswers = s.Own.Classes()
		st.Totals.Answers.Add(st.Totals.OwnAnswers)
		in, out := s.Own.Bytes()
		st.Totals.BytesIn, st.Totals.BytesOut = st.Totals.BytesIn+in, st.Totals.BytesOut+out
	}
	return st, snaps
}

// poolSources lists the pools, the default first, its missing parts taken from
// Backends, Strategy and disc, the discovery of SetDiscovery.
func (s *Source) poolSources(disc *Discovery) []PoolSource {
	def := PoolSource{Name: backend.DefaultPool, Backends: s.Backends, Strategy: s.Strategy}
	var ps []PoolSource
	if s.Pools != nil {
		ps = s.Pools()
	}
	out := make([]PoolSource, 1, len(ps)+1)
	for _, p := range ps {
		if p.Name != backend.DefaultPool {
			out = append(out, p)
			continue
		}
		if p.Backends != nil {
			def.Backends = p.Backends
		}
		if p.Strategy != nil {
			def.Strategy = p.Strategy
		}
		def.Discovery = p.Discovery
	}
	own := def.Discovery
	def.Discovery = func() *Discovery {
		if own != nil {
			if d := own(); d != nil {
				return d
			}
		}
		return disc
	}
	out[0] = def
	return out
}

// readPool returns the status of the pool src and the snapshot of its backends it
// shows, and adds the backends' traffic to t.
func readPool(src PoolSource, t *Totals) (Pool, *backend.Snapshot) {
	p := Pool{Name: src.Name}
	if src.Strategy != nil {
		p.Strategy = src.Strategy()
	}
	if src.Discovery != nil {
		if d := src.Discovery(); d != nil {
			c := *d
			p.Discovery = &c
		}
	}
	snap := &backend.Snapshot{}
	if src.Backends != nil {
		snap = src.Backends.Snapshot()
	}
	p.Backends = make([]Backend, 0, len(snap.All))
	for _, b := range snap.All {
		p.Backends = append(p.Backends, Backend{
			URL:         b.URL,
			Pool:        src.Name,
			Healthy:     b.Candidate(),
			Weight:      b.Weight(),
			Inflight:    b.Inflight(),
			QueueLength: b.QueueLength(),
			Requests:    b.Requests(),
			Failures:    b.Failures(),
			LatencyMs:   float64(b.Latency().Microseconds()) / 1000,
			ErrorRate:   b.ErrorRate(),
			StaleConns:  b.StaleConns(),
			Source:      b.Source(),
			Priority:    b.Priority(),
			Health:      b.Health(),
		})
		addTraffic(&p.Backends[len(p.Backends)-1], t, b)
	}
	return p, snap
}

// addTraffic fills e's answers, bytes and last check from b, and adds them to t.
func addTraffic(e *Backend, t *Totals, b *backend.Backend) {
	e.Answers = b.Answers.Classes()
	e.BytesIn, e.BytesOut = b.Answers.Bytes()
	if c, ok := b.LastCheck(); ok {
		e.Check = &Check{At: c.At, DurationMs: float64(c.Took.Microseconds()) / 1000, OK: c.OK}
	}
	t.Answers.Add(e.Answers)
	t.BytesIn, t.BytesOut = t.BytesIn+e.BytesIn, t.BytesOut+e.BytesOut
}

// JSON returns the status as indented JSON.
func (s *Source) JSON() []byte {
	out, err := json.MarshalIndent(s.Status(), "", "  ")
	if err != nil { // unreachable: Status holds only plain values
		return []byte(`{"error":"status: ` + err.Error() + `"}`)
	}
	return append(out, '\n')
}
