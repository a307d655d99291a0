package status

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// HistorySize is how many samples a History keeps unless told otherwise: five
// minutes, one a second.
const HistorySize = 300

// HistoryEvery is the time between two samples of SampleHistory.
const HistoryEvery = time.Second

// Sample is what the dashboard charts, at one moment.
type Sample struct {
	Time time.Time `json:"time"`
	// RequestsPerSecond is the rate of requests sent to the backends of every pool,
	// all together, since the sample before.
	RequestsPerSecond float64 `json:"requests_per_second"`
	PoolBusy          int     `json:"pool_busy"`
	PoolWorkers       int     `json:"pool_workers"`
	PoolQueueLength   int     `json:"pool_queue_length"`
	// Backends are the backends of every pool, pool by pool in the status's order.
	Backends []BackendSample `json:"backends"`
}

// BackendSample is what the dashboard charts of one backend, at one moment.
type BackendSample struct {
	URL  string `json:"url"`
	Pool string `json:"pool"` // a URL in two pools is two backends
	// RequestsPerSecond is the rate of requests sent to the backend since the sample
	// before.
	RequestsPerSecond float64 `json:"requests_per_second"`
	ErrorRate         float64 `json:"error_rate"` // moving average, 0..1
	LatencyMs         float64 `json:"latency_ms"` // moving average
	Inflight          int     `json:"inflight"`
	QueueLength       int     `json:"queue_length"` // the backend's own report, -1 when unknown
}

// History keeps the latest samples in a ring of fixed size, so that the dashboard
// opens with the last minutes drawn rather than empty charts.
//
// History is safe for use by multiple goroutines. Its zero value keeps HistorySize
// samples.
type History struct {
	mu   sync.Mutex // guards the fields below
	size int        // most samples kept; 0 means HistorySize
	ring []Sample   // grows to size, then wraps
	next int        // where the next sample goes once ring is full
}

// NewHistory returns a history that keeps the latest size samples.
func NewHistory(size int) *History { return &History{size: size} }

// Size is the most samples h keeps.
func (h *History) Size() int {
	if h.size <= 0 {
		return HistorySize
	}
	return h.size
}

// Add keeps s, dropping the oldest sample when the history is full. The history
// keeps s.Backends: the caller must not change it afterwards.
func (h *History) Add(s Sample) {
	size := h.Size()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ring) < size {
		if h.ring == nil {
			h.ring = make([]Sample, 0, size)
		}
		h.ring = append(h.ring, s)
		return
	}
	h.ring[h.next] = s
	h.next = (h.next + 1) % size
}

// Samples returns the samples kept, oldest first.
func (h *History) Samples() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Sample, 0, len(h.ring))
	out = append(out, h.ring[h.next:]...)
	return append(out, h.ring[:h.next]...)
}

// sampler turns successive statuses into samples: a rate needs the count before.
type sampler struct {
	at       time.Time
	requests map[backendID]uint64 // at the time at
}

// backendID tells a backend from the others of every pool.
type backendID struct{ pool, url string }

// take returns the sample of st, read at now. It reports false for the first
// status it sees, which has no rate yet.
func (p *sampler) take(st Status, now time.Time) (Sample, bool) {
	s := Sample{Time: now.UTC(), PoolBusy: st.Pool.Busy, PoolWorkers: st.Pool.Workers, PoolQueueLength: st.Pool.QueueLength,
		Backends: []BackendSample{}}
	dt := now.Sub(p.at).Seconds()
	requests := make(map[backendID]uint64, len(p.requests))
	for _, pl := range st.Pools {
		for _, b := range pl.Backends {
			id := backendID{pl.Name, b.URL}
			requests[id] = b.Requests
			bs := BackendSample{URL: b.URL, Pool: pl.Name, ErrorRate: b.ErrorRate, LatencyMs: b.LatencyMs, Inflight: b.Inflight, QueueLength: b.QueueLength}
			if before, ok := p.requests[id]; ok && dt > 0 && b.Requests >= before {
				bs.RequestsPerSecond = round2(float64(b.Requests-before) / dt)
			}
			s.RequestsPerSecond += bs.RequestsPerSecond
			s.Backends = append(s.Backends, bs)
		}
	}
	s.RequestsPerSecond = round2(s.RequestsPerSecond)
	first := p.requests == nil
	p.at, p.requests = now, requests
	return s, !first
}

// round2 rounds x to two decimals, which is all a chart shows.
func round2(x float64) float64 { return math.Round(x*100) / 100 }

// SampleHistory samples the status into the history every HistoryEvery until ctx is
// done, for GET /status/history. A panic is logged to log and ends the sampling
// only.
func (s *Source) SampleHistory(ctx context.Context, log hclog.Logger) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("status history sampling panicked", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	var p sampler
	p.take(s.Status(), time.Now())
	t := time.NewTicker(HistoryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if sample, ok := p.take(s.Status(), now); ok {
				s.history.Add(sample)
			}
		}
	}
}

// historyJSON is the body of GET /status/history.
type historyJSON struct {
	EverySeconds float64  `json:"every_seconds"` // between two samples
	Size         int      `json:"size"`          // most samples kept
	Samples      []Sample `json:"samples"`       // oldest first
}

// serveHistory answers GET /status/history: the samples of SampleHistory.
func serveHistory(s *Source) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(historyJSON{EverySeconds: HistoryEvery.Seconds(), Size: s.history.Size(), Samples: s.history.Samples()})
	}
}
