package lb

import (
	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/health"
	"github.com/switchyard-lb/switchyard/core/status"
)

// control is the load balancer's status.Controller.
type control struct{ l *LB }

// SetBackendState drains the backend with url or makes it ready, logging the change
// as health changes are logged. The state belongs to the backend, so it survives
// configuration reloads that keep it.
func (c control) SetBackendState(url, state string) error {
	b := c.backend(url)
	if b == nil {
		return status.ErrUnknownBackend
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
		c.l.backends.Rebuild()
		health.LogChange(c.l.log.Named("health"), b, h)
	}
	return nil
}

// SetBackendWeight sets the weight of the backend with url, as HAProxy's "set server
// ... weight", and logs the change. The weight belongs to the backend, so it survives
// configuration reloads that keep it, until config.json gives it another weight (see
// backend.Backend.SetWeight). Weight 0 takes it out of the picks.
func (c control) SetBackendWeight(url string, weight int) error {
	if weight < 0 || weight > backend.MaxWeight {
		return status.ErrBadWeight
	}
	b := c.backend(url)
	if b == nil {
		return status.ErrUnknownBackend
	}
	if b.SetWeight(weight) {
		c.l.backends.Rebuild() // new candidates and weights: for the strategy and the data-plane processes
	}
	c.l.log.Info("backend weight set at run time", "backend", b.URL, "weight", weight)
	return nil
}

// backend is the backend of the set with url, nil when there is none.
func (c control) backend(url string) *backend.Backend {
	key, err := config.NormalizeURL(url)
	if err != nil {
		return nil
	}
	return c.l.backendByKey(key)
}
