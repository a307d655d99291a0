package script

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"go.starlark.net/starlark"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
	"github.com/switchyard-lb/switchyard/sdk"
)

// pluginModeEnv names the script a re-executed core should serve.
const pluginModeEnv = "SWITCHYARD_SCRIPT"

// PluginEnv is the environment entry that makes a re-executed core serve the
// script at path (an absolute path).
func PluginEnv(path string) string { return pluginModeEnv + "=" + path }

// PluginMode reports whether this process was started by a core to serve a script
// strategy, and which file. The core's main then calls sdk.Serve(New(path)).
func PluginMode() (string, bool) {
	path := os.Getenv(pluginModeEnv)
	return path, path != ""
}

// Strategy is an sdk.Strategy that runs a Starlark script. Configure loads the
// script; from then on a save of the file loads the new version, which takes the
// picks once it has loaded and accepted the options. A version that does not load
// changes nothing (the core reports it). The script's state survives both.
//
// Strategy is safe for use by multiple goroutines: calls into the script are
// serialized.
type Strategy struct {
	path string

	mu      sync.Mutex // serializes the script: picks, outcomes, reloads
	cur     *version
	options json.RawMessage
	state   *state
	thread  *starlark.Thread
	req     request
	list    backendList
	args    [2]starlark.Value
	started bool

	lastLog time.Time // of the last observe error logged
}

// New returns the strategy of the script at path; Configure loads it.
func New(path string) *Strategy {
	s := &Strategy{path: path, state: newState()}
	s.thread = &starlark.Thread{Name: "pick", Print: func(_ *starlark.Thread, msg string) { log.Print(msg) }}
	s.thread.SetLocal(leastKey, leastconn.New())
	return s
}

// Configure loads the script with options and starts following its file.
func (s *Strategy) Configure(options json.RawMessage) error {
	src, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("script: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := load(s.path, src, options, s.state, func(msg string) { log.Print(msg) })
	if err != nil {
		return err
	}
	s.cur, s.options = v, options
	if !s.started {
		s.started = true
		if err := s.follow(src); err != nil {
			log.Printf("[WARN] script: not reloading %s on save: %v", s.path, err)
		}
	}
	return nil
}

// follow reloads the script each time its file changes, for as long as the process
// lives.
func (s *Strategy) follow(src []byte) error {
	w, err := config.Watch(s.path, src)
	if err != nil {
		return err
	}
	go w.Run(context.Background())
	go func() {
		for {
			select {
			case src := <-w.Changed:
				s.reload(src)
			case err := <-w.Errors:
				log.Printf("[WARN] script: watching %s: %v", s.path, err)
			}
		}
	}()
	return nil
}

// reload loads src as the new version; on failure the running version stays.
func (s *Strategy) reload(src []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := load(s.path, src, s.options, s.state, func(msg string) { log.Print(msg) })
	if err != nil {
		log.Printf("[ERROR] script refused; the previous version keeps picking: %v", err)
		return
	}
	s.cur = v
	log.Printf("[INFO] script reloaded: %s", s.path)
}

// Headers names the request headers the script declared in HEADERS (those of the
// version loaded first: the core asks once).
func (s *Strategy) Headers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return nil
	}
	return s.cur.headers
}

// Pick runs the script's pick. fail("why") declines the request (an error: the
// client gets 503 with it); a runtime error, a runaway loop or an answer that is not
// an index panics with the reason, which the sdk turns into a bad answer: that
// request takes the core's built-in pick.
func (s *Strategy) Pick(req *sdk.Request, backends []sdk.Backend) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.req = request{r: req}
	s.list.set(backends)
	s.args[0], s.args[1] = &s.req, &s.list
	res, err := s.call(s.cur.pick, s.args[:])
	s.list.set(nil) // keep nothing of this pick
	s.req.r, s.req.headers = nil, nil
	var d *declined
	switch {
	case errors.As(err, &d):
		return -1, errors.New(d.msg)
	case err != nil:
		panic(badAnswer(explain(err).Error()))
	}
	i, ok := res.(starlark.Int)
	if !ok {
		panic(badAnswer(fmt.Sprintf("%s: pick returned %s, want an index", s.path, res.Type())))
	}
	n, ok := i.Int64()
	if !ok || n < 0 || n >= int64(len(backends)) {
		panic(badAnswer(fmt.Sprintf("%s: pick returned %s for %d backends", s.path, i, len(backends))))
	}
	return int(n), nil
}

// badAnswer is why a pick's answer is no valid index. Pick panics with it, and the
// sdk reports it as the pick's bad answer in these words (the core then takes its
// built-in pick, or refuses the request, and logs why).
type badAnswer string

// BadAnswer returns the reason.
func (b badAnswer) BadAnswer() string { return string(b) }

// Observe runs the script's observe, if it has one. Its errors are logged, at most
// once a second.
func (s *Strategy) Observe(o sdk.Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.observe == nil {
		return
	}
	_, err := s.call(s.cur.observe, []starlark.Value{&outcome{o: &o}})
	if err != nil && time.Since(s.lastLog) > time.Second {
		s.lastLog = time.Now()
		log.Printf("[ERROR] script: observe failed: %v", explain(err))
	}
}

// call runs fn within the step budget. s.mu must be held.
func (s *Strategy) call(fn starlark.Callable, args starlark.Tuple) (starlark.Value, error) {
	s.thread.Uncancel()
	s.thread.Steps = 0
	s.thread.SetMaxExecutionSteps(callSteps)
	return starlark.Call(s.thread, fn, args, nil)
}

// Interface guards
var (
	_ sdk.Strategy   = (*Strategy)(nil)
	_ sdk.Configurer = (*Strategy)(nil)
	_ sdk.Observer   = (*Strategy)(nil)
	_ sdk.Headerer   = (*Strategy)(nil)
)
