// Server is the switchyard test backend (DESIGN section 8): a small HTTP server on
// 127.0.0.1:PORT whose /requests endpoint queues work for a fixed set of workers, with
// flags for the simulated work time and for injected faults, plus the endpoints a reverse
// proxy's tests need (streaming, large bodies, header echo, WebSocket).
//
// Usage:
//
//	go run server/server.go [-work D] [-workers N] [-queue N] [-fail-rate F]
//	    [-slow-rate F -slow D] [-health-fail] [-seed N] PORT
//
// The first line on stdout is exactly "listening on 127.0.0.1:PORT", naming the real
// address (PORT 0 picks a free port); the structured log goes to stderr.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
)

// defaultQueue is the queue capacity when -queue is not given and config.json does not
// set servers.queue_capacity.
const defaultQueue = 1000

// serverConfig is everything a backend needs; main fills it from flags, tests by hand.
type serverConfig struct {
	Addr       string        // the address named in answers, "127.0.0.1:8081"
	Work       time.Duration // simulated work per /requests request (default 10ms; 0 answers at once)
	Workers    int           // workers serving the queue (default 4)
	Queue      int           // requests that may wait for a worker (default config.json or 1000)
	FailRate   float64       // share of /requests answered 500, 0..1 (default 0)
	SlowRate   float64       // share of /requests that also take Slow, 0..1 (default 0)
	Slow       time.Duration // extra work of a slow request (default 1s)
	HealthFail bool          // /health answers 503 (default false)
	Seed       uint64        // seed of the fault dice; worker i uses PCG(Seed, i)
}

// job is one /requests request waiting for, or held by, a worker.
type job struct {
	ctx  context.Context // the request's context: a gone client frees its worker
	done chan outcome    // buffered 1; the worker sends exactly once
}

// outcome is what a worker did with a job.
type outcome struct {
	work time.Duration // simulated work, including the slow extra
	fail bool          // injected failure: answer 500
	err  error         // the client went away before the work ended
}

// backend is the test server: a bounded queue, its workers, and the HTTP handlers.
// It is safe for concurrent use; Close stops the workers.
type backend struct {
	cfg    serverConfig
	mux    *http.ServeMux
	queue  chan *job
	stop   context.CancelFunc
	closed <-chan struct{} // closed by Close; handlers waiting on a job give up
	wg     sync.WaitGroup

	busy      atomic.Int64 // jobs a worker is working on
	processed atomic.Int64 // jobs whose work ended, failed ones included
	failed    atomic.Int64 // jobs answered with an injected 500
	rejected  atomic.Int64 // requests refused with 503 because the queue was full
}

// newServer builds a backend from cfg and starts its workers.
func newServer(cfg serverConfig) *backend {
	ctx, cancel := context.WithCancel(context.Background())
	b := &backend{cfg: cfg, queue: make(chan *job, cfg.Queue), stop: cancel, closed: ctx.Done()}
	for i := range cfg.Workers {
		b.wg.Go(func() { b.work(ctx, rand.New(rand.NewPCG(cfg.Seed, uint64(i)))) })
	}
	b.mux = http.NewServeMux()
	b.mux.HandleFunc("GET /requests", b.handleRequests)
	b.mux.HandleFunc("POST /requests", b.handleRequests)
	b.mux.HandleFunc("GET /queue/status", b.handleStatus)
	b.mux.HandleFunc("POST /queue/status", b.handleStatus)
	b.mux.HandleFunc("GET /health", b.handleHealth)
	b.mux.HandleFunc("GET /stream", handleStream)
	b.mux.HandleFunc("POST /upload", handleUpload)
	b.mux.HandleFunc("PUT /upload", handleUpload)
	b.mux.HandleFunc("GET /download", handleDownload)
	b.mux.HandleFunc("/echo-headers", b.handleEchoHeaders)
	b.mux.HandleFunc("GET /ws", handleWebSocket)
	b.mux.HandleFunc("/", b.handleOther)
	return b
}

// ServeHTTP routes a request to its endpoint.
func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.mux.ServeHTTP(w, r) }

// Close stops the workers and waits for them; requests still queued get 503.
func (b *backend) Close() {
	b.stop()
	b.wg.Wait()
}

// work serves queued jobs until ctx ends. rnd is this worker's own, so no lock is needed.
func (b *backend) work(ctx context.Context, rnd *rand.Rand) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-b.queue:
			j.done <- b.serve(j.ctx, rnd)
		}
	}
}

// serve does one job's simulated work. Both dice are always rolled so that a fixed seed
// gives the same sequence whatever the rates.
func (b *backend) serve(ctx context.Context, rnd *rand.Rand) outcome {
	slow, fail := rnd.Float64() < b.cfg.SlowRate, rnd.Float64() < b.cfg.FailRate
	if err := ctx.Err(); err != nil {
		return outcome{err: err} // the client left while the job waited
	}
	o := outcome{work: b.cfg.Work, fail: fail}
	if slow {
		o.work += b.cfg.Slow
	}
	b.busy.Add(1)
	defer b.busy.Add(-1)
	if o.err = sleep(ctx, o.work); o.err != nil {
		return o
	}
	b.processed.Add(1)
	if fail {
		b.failed.Add(1)
	}
	return o
}

// sleep waits for d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requestAnswer is the JSON body of a served /requests request.
type requestAnswer struct {
	Server      string  `json:"server"`
	QueueLength int     `json:"queue_length"`
	Processed   int64   `json:"processed"`
	WorkMS      float64 `json:"work_ms"`
}

// handleRequests queues the request for a worker, or answers 503 at once when the queue is
// full, and answers when the worker is done.
func (b *backend) handleRequests(w http.ResponseWriter, r *http.Request) {
	j := &job{ctx: r.Context(), done: make(chan outcome, 1)}
	select {
	case b.queue <- j:
	default:
		b.rejected.Add(1)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "queue_full", "queue full")
		return
	}
	var o outcome
	select {
	case o = <-j.done:
	case <-b.closed:
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "server shutting down")
		return
	}
	switch {
	case o.err != nil:
		return // the client is gone; nobody reads an answer
	case o.fail:
		writeError(w, http.StatusInternalServerError, "injected_failure", "injected failure")
	default:
		writeJSON(w, http.StatusOK, requestAnswer{
			Server:      b.cfg.Addr,
			QueueLength: len(b.queue),
			Processed:   b.processed.Load(),
			WorkMS:      float64(o.work) / float64(time.Millisecond),
		})
	}
}

// loadFigures is the JSON body of /queue/status, and part of /health's.
type loadFigures struct {
	Server        string `json:"server"`
	QueueLength   int    `json:"queue_length"` // requests waiting for a worker
	QueueCapacity int    `json:"queue_capacity"`
	Workers       int    `json:"workers"`
	Busy          int64  `json:"busy"` // requests a worker is working on
	Processed     int64  `json:"processed"`
	Failed        int64  `json:"failed"`
	Rejected      int64  `json:"rejected"`
}

// healthAnswer is the JSON body of /health: "ok" or "failing", and the load figures.
type healthAnswer struct {
	Status string `json:"status"`
	loadFigures
}

func (b *backend) figures() loadFigures {
	return loadFigures{
		Server:        b.cfg.Addr,
		QueueLength:   len(b.queue),
		QueueCapacity: cap(b.queue),
		Workers:       b.cfg.Workers,
		Busy:          b.busy.Load(),
		Processed:     b.processed.Load(),
		Failed:        b.failed.Load(),
		Rejected:      b.rejected.Load(),
	}
}

func (b *backend) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, b.figures())
}

func (b *backend) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if b.cfg.HealthFail {
		writeJSON(w, http.StatusServiceUnavailable, healthAnswer{"failing", b.figures()})
		return
	}
	writeJSON(w, http.StatusOK, healthAnswer{"ok", b.figures()})
}

// handleStream writes ?chunks=N (default 5) lines "chunk i\n", flushing each, with
// ?interval=D (default 100ms) between them; without a Content-Length, net/http sends
// them with chunked transfer encoding.
func handleStream(w http.ResponseWriter, r *http.Request) {
	n, err1 := intParam(r, "chunks", 5)
	interval, err2 := durationParam(r, "interval", 100*time.Millisecond)
	if err := errors.Join(err1, err2); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rc := http.NewResponseController(w)
	for i := range n {
		if i > 0 && sleep(r.Context(), interval) != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "chunk %d\n", i); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// handleUpload reads and discards the whole body, answering its size and SHA-256.
func handleUpload(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_body", fmt.Sprintf("reading body: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bytes": n, "sha256": hex.EncodeToString(h.Sum(nil))})
}

// pattern is the download body's period: byte i of any download is byte(i % 251). Its
// length is a multiple of 251 so that it can be written back to back.
var pattern = func() []byte {
	p := make([]byte, 251*128)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}()

// handleDownload streams ?bytes=N (default 1024) bytes of pattern with Content-Length
// set, in bounded memory whatever N.
func handleDownload(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "bytes", 1024)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	for left := n; left > 0; {
		k := min(left, int64(len(pattern)))
		if _, err := w.Write(pattern[:k]); err != nil {
			return
		}
		left -= k
	}
}

// handleEchoHeaders answers what the request looked like on arrival, for checking what
// a proxy forwards.
func (b *backend) handleEchoHeaders(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"server":      b.cfg.Addr,
		"method":      r.Method,
		"host":        r.Host,
		"path":        r.URL.RequestURI(),
		"proto":       r.Proto,
		"remote_addr": r.RemoteAddr,
		"headers":     r.Header,
	})
}

// upgrader accepts any origin: this is a test backend behind the proxy under test.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// handleWebSocket echoes every message back with its type until the peer closes.
func handleWebSocket(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already answered the client
	}
	defer c.Close()
	c.SetReadLimit(16 << 20)
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

func (b *backend) handleOther(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"server": b.cfg.Addr, "path": r.URL.Path})
}

// intParam reads a non-negative integer query parameter, def when absent.
func intParam(r *http.Request, name string, def int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("query %s=%q: want a non-negative integer", name, s)
	}
	return n, nil
}

// durationParam reads a non-negative Go duration query parameter, def when absent.
func durationParam(r *http.Request, name string, def time.Duration) (time.Duration, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("query %s=%q: want a non-negative duration such as 100ms", name, s)
	}
	return d, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a write error means the client is gone
}

// writeError writes the JSON error body of DESIGN section 8.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": msg, "code": code})
}

// queueFromConfig returns servers.queue_capacity of the config file at path, or
// defaultQueue when the file or the key is missing; a file it cannot read or parse also
// gives defaultQueue, with the error to report.
func queueFromConfig(path string) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return defaultQueue, nil
	}
	if err != nil {
		return defaultQueue, fmt.Errorf("reading %s: %w", path, err)
	}
	var c struct {
		Servers struct {
			QueueCapacity *int `json:"queue_capacity"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return defaultQueue, fmt.Errorf("%s: servers.queue_capacity: %w", path, err)
	}
	if c.Servers.QueueCapacity == nil {
		return defaultQueue, nil
	}
	return *c.Servers.QueueCapacity, nil
}

// parseArgs reads the command line into a config (without Addr) and the port; queue is
// the default of -queue.
func parseArgs(args []string, queue int, stderr io.Writer) (serverConfig, string, error) {
	var c serverConfig
	fl := flag.NewFlagSet("server", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(fl.Output(), "usage: go run server/server.go [flags] PORT")
		fl.PrintDefaults()
	}
	fl.DurationVar(&c.Work, "work", 10*time.Millisecond, "simulated work per /requests request (0 answers at once)")
	fl.IntVar(&c.Workers, "workers", 4, "workers serving the queue")
	fl.IntVar(&c.Queue, "queue", queue, "requests that may wait for a worker; the default is servers.queue_capacity of ./config.json, else 1000")
	fl.Float64Var(&c.FailRate, "fail-rate", 0, "share of /requests answered 500, 0..1")
	fl.Float64Var(&c.SlowRate, "slow-rate", 0, "share of /requests that take -slow longer, 0..1")
	fl.DurationVar(&c.Slow, "slow", time.Second, "extra work of a slow request")
	fl.BoolVar(&c.HealthFail, "health-fail", false, "answer /health with 503")
	fl.Uint64Var(&c.Seed, "seed", 0, "seed of the fault dice (0 picks one at random; the log shows it)")
	if err := fl.Parse(args); err != nil {
		return c, "", err
	}
	if fl.NArg() != 1 {
		fl.Usage()
		return c, "", errors.New("want exactly one PORT argument after the flags")
	}
	port := fl.Arg(0)
	switch p, err := strconv.Atoi(port); {
	case err != nil || p < 0 || p > 65535:
		return c, "", fmt.Errorf("PORT %q: want a number from 0 to 65535", port)
	case c.Work < 0 || c.Slow < 0:
		return c, "", errors.New("-work and -slow must not be negative")
	case c.Queue < 0:
		return c, "", errors.New("-queue (or servers.queue_capacity) must not be negative")
	case c.Workers < 1:
		return c, "", errors.New("-workers must be at least 1")
	case c.FailRate < 0 || c.FailRate > 1 || c.SlowRate < 0 || c.SlowRate > 1:
		return c, "", errors.New("-fail-rate and -slow-rate must be between 0 and 1")
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return c, port, nil
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is the whole command; it returns the exit code: 0 after a signal, 1 when serving
// fails, 2 for a bad command line.
func run(args []string, stdout, stderr io.Writer) int {
	log := hclog.New(&hclog.LoggerOptions{Name: "server", Output: stderr})
	queue, err := queueFromConfig("config.json")
	if err != nil {
		log.Warn("ignoring config file", "error", err)
	}
	cfg, port, err := parseArgs(args, queue, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			log.Error("bad command line", "error", err)
		}
		return 2
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		log.Error("cannot listen", "error", err)
		return 1
	}
	cfg.Addr = ln.Addr().String()
	b := newServer(cfg)
	srv := &http.Server{
		Handler:           b,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	fmt.Fprintf(stdout, "listening on %s\n", cfg.Addr)
	log.Info("listening", "addr", cfg.Addr, "work", cfg.Work, "workers", cfg.Workers,
		"queue", cfg.Queue, "fail_rate", cfg.FailRate,
		"slow_rate", cfg.SlowRate, "slow", cfg.Slow, "health_fail", cfg.HealthFail, "seed", cfg.Seed)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		log.Error("serving failed", "error", err)
		return 1
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the default way
	return shutdown(srv, b, log)
}

// drainTime bounds the graceful stop: in-flight requests get this long to finish.
const drainTime = 10 * time.Second

// shutdown stops accepting, lets in-flight requests finish for up to drainTime, then
// stops the workers.
func shutdown(srv *http.Server, b *backend, log hclog.Logger) int {
	log.Info("stopping", "drain", drainTime)
	ctx, cancel := context.WithTimeout(context.Background(), drainTime)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("drain cut short", "error", err)
		_ = srv.Close()
	}
	b.Close()
	log.Info("stopped", "processed", b.processed.Load())
	return 0
}
