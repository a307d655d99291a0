// Package discovery finds backends in DNS (DESIGN section 4, servers.discovery): the
// targets of an SRV record, or the addresses of an A/AAAA record on a port, resolved
// again every interval, as HAProxy's server-template and nginx's resolve do.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/config"
)

// Source is the config.Backend source of discovered backends.
const Source = "dns"

// lookupTimeout bounds one resolution.
const lookupTimeout = 5 * time.Second

// Resolve looks d's record up once and returns its backends, sorted by URL. An
// empty answer is an error: it would remove every backend.
func Resolve(ctx context.Context, d *config.Discovery) ([]config.Backend, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	r := resolver(d.Resolver)
	type hostPort struct {
		host string
		port int
	}
	var targets []hostPort
	if d.SRV != "" {
		_, srvs, err := r.LookupSRV(ctx, "", "", d.SRV)
		if err != nil {
			return nil, fmt.Errorf("resolving SRV %s: %w", d.SRV, err)
		}
		for _, s := range srvs {
			targets = append(targets, hostPort{s.Target, int(s.Port)})
		}
	} else {
		targets = append(targets, hostPort{d.DNS, int(d.Port)})
	}
	var out []config.Backend
	for _, t := range targets {
		addrs, err := r.LookupIPAddr(ctx, t.host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", t.host, err)
		}
		for _, a := range addrs {
			u := d.Scheme + "://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(t.port))
			out = append(out, config.Backend{URL: u, Weight: d.Weight, Source: Source})
		}
	}
	if len(out) == 0 {
		name := d.SRV
		if name == "" {
			name = d.DNS
		}
		return nil, fmt.Errorf("resolving %s: no records", name)
	}
	slices.SortFunc(out, func(a, b config.Backend) int {
		switch {
		case a.URL < b.URL:
			return -1
		case a.URL > b.URL:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(out, func(a, b config.Backend) bool { return a.URL == b.URL }), nil
}

// resolver is the system's resolver, or one that asks the DNS server at addr.
func resolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	var d net.Dialer
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
}

// Result is one resolution: the backends found, or why none were.
type Result struct {
	Backends []config.Backend // nil when Err is set: keep the last known set
	Err      error
	At       time.Time
}

// Watcher resolves a record every interval and reports each result.
type Watcher struct {
	cfg    config.Discovery
	report func(Result)
	log    hclog.Logger
}

// NewWatcher returns a watcher of d that hands each result to report, from one
// goroutine at a time.
func NewWatcher(d config.Discovery, report func(Result), log hclog.Logger) *Watcher {
	return &Watcher{cfg: d, report: report, log: log}
}

// Once resolves now and reports the result.
func (w *Watcher) Once(ctx context.Context) {
	bs, err := Resolve(ctx, &w.cfg)
	w.report(Result{Backends: bs, Err: err, At: time.Now().UTC()})
}

// Run resolves every interval until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("discovery panicked", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	t := time.NewTicker(w.cfg.Interval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.Once(ctx)
		if errors.Is(ctx.Err(), context.Canceled) {
			return
		}
	}
}
