// Package leastconn provides the least-connections strategy: each request goes to the
// backend with the least outstanding work per unit of weight.
package leastconn

import (
	"math/rand/v2"

	"github.com/switchyard-lb/switchyard/sdk"
)

// Name is the name config.json uses for this strategy.
const Name = "leastconn"

// Strategy picks the backend with the fewest (in-flight + reported queue length) / weight.
// Ties are broken without herding, so that equal backends share the load instead of
// the first one taking it all: Pick chooses uniformly at random among them
// (reservoir sampling, as Caddy's LeastConnSelection:
// https://en.wikipedia.org/wiki/Reservoir_sampling), and Schedule has the load
// balancer pick the least loaded itself, with equal backends taking turns.
//
// A Strategy is not safe for concurrent use; the sdk calls it from one goroutine.
type Strategy struct {
	rnd *rand.Rand
}

// New returns a least-connections strategy.
func New() *Strategy {
	return &Strategy{rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// Pick returns the index of the least loaded backend per unit of weight.
func (s *Strategy) Pick(_ *sdk.Request, backends []sdk.Backend) (int, error) {
	best, ties := -1, 0
	var bestLoad, bestWeight int
	for i := range backends {
		load, weight := loadOf(&backends[i]), max(backends[i].Weight, 1)
		if best < 0 {
			best, ties, bestLoad, bestWeight = i, 1, load, weight
			continue
		}
		// Compare load/weight against bestLoad/bestWeight without division.
		switch l, r := load*bestWeight, bestLoad*weight; {
		case l < r:
			best, ties, bestLoad, bestWeight = i, 1, load, weight
		case l == r:
			ties++
			if s.rnd.IntN(ties) == 0 {
				best, bestLoad, bestWeight = i, load, weight
			}
		}
	}
	return best, nil
}

// Schedule has the load balancer make each pick itself from live figures: the least
// loaded of all the backends, per unit of weight.
func (s *Strategy) Schedule([]sdk.Backend) (sdk.Schedule, error) {
	return sdk.Schedule{Least: true}, nil
}

// loadOf is the outstanding work on b: this proxy's in-flight requests plus the
// backend's own reported queue, when it reports one.
func loadOf(b *sdk.Backend) int {
	return b.Inflight + max(b.QueueLength, 0)
}

// Interface guards
var (
	_ sdk.Strategy  = (*Strategy)(nil)
	_ sdk.Scheduler = (*Strategy)(nil)
)
