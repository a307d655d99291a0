// Package discovery finds backends in DNS (DESIGN section 4, servers.discovery): the
// targets of an SRV record, or the addresses of an A/AAAA record on a port, resolved
// again every interval, as HAProxy's server-template and nginx's resolve do.
package discovery

import (
	"context"
	"errors"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/config"
)

// Source is the config.Backend source of discovered backends.
const Source = "dns"

// lookupTimeout bounds one resolution, per DNS server of the list.
const lookupTimeout = 5 * time.Second

// Result is one resolution: the backends found, or why none were.
type Result struct {
	// Backends found, sorted by URL; nil when the lookup failed: keep the last
	// known set.
	Backends []config.Backend
	// Err says why the lookup failed; beside Backends, what went wrong without
	// failing it: targets left out, servers that failed before another answered.
	// Nil when nothing did.
	Err error
	// Resolver is the DNS server that answered the record, or the one asked last
	// when none did.
	Resolver string
	// At is when the lookup ended.
	At time.Time
}

// Resolve looks d's record up once. An SRV target that does not resolve (the DNS
// answered that it has no address, or failed to resolve it) is left out, the others
// stay; a lookup no server answered, or that finds no backend, fails: it would
// remove every backend, or those of targets that were only not looked up.
func Resolve(ctx context.Context, d *config.Discovery) Result {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout*time.Duration(max(len(d.Resolver), 1)))
	defer cancel()
	c := newClient(d.Resolver)
	bs, problems, err := resolve(ctx, c, d)
	r := Result{Backends: bs, Resolver: c.answered, At: time.Now().UTC()}
	if r.Resolver == "" {
		r.Resolver = c.asked
	}
	problems = append(dedupe(c.skipped), problems...)
	switch {
	case err != nil:
		r.Backends, r.Err = nil, err
	case len(problems) > 0:
		r.Err = problems
	}
	return r
}

// target is a name whose addresses are backends on port: an SRV target, or the
// A/AAAA record's name.
type target struct {
	host     string
	port     int
	weight   int
	priority int // the SRV record's value
}

// resolve finds d's backends through c, with the problems that left some out.
func resolve(ctx context.Context, c *client, d *config.Discovery) ([]config.Backend, Problems, error) {
	targets := []target{{host: d.DNS, port: int(d.Port), weight: d.Weight}}
	var problems Problems
	if d.SRV != "" {
		var err error
		if targets, problems, err = srvTargets(ctx, c, d.SRV); err != nil {
			return nil, nil, err
		}
	}
	var out []found
	for _, t := range targets {
		var addrs []net.IPAddr
		err := c.ask(ctx, "A/AAAA", t.host, func(ctx context.Context, r *net.Resolver) (err error) {
			addrs, err = r.LookupIPAddr(ctx, t.host)
			return err
		})
		if err != nil && !answered(err) {
			return nil, nil, err // no verdict on the target: fail, keeping the last known set
		}
		if err != nil {
			problems = append(problems, err)
			continue
		}
		for _, a := range addrs {
			u := d.Scheme + "://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(t.port))
			out = append(out, found{URL: u, weight: t.weight, priority: t.priority})
		}
	}
	if len(out) == 0 {
		if len(problems) > 0 {
			return nil, nil, problems
		}
		return nil, nil, &Error{Type: "SRV", Name: d.SRV, Server: c.answered, cause: `no targets (only ".": the service is not available)`}
	}
	return backends(out), problems, nil
}

// srvTargets looks the SRV record name up. Records Go's resolver refuses (invalid
// names) are a problem beside the others; a target of "." says that the service is
// decidedly not available there (RFC 2782), and is left out quietly.
func srvTargets(ctx context.Context, c *client, name string) ([]target, Problems, error) {
	var srvs []*net.SRV
	var partial error
	err := c.ask(ctx, "SRV", name, func(ctx context.Context, r *net.Resolver) (err error) {
		_, srvs, err = r.LookupSRV(ctx, "", "", name)
		if err != nil && len(srvs) > 0 {
			partial, err = err, nil
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var problems Problems
	if partial != nil {
		x := &exchange{addr: c.answered}
		problems = append(problems, x.error("SRV", name, c.answered, partial))
	}
	var out []target
	for _, s := range srvs {
		if s.Target != "." {
			out = append(out, target{host: s.Target, port: int(s.Port), weight: max(int(s.Weight), 1), priority: int(s.Priority)})
		}
	}
	return out, problems, nil
}

// answered reports whether a DNS server answered the question that err is about:
// that the name has no such record, or that it could not resolve it.
func answered(err error) bool {
	var e *Error
	if errors.As(err, &e) && !e.NoAnswer {
		return true
	}
	var p Problems
	return errors.As(err, &p) && slices.ContainsFunc(p, answered)
}

// found is a backend found, with the SRV priority of its target.
type found struct {
	URL      string
	weight   int
	priority int
}

// backends turns what was found into backends sorted by URL. An address that
// several targets share is one backend: of the lowest priority among them, with the
// sum of their weights at that priority. Priorities become their rank among the
// values found (config.Backend.Priority).
func backends(fs []found) []config.Backend {
	slices.SortFunc(fs, func(a, b found) int {
		if c := strings.Compare(a.URL, b.URL); c != 0 {
			return c
		}
		return a.priority - b.priority
	})
	var out []config.Backend
	var prios []int
	for i, f := range fs {
		switch {
		case i > 0 && f.URL == fs[i-1].URL && f.priority == prios[len(prios)-1]:
			out[len(out)-1].Weight += f.weight
		case i > 0 && f.URL == fs[i-1].URL:
		default:
			out = append(out, config.Backend{URL: f.URL, Weight: f.weight, Source: Source})
			prios = append(prios, f.priority)
		}
	}
	ranks := slices.Compact(slices.Sorted(slices.Values(prios)))
	for i := range out {
		out[i].Priority, _ = slices.BinarySearch(ranks, prios[i])
	}
	return out
}

// dedupe leaves out errors whose text an earlier one has.
func dedupe(errs Problems) Problems {
	var out Problems
	for _, err := range errs {
		if !slices.ContainsFunc(out, func(o error) bool { return o.Error() == err.Error() }) {
			out = append(out, err)
		}
	}
	return out
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
func (w *Watcher) Once(ctx context.Context) { w.report(Resolve(ctx, &w.cfg)) }

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
