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
	"github.com/switchyard-lb/switchyard/core/strategy"
	"github.com/switchyard-lb/switchyard/sdk"
)

func main() {
	if name, ok := strategy.PluginMode(); ok { // re-executed by a core as a bundled strategy
		sdk.Serve(strategy.NewBundled(name))
		return
	}
	fs := flag.NewFlagSet("core", flag.ContinueOnError)
	path := fs.String("config", "config.json", "the configuration file")
	level := fs.String("log-level", "info", "log level: trace, debug, info, warn or error")
	jsonLog := fs.Bool("log-json", false, "log as JSON lines")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name: "lb", Level: hclog.LevelFromString(*level), JSONFormat: *jsonLog, Output: os.Stderr,
	})
	if err := run(*path, log); err != nil {
		log.Error("exiting", "error", err)
		os.Exit(1)
	}
}

// run serves the configuration at path until SIGINT or SIGTERM, then drains.
func run(path string, log hclog.Logger) error {
	cfg, err := config.Load(path, lb.Bundled)
	if err != nil {
		return err
	}
	l, err := lb.New(cfg, log)
	if err != nil {
		return err
	}
	if err := l.Start(); err != nil {
		l.Close()
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	stop() // a second signal kills at once
	drain := cfg.LoadBalancer.Timeouts.Shutdown.D()
	log.Info("shutting down: draining in-flight requests", "timeout", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := l.Shutdown(sctx); err != nil {
		return fmt.Errorf("draining: %w", err)
	}
	log.Info("stopped")
	return nil
}
