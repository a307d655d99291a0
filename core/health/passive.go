package health

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
)

// MaxEjection caps how long repeated ejections grow (unless ejection_time is longer).
const MaxEjection = 5 * time.Minute

// PassiveConfig is the passive check's settings.
type PassiveConfig struct {
	ConsecutiveFailures int           // failed requests in a row that eject; 0 turns ejection off
	EjectionTime        time.Duration // the first ejection's length, doubled on each repeat
}

// Passive ejects backends that fail real traffic: after ConsecutiveFailures failed
// requests in a row (connection errors or 5xx) a backend leaves the candidates for
// EjectionTime, doubled for each ejection in a row, never more than half the pool
// at once.
//
// Passive is safe for use by multiple goroutines; Observe, on every request's path,
// takes no lock.
type Passive struct {
	set *backend.Set
	log hclog.Logger
	cfg atomic.Pointer[PassiveConfig]
	mu  sync.Mutex // serializes ejections, so the half-pool cap holds
	// after, for tests, replaces time.AfterFunc.
	after func(time.Duration, func())
}

// NewPassive returns passive checks over set's backends.
func NewPassive(cfg PassiveConfig, set *backend.Set, log hclog.Logger) *Passive {
	p := &Passive{set: set, log: log, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
	p.SetConfig(cfg)
	return p
}

// SetConfig changes the settings from the next failure on.
func (p *Passive) SetConfig(cfg PassiveConfig) { p.cfg.Store(&cfg) }

// Observe records one request's result on b.
func (p *Passive) Observe(b *backend.Backend, failed bool, errMsg string) {
	if !failed {
		b.AddSuccess()
		return
	}
	cfg := p.cfg.Load()
	if n := b.AddFailure(errMsg); cfg.ConsecutiveFailures > 0 && n == cfg.ConsecutiveFailures {
		p.eject(b, cfg)
	}
}

// Eject takes b out as Observe would on its last failure in a row: for failures that
// another process counted (the data-plane processes share the count in memory).
func (p *Passive) Eject(b *backend.Backend) {
	if cfg := p.cfg.Load(); cfg.ConsecutiveFailures > 0 {
		p.eject(b, cfg)
	}
}

// eject takes b out, unless half the pool is out already.
func (p *Passive) eject(b *backend.Backend, cfg *PassiveConfig) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.Ejected() {
		return
	}
	all := p.set.Snapshot().All
	out := 0
	for _, x := range all {
		if x.Ejected() {
			out++
		}
	}
	if out+1 > len(all)/2 {
		p.log.Warn("backend not ejected: half the pool is out already", "backend", b.URL,
			"consecutive_failures", cfg.ConsecutiveFailures, "ejected", out, "backends", len(all))
		return
	}
	limit := max(MaxEjection, cfg.EjectionTime)
	reason := fmt.Sprintf("passive: %d requests in a row failed", cfg.ConsecutiveFailures)
	n, d, h, changed := b.Eject(reason, 10*limit, func(n int) time.Duration {
		d := cfg.EjectionTime
		for i := 1; i < n && d < limit; i++ {
			d *= 2
		}
		return min(d, limit)
	})
	if changed {
		p.set.Rebuild()
		LogChange(p.log, b, h, "for", d, "ejections_in_a_row", n, "last_error", h.LastError)
	}
	p.after(d, func() {
		if h, changed := b.Return("passive: ejection time over"); changed {
			p.set.Rebuild()
			LogChange(p.log, b, h)
		}
	})
}

// LogChange writes the log line of a backend's change of state, with the state and
// reason that status shows, then args.
func LogChange(log hclog.Logger, b *backend.Backend, h backend.Health, args ...any) {
	args = append([]any{"backend", b.URL, "state", h.State, "reason", h.Reason}, args...)
	switch h.State {
	case backend.StateUp:
		log.Info("backend up", args...)
	case backend.StateDown:
		log.Warn("backend down", args...)
	default:
		log.Warn("backend "+h.State, args...)
	}
}
