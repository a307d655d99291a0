package lb

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/script"
	"github.com/switchyard-lb/switchyard/core/shm"
)

// Validate checks cfg as config.Validate does, and that each strategy script loads:
// it parses, resolves every name, defines pick, and its configure accepts the
// options. A script's error names its file, line and column.
func Validate(cfg *config.Config) error {
	if err := cfg.Validate(Bundled); err != nil {
		return err
	}
	var errs []error
	if n := cfg.LoadBalancer.Processes; n > 1 && engineOf(cfg) != config.EngineEventLoop {
		errs = append(errs, &config.Error{File: cfg.Path, Key: "load_balancer.processes",
			Msg: fmt.Sprintf("%d data-plane processes need the eventloop front, and this configuration runs on nethttp (named so, or a system without the event loop); use 1 or 0", n)})
	} else if n > 1 && !shm.Shared {
		errs = append(errs, &config.Error{File: cfg.Path, Key: "load_balancer.processes",
			Msg: fmt.Sprintf("%d data-plane processes need memory shared between processes, which this system's 64-bit atomics do not allow; use 1 or 0", n)})
	}
	for name, p := range cfg.Plugins {
		if p.Script == "" {
			continue
		}
		path := cfg.PluginScript(name)
		src, err := os.ReadFile(path)
		if err == nil {
			err = script.Check(path, src, p.Options)
		}
		if err != nil {
			errs = append(errs, &config.Error{File: cfg.Path, Key: "plugins." + name + ".script", Msg: err.Error()})
		}
	}
	return errors.Join(errs...)
}

// followScript watches the scripts of the pools' strategies, for as long as ctx
// lives. The plugin reloads the file itself on save; the core checks each version
// the same way, to report one that is refused (log and status last_error, as for a
// refused edit of the config file) and to clear that report once a good one is saved.
func (l *LB) followScript(ctx context.Context, cfg *config.Config) {
	l.source.SetScriptError("")
	seen := map[string]bool{}
	for _, pool := range cfg.PoolNames() {
		ep, _ := cfg.Pool(pool)
		if name := ep.Strategy; !seen[name] {
			seen[name] = true
			l.followOneScript(ctx, cfg, name)
		}
	}
}

// followOneScript follows the script of strategy name, if it has one.
func (l *LB) followOneScript(ctx context.Context, cfg *config.Config, name string) {
	p, ok := cfg.Plugins[name]
	if !ok || p.Script == "" {
		return
	}
	path := cfg.PluginScript(name)
	src, err := os.ReadFile(path)
	if err != nil {
		l.log.Warn("not following the strategy script", "file", path, "error", err)
		return
	}
	w, err := config.Watch(path, src)
	if err != nil {
		l.log.Warn("not following the strategy script", "file", path, "error", err)
		return
	}
	go w.Run(ctx)
	l.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case src := <-w.Changed:
				// A script save counts in lb_config_reloads_total as an edit does.
				err := script.Check(path, src, p.Options)
				l.source.CountReload(err == nil)
				if err != nil {
					l.source.SetScriptError(err.Error())
					l.log.Error("strategy script refused; its previous version keeps picking", "strategy", name, "error", err)
				} else {
					l.source.SetScriptError("")
					l.log.Info("strategy script changed", "strategy", name, "file", path)
				}
			case err := <-w.Errors:
				l.log.Warn("watching the strategy script", "file", path, "error", err)
			}
		}
	})
}
