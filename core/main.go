// Command core is the load balancer: go run ./core [-config PATH].
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/lb"
	"github.com/switchyard-lb/switchyard/core/script"
	"github.com/switchyard-lb/switchyard/core/strategy"
	"github.com/switchyard-lb/switchyard/sdk"
)

func main() {
	if name, ok := strategy.PluginMode(); ok { // re-executed by a core as a bundled strategy
		sdk.Serve(strategy.NewBundled(name))
		return
	}
	if path, ok := script.PluginMode(); ok { // re-executed by a core to run a strategy script
		sdk.Serve(script.New(path))
		return
	}
	fs := flag.NewFlagSet("core", flag.ContinueOnError)
	path := fs.String("config", "config.json", "the configuration file")
	level := fs.String("log-level", "info", "log level: trace, debug, info, warn or error")
	jsonLog := fs.Bool("log-json", false, "log as JSON lines")
	inProcess := fs.Bool("in-process-strategy", false, "run bundled strategies inside the core, not as plugins (for benchmarks)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name: "lb", Level: hclog.LevelFromString(*level), JSONFormat: *jsonLog, Output: os.Stderr,
	})
	if err := run(*path, lb.Options{Log: log, InProcessStrategy: *inProcess}); err != nil {
		log.Error("exiting", "error", err)
		os.Exit(1)
	}
}

// run serves the configuration at path until SIGINT or SIGTERM, then drains. Edits of
// the file, and SIGHUP, apply a new configuration live.
func run(path string, opts lb.Options) error {
	log := opts.Log
	data, err := os.ReadFile(path)
	if err != nil {
		return &config.Error{File: path, Msg: fmt.Sprintf("reading: %v", err)}
	}
	cfg, err := config.Parse(data, path)
	if err == nil {
		err = lb.Validate(cfg)
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
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
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case data := <-changes(w):
			log.Info("config file changed", "file", path)
			_ = l.Reload(data, path)
		case <-hup:
			log.Info("SIGHUP: reloading the config file", "file", path)
			if data, err := os.ReadFile(path); err != nil {
				log.Error("config refused; the running configuration is unchanged", "file", path, "error", err)
			} else {
				_ = l.Reload(data, path)
			}
		case err := <-watchErrors(w):
			log.Warn("watching the config file", "error", err)
		}
	}
	stop() // a second signal kills at once
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
