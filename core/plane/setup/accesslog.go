package setup

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/exchange"
)

// AccessLog is the access log's destination and the writer over it. Its methods are
// safe for concurrent use, and do nothing on a nil AccessLog (the log is off).
type AccessLog struct {
	log  *exchange.AccessLog
	path string // the file's absolute path, "" for standard output

	mu   sync.Mutex // guards file
	file *os.File   // nil for standard output, and once closed
}

// OpenAccessLog opens cfg's access log (load_balancer.access_log), with lines as JSON
// when json is true, else as logfmt: nil when it is off.
func OpenAccessLog(cfg *config.Config, json bool) (*AccessLog, error) {
	path := cfg.LoadBalancer.AccessLog
	switch path {
	case "":
		return nil, nil
	case "-":
		return &AccessLog{log: exchange.NewAccessLog(os.Stdout, json)}, nil
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(cfg.Path), path)
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &AccessLog{log: exchange.NewAccessLog(f, json), path: path, file: f}, nil
}

// openAppend opens the access log file at path to append to it, creating it if need
// be. Every process of the load balancer appends to the file, each write whole lines.
func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening load_balancer.access_log: %w", err)
	}
	return f, nil
}

// Reopen opens the log's path anew and writes there from now on, for log rotation:
// once logrotate has renamed the file, new lines go to a new file at the path, and
// the lines of requests that ended before go to the renamed one, whole. A failed open
// keeps the file in use. Standard output has nothing to reopen.
func (a *AccessLog) Reopen() error {
	if a == nil || a.path == "" {
		return nil
	}
	f, err := openAppend(a.path)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file == nil || !a.log.SetWriter(f) { // closed meanwhile
		_ = f.Close()
		return nil
	}
	_ = a.file.Close()
	a.file = f
	return nil
}

// Close writes what is queued and closes the access log's file, if it has one.
func (a *AccessLog) Close() {
	if a == nil {
		return
	}
	a.log.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file != nil {
		_ = a.file.Close()
		a.file = nil
	}
}
