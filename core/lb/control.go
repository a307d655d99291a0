package lb

import (
	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/health"
	"github.com/switchyard-lb/switchyard/core/status"
)

// control is the load balancer's status.Controller.
type control struct{ l *LB }

// SetBackendState drains the backend with url of pool (or of the one pool that has
// it) or makes it ready, logging the change as health changes are logged. The
// state belongs to the backend, so it survives configuration reloads that keep it.
func (c control) SetBackendState(pool, url, state string) error {
	b, set, err := c.find(pool, url)
	if err != nil {
		return err
	}
	var h backend.Health
	var changed bool
	switch state {
	case "drain":
		h, changed = b.Drain()
	case "ready":
		h, changed = b.Ready()
	default:
		return status.ErrBadState
	}
	if changed {
		set.Rebuild()
		health.LogChange(c.l.log.Named("health"), b, h, "pool", b.Pool)
	}
	return nil
}

// SetBackendWeight sets the weight of the backend with url of pool (or of the one
// pool that has it), as HAProxy's "set server ... weight", and logs the change. The
// weight belongs to the backend, so it survives configuration reloads that keep it,
// until config.json gives it another weight (see backend.Backend.SetWeight). Weight
// 0 takes it out of the picks.
func (c control) SetBackendWeight(pool, url string, weight int) error {
	if weight < 0 || weight > backend.MaxWeight {
		return status.ErrBadWeight
	}
	b, set, err := c.find(pool, url)
	if err != nil {
		return err
	}
	if b.SetWeight(weight) {
		set.Rebuild() // new candidates and weights: for the strategy and the data-plane processes
	}
	c.l.log.Info("backend weight set at run time", "backend", b.URL, "weight", weight, "pool", b.Pool)
	return nil
}

// find is the backend a runtime control names, and its set.
func (c control) find(pool, url string) (*backend.Backend, *backend.Set, error) {
	pools := c.l.poolsOf()
	sets := make([]*backend.Set, len(pools))
	for i, ps := range pools {
		sets[i] = ps.set
	}
	b, err := status.FindBackend(sets, pool, url)
	if err != nil {
		return nil, nil, err
	}
	return b, c.l.poolNamed(b.Pool).set, nil
}
