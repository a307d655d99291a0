// Package routes is an example configuration: three pools behind routes, one of them
// with a queue-aware script strategy (see the README's "Routes and pools").
package routes

import (
	"testing"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/lb"
	"github.com/switchyard-lb/switchyard/core/script"
	"github.com/switchyard-lb/switchyard/sdk"
	"github.com/switchyard-lb/switchyard/sdk/sdktest"
)

// The example validates as `go run ./core -check` validates it, with the pools and
// routes the README describes.
func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := config.Load("config.json", lb.Bundled)
	if err == nil {
		err = lb.Validate(cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.PoolNames(); len(got) != 3 || got[1] != "api" || got[2] != "model" {
		t.Errorf("pools %v, want default, api, model", got)
	}
	model, _ := cfg.Pool("model")
	if model.Strategy != "lowest_queue" || model.HealthCheck.Path != "/health" || model.HealthCheck.Interval.D().String() != "500ms" {
		t.Errorf("model pool %+v, want its script, the top-level check path and its own interval", model)
	}
}

// The model pool's script picks the shortest queue, and refuses a request of another
// pool.
func TestLowestQueueScript(t *testing.T) {
	bs := sdktest.Backends("http://a:1", "http://b:1")
	bs[0].QueueLength, bs[1].QueueLength = 5, 1
	h := sdktest.New(t, script.New("lowest_queue.star"), bs...)
	h.SetPool("model")
	if got, err := h.Pick(&sdk.Request{}); err != nil || got != "http://b:1" {
		t.Errorf("pick = %q, %v; want the shorter queue, http://b:1", got, err)
	}
	if _, err := h.Pick(&sdk.Request{Pool: "api"}); err == nil {
		t.Error("a request of pool api was placed, want it refused")
	}
}
