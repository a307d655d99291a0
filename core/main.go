// Command core is the load balancer: go run ./core [-config PATH].
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/lb"
	"github.com/switchyard-lb/switchyard/core/plane"
	"github.com/switchyard-lb/switchyard/core/script"
	"github.com/switchyard-lb/switchyard/core/strategy"
	"github.com/switchyard-lb/switchyard/sdk"
)

func main() {
	if plane.Mode() { // re-executed by a core as one of its data-plane processes
		ignoreReopen()
		os.Exit(plane.Run())
	}
	if name, ok := strategy.PluginMode(); ok { // re-executed by a core as a bundled strategy
		ignoreReopen()
		sdk.Serve(strategy.NewBundled(name))
		return
	}
	if path, ok := script.PluginMode(); ok { // re-executed by a core to run a strategy script
		ignoreReopen()
		sdk.Serve(script.New(path))
		return
	}
	os.Exit(cli(os.Args[1:]))
}

// cli runs the core's command line and returns the exit code: 0 done, 1 failed,
// 2 a bad command line.
func cli(args []string) int {
	fs := flag.NewFlagSet("core", flag.ContinueOnError)
	path := fs.String("config", "config.json", "the configuration `file` to serve, and to follow: edits apply live")
	level := fs.String("log-level", "info", "the least important log lines written: trace, debug, info, warn or error")
	jsonLog := fs.Bool("log-json", false, "write log lines, and the access log, as JSON instead of logfmt")
	inProcess := fs.Bool("in-process-strategy", false, "run a bundled strategy inside the core instead of as a plugin, to measure what the plugin costs")
	check := fs.Bool("check", false, "check the configuration (plugin commands and scripts included), print the verdict and exit 0 or 1")
	version := fs.Bool("version", false, "print the version and exit")
	var over lb.Overrides
	fs.StringVar(&over.Listen, "listen", "", "serve clients on this `host:port` instead of config.json's, so that several instances can share one config file")
	fs.StringVar(&over.Admin, "admin", "", "serve the admin address on this `host:port` instead of config.json's admin_addr")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: core [flags]   (from a checkout: go run ./core [flags])\n\n")
		fmt.Fprintf(out, "The load balancer: serves the configuration file, reloads it on every edit and on\nSIGHUP, reopens the access log on SIGUSR1, drains in-flight requests on SIGINT or\nSIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "core: unexpected argument %q (the config file goes after -config)\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *version {
		fmt.Println("switchyard", Version())
		return 0
	}
	if *check {
		if _, _, err := load(*path, over); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%s: ok\n", *path)
		return 0
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name: "lb", Level: hclog.LevelFromString(*level), JSONFormat: *jsonLog, Output: os.Stderr,
	})
	log.Info("starting", "version", Version(), "pid", os.Getpid(), "config", *path)
	if err := run(*path, lb.Options{Log: log, InProcessStrategy: *inProcess, LogJSON: *jsonLog, Version: Version(), Overrides: over}); err != nil {
		log.Error("exiting", "error", err)
		return 1
	}
	return 0
}

// Version is the core's version: its module version when built from a tagged module,
// else the commit it was built from, else "devel".
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// load reads and checks the configuration at path, with over applied.
func load(path string, over lb.Overrides) (*config.Config, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &config.Error{File: path, Msg: fmt.Sprintf("reading: %v", err)}
	}
	cfg, err := config.Parse(data, path)
	if err == nil {
		err = over.Apply(cfg)
	}
	if err == nil {
		err = lb.Validate(cfg)
	}
	return cfg, data, err
}

// run serves the configuration at path until SIGINT or SIGTERM, then drains. Edits of
// the file, and SIGHUP, apply a new configuration live; SIGUSR1 reopens the access
// log.
func run(path string, opts lb.Options) error {
	log := opts.Log
	cfg, data, err := load(path, opts.Overrides)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reopen := make(chan os.Signal, 1)
	if len(reopenSignals) > 0 { // Notify with none would take every signal
		signal.Notify(reopen, reopenSignals...)
		defer signal.Stop(reopen)
	}
	// Watch from the moment the file was read, so no edit falls between.
	w, err := config.Watch(path, data)
	if err != nil {
		log.Warn("not watching the config file; SIGHUP still reloads it", "error", err)
	} else {
		go w.Run(ctx)
	}
	l, err := lb.New(cfg, opts)
	if err != nil {
		return err
	}
	if err := l.Start(); err != nil {
		l.Close()
		return err
	}
	reloads := startReloader(l, path)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case data := <-changes(w):
			log.Info("config file changed", "file", path)
			reloads.submit(data)
		case <-hup:
			log.Info("SIGHUP: reloading the config file", "file", path)
			if data, err := os.ReadFile(path); err != nil {
				log.Error("config refused; the running configuration is unchanged", "file", path, "error", err)
			} else {
				reloads.submit(data)
			}
		case <-reopen:
			// Off this loop: the reopen waits for an edit still applying (a plugin
			// starting), and signals and edits must not wait with it.
			log.Info("SIGUSR1: reopening the access log")
			go func() {
				if err := l.ReopenAccessLog(); err != nil {
					log.Error("reopening the access log; writing on to the previous file", "error", err)
				}
			}()
		case err := <-watchErrors(w):
			log.Warn("watching the config file", "error", err)
		}
	}
	stop() // a second signal kills at once
	reloads.stop()
	drain := l.Config().LoadBalancer.Timeouts.Shutdown.D()
	log.Info("shutting down: draining in-flight requests", "timeout", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := l.Shutdown(sctx); err != nil {
		return fmt.Errorf("draining: %w", err)
	}
	log.Info("stopped")
	return nil
}

// errSuperseded is why an edit still applying is abandoned when a later one comes.
var errSuperseded = errors.New("a later edit supersedes it")

// reloader applies the config file's contents one at a time and in order, off the
// main loop, so that a later edit supersedes one still applying: a strategy plugin
// that never starts holds up no later edit until its start timeout.
type reloader struct {
	l      *lb.LB
	path   string
	queue  chan reload             // capacity 1: the latest content not yet taken
	cancel context.CancelCauseFunc // abandons the content submitted last
	done   chan struct{}           // closed when the reloads have ended (stop)
}

// reload is one content of the config file to apply, abandoned when ctx ends.
type reload struct {
	ctx  context.Context
	data []byte
}

// startReloader starts applying the contents submitted to l, read from path.
func startReloader(l *lb.LB, path string) *reloader {
	r := &reloader{l: l, path: path, queue: make(chan reload, 1), cancel: func(error) {}, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for next := range r.queue {
			_ = r.l.ReloadContext(next.ctx, next.data, r.path)
		}
	}()
	return r
}

// submit applies data after, and instead of, what was submitted before: a content
// still applying is abandoned (a plugin it starts is stopped), one not yet taken is
// dropped. Only one goroutine submits.
func (r *reloader) submit(data []byte) {
	r.cancel(errSuperseded)
	ctx, cancel := context.WithCancelCause(context.Background())
	r.cancel = cancel
	select {
	case <-r.queue:
	default:
	}
	r.queue <- reload{ctx: ctx, data: data}
}

// stop abandons the content still applying and waits until the reloads have ended.
func (r *reloader) stop() {
	r.cancel(errors.New("shutting down"))
	select {
	case <-r.queue:
	default:
	}
	close(r.queue)
	<-r.done
}

// changes is w's channel of new content; nil (never ready) without a watcher.
func changes(w *config.Watcher) <-chan []byte {
	if w == nil {
		return nil
	}
	return w.Changed
}

// watchErrors is w's error channel; nil without a watcher.
func watchErrors(w *config.Watcher) <-chan error {
	if w == nil {
		return nil
	}
	return w.Errors
}
