// Package health decides which backends take requests: active checks probe each
// backend's health path, passive checks eject backends that fail real traffic.
package health

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
)

// Config is the active check's settings.
type Config struct {
	Path      string        // probed with GET
	GRPC      bool          // probe with grpc.health.v1's Check instead
	Interval  time.Duration // between two probes of a backend
	Timeout   time.Duration // of one probe
	Healthy   int           // successes in a row that bring a backend back
	Unhealthy int           // failures in a row that take it out
	// TLS verifies https backends as the pool's requests do (ca,
	// tls_skip_verify); nil: the system's roots.
	TLS *tls.Config
	// TLSKey is the same for two TLS settings that verify the same way (see
	// config.BackendTLS): connections made under another are not used again.
	TLSKey string
}

// StatusSetter receives the verdicts of active checks. backend.Set's owner implements
// it by marking the backend and publishing a new snapshot.
type StatusSetter interface {
	SetActive(b *backend.Backend, up bool, reason, lastErr string)
}

// Checker probes every backend on its own goroutine, so a backend that hangs delays
// only its own checks.
//
// Checker is safe for use by multiple goroutines.
type Checker struct {
	setter StatusSetter
	log    hclog.Logger
	client *http.Client

	mu      sync.Mutex
	cfg     Config
	probers map[*backend.Backend]context.CancelFunc
	ctx     context.Context
}

// NewChecker returns a checker that reports to setter. Run starts it.
func NewChecker(cfg Config, setter StatusSetter, log hclog.Logger) *Checker {
	c := &Checker{cfg: cfg, setter: setter, log: log, probers: map[*backend.Backend]context.CancelFunc{}}
	tr := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute, DisableCompression: true,
		DialTLSContext: c.dialTLS}
	d := &net.Dialer{}
	tr.RegisterProtocol("h2c", backend.NewH2C(d.DialContext, time.Minute))
	c.client = &http.Client{
		Transport: tr,
		// A redirect is an answer, not something to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// dialTLS connects to an https backend with the TLS settings in force.
func (c *Checker) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	base := c.cfg.TLS
	c.mu.Unlock()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	d := tls.Dialer{Config: cfg}
	return d.DialContext(ctx, network, addr)
}

// Start checks backends until ctx is done; Watch changes which.
func (c *Checker) Start(ctx context.Context, backends []*backend.Backend) {
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	c.Watch(backends)
}

// Watch makes the checker probe exactly backends: new ones get a prober, missing
// ones lose theirs.
func (c *Checker) Watch(backends []*backend.Backend) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil { // not started: Start watches
		return
	}
	keep := make(map[*backend.Backend]bool, len(backends))
	for _, b := range backends {
		keep[b] = true
		if c.probers[b] == nil {
			ctx, cancel := context.WithCancel(c.ctx)
			c.probers[b] = cancel
			go c.probeLoop(ctx, b)
		}
	}
	for b, cancel := range c.probers {
		if !keep[b] {
			cancel()
			delete(c.probers, b)
		}
	}
}

// SetConfig changes the checks' settings; probers pick them up at their next probe.
// Connections kept under other TLS settings are not used again.
func (c *Checker) SetConfig(cfg Config) {
	c.mu.Lock()
	changed := c.cfg.TLSKey != cfg.TLSKey
	c.cfg = cfg
	c.mu.Unlock()
	if changed {
		c.client.CloseIdleConnections()
	}
}

func (c *Checker) config() Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// probeLoop probes b every interval until ctx is done.
func (c *Checker) probeLoop(ctx context.Context, b *backend.Backend) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("health checker panicked", "backend", b.URL, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	var th Threshold
	th.Reset(b.Up())
	var g grpcProber
	defer g.close()
	for {
		cfg := c.config()
		start := time.Now()
		var err error
		if cfg.GRPC {
			err = g.probe(ctx, b, cfg)
		} else {
			g.close()
			err = c.probe(ctx, b, cfg)
		}
		if ctx.Err() != nil {
			return
		}
		b.SetLastCheck(backend.Check{At: start.UTC(), Took: time.Since(start), OK: err == nil})
		if changed := th.Observe(err == nil, cfg.Healthy, cfg.Unhealthy); changed {
			if th.Up() {
				c.setter.SetActive(b, true, fmt.Sprintf("active: %d checks in a row passed", cfg.Healthy), "")
			} else {
				c.setter.SetActive(b, false, fmt.Sprintf("active: %d checks in a row failed", cfg.Unhealthy), err.Error())
			}
		} else if err != nil {
			c.setter.SetActive(b, th.Up(), "", err.Error())
		}
		t := time.NewTimer(cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// probe GETs b's health path; only a 2xx answer within the timeout passes. A JSON
// answer with queue_length feeds the backend's reported queue.
func (c *Checker) probe(ctx context.Context, b *backend.Backend, cfg Config) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.Key+cfg.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "switchyard-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("checking health: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("reading health answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health check answered %d", resp.StatusCode)
	}
	var load struct {
		QueueLength *int `json:"queue_length"`
	}
	if json.Unmarshal(body, &load) == nil && load.QueueLength != nil {
		b.SetQueueLength(*load.QueueLength)
	}
	return nil
}

// Threshold is the up/down state machine of active checks: a backend goes down after
// unhealthy failures in a row and comes back after healthy successes in a row.
type Threshold struct {
	down      bool
	successes int
	failures  int
}

// Reset sets the state without history.
func (t *Threshold) Reset(up bool) { *t = Threshold{down: !up} }

// Up reports the current state.
func (t *Threshold) Up() bool { return !t.down }

// Observe records one check and reports whether the state changed.
func (t *Threshold) Observe(ok bool, healthy, unhealthy int) bool {
	if ok {
		t.successes, t.failures = t.successes+1, 0
		if t.down && t.successes >= healthy {
			t.down = false
			return true
		}
		return false
	}
	t.successes, t.failures = 0, t.failures+1
	if !t.down && t.failures >= unhealthy {
		t.down = true
		return true
	}
	return false
}
