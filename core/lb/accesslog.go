package lb

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/proxy"
)

// accessLog is the access log's destination and the writer over it.
type accessLog struct {
	log  *proxy.AccessLog
	file *os.File // nil for standard output
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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening load_balancer.access_log: %w", err)
	}
	return &accessLog{log: proxy.NewAccessLog(f, l.logJSON), file: f}, nil
}

// close writes what is queued and closes the access log's file, if it has one.
func (a *accessLog) close() {
	if a == nil {
		return
	}
	a.log.Close()
	if a.file != nil {
		_ = a.file.Close()
	}
}
