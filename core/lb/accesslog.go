package lb

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/proxy"
)

// accessLog is the access log's destination and the writer over it.
type accessLog struct {
	log  *proxy.AccessLog
	path string // the file's absolute path, "" for standard output

	mu   sync.Mutex // guards file
	file *os.File   // nil for standard output, and once closed
}

// openAccessLog opens cfg's access log: nil when it is off.
func (l *LB) openAccessLog(cfg *config.Config) (*accessLog, error) {
	path := cfg.LoadBalancer.AccessLog
	switch path {
	case "":
		return nil, nil
	case "-":
		return &accessLog{log: proxy.NewAccessLog(os.Stdout, l.logJSON)}, nil
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(cfg.Path), path)
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &accessLog{log: proxy.NewAccessLog(f, l.logJSON), path: path, file: f}, nil
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

// ReopenAccessLog opens the access log's file anew in every process of the load
// balancer, as nginx does on USR1, for log rotation: logrotate renames the file, then
// signals the core, and lines of requests that end from then on go to a new file at
// the configured path; those of requests that ended before go to the renamed file,
// whole (see proxy.AccessLog.SetWriter). It returns this process's error; a data-plane
// process that cannot open the file logs why and writes on to the renamed one.
func (l *LB) ReopenAccessLog() error {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	err := l.access.reopen()
	if l.access != nil {
		l.eachGroup(func(g planeGroup) { g.send(&planeMsg{Kind: msgReopen}) })
	}
	return err
}

// reopen opens the log's path anew and writes there from now on, for log rotation:
// once logrotate has renamed the file, new lines go to a new file at the path, and
// the lines of requests that ended before go to the renamed one, whole. A failed open
// keeps the file in use. Standard output has nothing to reopen.
func (a *accessLog) reopen() error {
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

// close writes what is queued and closes the access log's file, if it has one.
func (a *accessLog) close() {
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
