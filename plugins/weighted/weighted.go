// Package weighted provides smooth weighted round robin, nginx's algorithm: over any
// window of sum(weights) picks each backend gets exactly its weight, spread out rather
// than in runs.
package weighted

import (
	"fmt"

	"github.com/switchyard-lb/switchyard/sdk"
)

// Name is the name config.json uses for this strategy.
const Name = "weighted"

// Strategy is smooth weighted round robin
// (nginx src/http/ngx_http_upstream_round_robin.c, ngx_http_upstream_get_peer):
// each pick adds every candidate's weight to its current value, picks the highest,
// and subtracts the total from the picked one. Weights are read at each pick, so an
// edit applies from the next one.
//
// Started from zero, the rotation comes back to zero after sum(weights) picks, so it
// is one cycle repeated: Schedule hands that cycle to the load balancer, which walks
// it without asking.
//
// A Strategy is not safe for concurrent use; the sdk calls it from one goroutine.
type Strategy struct {
	current map[string]int // by backend URL, so state survives set changes
}

// New returns a smooth weighted round robin strategy.
func New() *Strategy { return &Strategy{current: map[string]int{}} }

// Pick returns the next backend in the weighted rotation.
func (s *Strategy) Pick(_ *sdk.Request, backends []sdk.Backend) (int, error) {
	best, total := -1, 0
	for i := range backends {
		w := max(backends[i].Weight, 1)
		total += w
		cur := s.current[backends[i].URL] + w
		s.current[backends[i].URL] = cur
		if best < 0 || cur > s.current[backends[best].URL] {
			best = i
		}
	}
	s.current[backends[best].URL] -= total
	if len(s.current) > 2*len(backends)+8 {
		s.forgetGone(backends)
	}
	return best, nil
}

// Schedule returns one cycle of the rotation over backends, started from zero: over
// any window of sum(weights) picks of its repetition, each backend gets exactly its
// weight. Weights are divided by their greatest common divisor first, which leaves
// the sequence the same and the cycle shorter. Weights summing to more than
// sdk.MaxOrder are an error: the load balancer then asks Pick for each request.
func (s *Strategy) Schedule(backends []sdk.Backend) (sdk.Schedule, error) {
	g := 0
	for _, b := range backends {
		g = gcd(g, max(b.Weight, 1))
	}
	weights, total := make([]int, len(backends)), 0
	for i, b := range backends {
		weights[i] = max(b.Weight, 1) / g
		total += weights[i]
	}
	if total > sdk.MaxOrder {
		return sdk.Schedule{}, fmt.Errorf("weighted: a cycle of %d picks (the weights' sum divided by %d) is longer than %d", total, g, sdk.MaxOrder)
	}
	order := make([]int, total)
	current := make([]int, len(backends))
	for n := range order {
		best := 0
		for i, w := range weights {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		order[n] = best
	}
	return sdk.Schedule{Order: order}, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// forgetGone drops the state of backends no longer offered.
func (s *Strategy) forgetGone(backends []sdk.Backend) {
	keep := make(map[string]int, len(backends))
	for _, b := range backends {
		keep[b.URL] = s.current[b.URL]
	}
	s.current = keep
}

// Interface guards
var (
	_ sdk.Strategy  = (*Strategy)(nil)
	_ sdk.Scheduler = (*Strategy)(nil)
)
