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
	key, err := config.NormalizeURL(url)
	if err != nil {
		return status.ErrUnknownBackend
	}
	var b *backend.Backend
	for _, x := range c.l.backends.Snapshot().All {
		if x.Key == key {
			b = x
		}
	}
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
