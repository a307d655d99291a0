package status

import (
	_ "embed"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// dashboard is the page at the admin address's root: self-contained, it reads the
// status history once, then the status JSON every second.
//
//go:embed dashboard.html
var dashboard []byte

// AdminHandler serves the admin address: / (the dashboard), /metrics (Prometheus),
// /status and /queue/status (the status JSON), /status/history (the last minutes'
// samples, see SampleHistory), POST /backends/state (drain and ready), POST
// /backends/weight (a weight set at run time), and /debug/pprof/ (Go profiles).
func AdminHandler(s *Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &collector{s: s})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	serveStatus := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(s.JSON())
	}
	for _, p := range []string{"/status", "/queue/status"} {
		mux.HandleFunc("GET "+p, serveStatus)
		mux.HandleFunc("POST "+p, serveStatus)
	}
	mux.HandleFunc("GET /status/history", serveHistory(s))
	mux.HandleFunc("POST /backends/state", serveBackendState(s))
	mux.HandleFunc("POST /backends/weight", serveBackendWeight(s))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(dashboard)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
