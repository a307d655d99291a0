package config

import (
	"slices"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// DefaultPool is the name of the pool that servers describes: it takes every request
// that no route sends elsewhere.
const DefaultPool = "default"

// Pool is one named pool of backends (DESIGN section 4.1): its backends or discovery,
// and its own strategy, health check and retries, each inherited from the top level
// when left out.
type Pool struct {
	// Backends to balance over. A pool names backends, discovery or both.
	Backends []Backend `json:"backends"`
	// Discovery finds the pool's backends in DNS, as servers.discovery does.
	Discovery *Discovery `json:"discovery"`
	// Strategy picks among the pool's backends: a bundled strategy or a key of
	// plugins (default load_balancer.strategy).
	Strategy string `json:"strategy"`
	// HealthCheck overrides fields of the top-level health_check for this pool.
	HealthCheck *HealthCheckOverride `json:"health_check"`
	// Retries overrides load_balancer.retries for this pool.
	Retries *int `json:"retries"`
	// CA names a PEM file of the certificates that the pool's https backends are
	// verified against, as servers.ca does for default (not inherited from it).
	CA string `json:"ca"`
	// TLSSkipVerify accepts any certificate from the pool's https backends.
	TLSSkipVerify bool `json:"tls_skip_verify"`
}

// HealthCheckOverride is a pool's health_check: each field given replaces the
// top-level one, each left out inherits it.
type HealthCheckOverride struct {
	Path               *string          `json:"path"`
	Interval           *Duration        `json:"interval"`
	Timeout            *Duration        `json:"timeout"`
	HealthyThreshold   *int             `json:"healthy_threshold"`
	UnhealthyThreshold *int             `json:"unhealthy_threshold"`
	GRPC               *bool            `json:"grpc"`
	Passive            *PassiveOverride `json:"passive"`
}

// PassiveOverride is a pool's health_check.passive, over the top-level one.
type PassiveOverride struct {
	ConsecutiveFailures *int      `json:"consecutive_failures"`
	EjectionTime        *Duration `json:"ejection_time"`
}

// Route sends the requests its Match holds for to a pool, or answers them itself
// (DESIGN section 4.1). Exactly one action is given: Pool, Redirect or Respond.
type Route struct {
	Match RouteMatch `json:"match"`
	// Pool names the pool that serves the route's requests ("default" or a key of
	// pools).
	Pool string `json:"pool"`
	// StripPrefix is removed from the start of the path before the request goes on;
	// "/" remains at least. With Pool only.
	StripPrefix string `json:"strip_prefix"`
	// RequestHeaders and ResponseHeaders change the fields of the request sent on
	// and of the answer returned. With Pool only.
	RequestHeaders  *HeaderRules `json:"request_headers"`
	ResponseHeaders *HeaderRules `json:"response_headers"`
	// Redirect answers with a redirect.
	Redirect *Redirect `json:"redirect"`
	// Respond answers with a fixed status and body.
	Respond *Respond `json:"respond"`
}

// RouteMatch is what a route asks of a request. Every field given must hold; an empty
// match holds for every request.
type RouteMatch struct {
	// Host is an exact host name, or "*." and a suffix matching one or more labels;
	// compared without case, the port ignored.
	Host string `json:"host"`
	// Path is the exact path; PathPrefix a plain string prefix. At most one is given.
	Path       string `json:"path"`
	PathPrefix string `json:"path_prefix"`
	// Methods lists the methods that match.
	Methods []string `json:"methods"`
	// Headers are fields the request must carry with exactly these values; names
	// without case.
	Headers map[string]string `json:"headers"`
}

// HeaderRules set and remove header fields. Hop-by-hop and framing fields may not be
// named.
type HeaderRules struct {
	Set    map[string]string `json:"set"`
	Remove []string          `json:"remove"`
}

// Redirect answers a route's requests with a redirect to To, in which {host}, {path}
// and {uri} (the path and query) are the request's.
type Redirect struct {
	To string `json:"to"`
	// Status is 301, 302, 307 or 308 (default 308).
	Status int `json:"status"`
}

// redirectFields has Redirect's fields without its unmarshaler.
type redirectFields Redirect

// Respond answers a route's requests with Status and Body.
type Respond struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	// ContentType of the body (default "text/plain; charset=utf-8").
	ContentType string `json:"content_type"`
}

// respondFields has Respond's fields without its unmarshaler.
type respondFields Respond

// EffectivePool is a pool as the load balancer runs it: its own settings, with what
// it left out taken from the top level.
type EffectivePool struct {
	Name        string
	Backends    []Backend
	Discovery   *Discovery
	Strategy    string
	HealthCheck HealthCheck
	Retries     int
	// CA and TLSSkipVerify verify the pool's https backends (see BackendTLS).
	CA            string
	TLSSkipVerify bool
}

// PoolNames lists the pools: "default" first, then the keys of pools in sorted order.
func (c *Config) PoolNames() []string {
	names := make([]string, 0, 1+len(c.Pools))
	for name := range c.Pools {
		names = append(names, name)
	}
	slices.Sort(names)
	return append([]string{DefaultPool}, names...)
}

// Pool returns the pool called name as it runs, and whether there is one.
func (c *Config) Pool(name string) (EffectivePool, bool) {
	lb := &c.LoadBalancer
	if name == DefaultPool {
		return EffectivePool{Name: name, Backends: c.Servers.Backends, Discovery: c.Servers.Discovery,
			Strategy: lb.Strategy, HealthCheck: c.HealthCheck, Retries: lb.Retries,
			CA: c.Servers.CA, TLSSkipVerify: c.Servers.TLSSkipVerify}, true
	}
	p, ok := c.Pools[name]
	if !ok {
		return EffectivePool{}, false
	}
	e := EffectivePool{Name: name, Backends: p.Backends, Discovery: p.Discovery, Strategy: p.Strategy,
		HealthCheck: c.HealthCheck, Retries: lb.Retries, CA: p.CA, TLSSkipVerify: p.TLSSkipVerify}
	if e.Strategy == "" {
		e.Strategy = lb.Strategy
	}
	if p.Retries != nil {
		e.Retries = *p.Retries
	}
	if o := p.HealthCheck; o != nil {
		hc := &e.HealthCheck
		set(&hc.Path, o.Path)
		set(&hc.Interval, o.Interval)
		set(&hc.Timeout, o.Timeout)
		set(&hc.HealthyThreshold, o.HealthyThreshold)
		set(&hc.UnhealthyThreshold, o.UnhealthyThreshold)
		set(&hc.GRPC, o.GRPC)
		if po := o.Passive; po != nil {
			set(&hc.Passive.ConsecutiveFailures, po.ConsecutiveFailures)
			set(&hc.Passive.EjectionTime, po.EjectionTime)
		}
	}
	return e, true
}

// set replaces *dst with *v when v is given.
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// RefusesFor reports whether the strategy called name fails closed: its plugins entry
// says "on_failure": "refuse".
func (c *Config) RefusesFor(name string) bool {
	return c.Plugins[name].OnFailure == OnFailureRefuse
}

// DefaultContentType is the content type of a route's respond body when it names
// none.
const DefaultContentType = "text/plain; charset=utf-8"

// UnmarshalJSONFrom reads a redirect, with status 308 when it is not given.
func (r *Redirect) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	f := redirectFields{Status: 308}
	if err := json.UnmarshalDecode(dec, &f); err != nil {
		return err
	}
	*r = Redirect(f)
	return nil
}

// UnmarshalJSONFrom reads a respond action, with the default content type when it
// is not given.
func (r *Respond) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	f := respondFields{ContentType: DefaultContentType}
	if err := json.UnmarshalDecode(dec, &f); err != nil {
		return err
	}
	*r = Respond(f)
	return nil
}
