package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// This file checks pools and routes (DESIGN section 4.1).

// pools checks each entry of pools: its name, its backends or discovery, and the
// strategy, health check and retries it gives.
func (v *validator) pools(c *Config, bundled []string) {
	for _, name := range slices.Sorted(maps.Keys(c.Pools)) {
		p := c.Pools[name]
		key := "pools." + name
		if name == DefaultPool {
			v.check(false, key, "is refused: servers is the pool named default (put its backends under servers, or name this pool otherwise)")
			continue
		}
		v.check(validPoolName(name), key, "%q is not a pool name: use letters, digits, '-', '_' and '.' (pool names appear in metrics labels and log fields)", name)
		switch {
		case p.Backends == nil && p.Discovery == nil:
			v.check(false, key, "has no backends and no discovery: give backends, discovery or both")
		case len(p.Backends) == 0 && p.Discovery == nil:
			v.check(false, key+".backends", "is empty: list at least one backend, or give discovery")
		}
		v.backends(key+".backends", p.Backends)
		if p.Discovery != nil {
			v.discovery(key+".discovery", p.Discovery)
		}
		if p.Strategy != "" {
			v.strategyName(key+".strategy", p.Strategy, c, bundled)
		}
		if r := p.Retries; r != nil {
			v.check(*r >= 0 && *r <= 10, key+".retries", "must be from 0 to 10, got %d", *r)
		}
		if o := p.HealthCheck; o != nil {
			e, _ := c.Pool(name)
			v.healthCheck(key+".health_check", e.HealthCheck, o.gives)
		}
	}
}

// validPoolName reports whether name is non-empty and made of letters, digits, '-',
// '_' and '.'.
func validPoolName(name string) bool {
	return name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == ""
}

// gives reports whether o gives the health_check field named as healthCheck names it.
func (o *HealthCheckOverride) gives(field string) bool {
	po := o.Passive
	if po == nil {
		po = &PassiveOverride{}
	}
	return map[string]bool{
		"path": o.Path != nil, "interval": o.Interval != nil, "timeout": o.Timeout != nil,
		"healthy_threshold": o.HealthyThreshold != nil, "unhealthy_threshold": o.UnhealthyThreshold != nil,
		"passive.consecutive_failures": po.ConsecutiveFailures != nil,
		"passive.ejection_time":        po.EjectionTime != nil,
	}[field]
}

// routes checks each route: one action, a pool that exists, a match that can hold,
// header rules that leave the hop-by-hop and framing fields alone.
func (v *validator) routes(c *Config) {
	for i := range c.Routes {
		r := &c.Routes[i]
		key := fmt.Sprintf("routes[%d]", i)
		v.action(c, key, r)
		v.match(key+".match", &r.Match)
		if r.Pool == "" {
			for _, f := range []struct {
				name  string
				given bool
			}{
				{"strip_prefix", r.StripPrefix != ""},
				{"request_headers", r.RequestHeaders != nil},
				{"response_headers", r.ResponseHeaders != nil},
			} {
				v.check(!f.given, key+"."+f.name, "goes with pool only: a route that redirects or responds sends nothing on")
			}
		}
		v.check(r.StripPrefix == "" || strings.HasPrefix(r.StripPrefix, "/"), key+".strip_prefix", "must start with /, got %q", r.StripPrefix)
		v.headerRules(key+".request_headers", r.RequestHeaders)
		v.headerRules(key+".response_headers", r.ResponseHeaders)
		if d := r.Redirect; d != nil {
			v.redirect(key+".redirect", d)
		}
		if a := r.Respond; a != nil {
			v.respond(key+".respond", a)
		}
	}
}

// action checks that route r, under key, names exactly one action, and that its pool
// exists and has backends.
func (v *validator) action(c *Config, key string, r *Route) {
	var given []string
	if r.Pool != "" {
		given = append(given, "pool")
	}
	if r.Redirect != nil {
		given = append(given, "redirect")
	}
	if r.Respond != nil {
		given = append(given, "respond")
	}
	switch len(given) {
	case 0:
		v.check(false, key, "has no action: give one of pool, redirect or respond")
	case 1:
	default:
		v.check(false, key, "has %s: give exactly one action (pool, redirect or respond)", strings.Join(given, " and "))
	}
	if r.Pool == "" {
		return
	}
	if _, ok := c.Pool(r.Pool); !ok {
		v.check(false, key+".pool", "%q is not a pool (pools: %s)", r.Pool, strings.Join(c.PoolNames(), ", "))
		return
	}
	v.check(r.Pool != DefaultPool || len(c.Servers.Backends) > 0 || c.Servers.Discovery != nil, key+".pool",
		"default has no backends (servers.backends is empty): name one of pools")
}

// match checks a route's match under key.
func (v *validator) match(key string, m *RouteMatch) {
	if p := hostProblem(m.Host); m.Host != "" && p != "" {
		v.check(false, key+".host", "%s", p)
	}
	v.check(m.Path == "" || m.PathPrefix == "", key, "has both path and path_prefix: give one (path is exact, path_prefix a prefix)")
	v.check(m.Path == "" || strings.HasPrefix(m.Path, "/"), key+".path", "must start with /, got %q", m.Path)
	v.check(m.PathPrefix == "" || strings.HasPrefix(m.PathPrefix, "/"), key+".path_prefix", "must start with /, got %q", m.PathPrefix)
	for i, meth := range m.Methods {
		k := fmt.Sprintf("%s.methods[%d]", key, i)
		up := strings.ToUpper(meth)
		switch {
		case !isToken(meth):
			v.check(false, k, "%q is not a method (an HTTP token, such as GET)", meth)
		case up != meth && slices.Contains(standardMethods, up):
			v.check(false, k, "%q never matches: methods are case-sensitive; write %q", meth, up)
		}
	}
	v.fields(key+".headers", m.Headers)
}

// standardMethods are the methods of RFC 9110 and RFC 5789 (PATCH).
var standardMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// hostProblem says what is wrong with a route's host, "" when nothing is: a host
// name of non-empty labels, without port, whose first label may be "*".
func hostProblem(host string) string {
	labels := strings.Split(host, ".")
	switch {
	case strings.Contains(host, ":"):
		return fmt.Sprintf("%q: give the host name without a port (the port is ignored)", host)
	case host == "*" || host == "*.":
		return fmt.Sprintf("%q: \"*.\" must be followed by at least one label, as in \"*.example.com\"", host)
	}
	for i, l := range labels {
		switch {
		case l == "":
			return fmt.Sprintf("%q has an empty label", host)
		case l == "*" && i == 0:
		case strings.Contains(l, "*"):
			return fmt.Sprintf("%q: '*' may only be the whole first label, as in \"*.example.com\"", host)
		case strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "":
			return fmt.Sprintf("%q: a host name is letters, digits, '-' and '_' between dots", host)
		}
	}
	return ""
}

// fields checks header fields given as name: value under key (a route's match
// headers, or the set of header rules): valid names, each named once whatever its
// case, values without CR, LF or NUL.
func (v *validator) fields(key string, fs map[string]string) {
	seen := make(map[string]string, len(fs))
	for _, name := range slices.Sorted(maps.Keys(fs)) {
		k := key + "." + name
		v.check(isToken(name), k, "%q is not a header field name", name)
		v.check(!strings.ContainsAny(fs[name], "\r\n\x00"), k, "%s: the value must not hold CR, LF or NUL", name)
		lower := strings.ToLower(name)
		if first, dup := seen[lower]; dup {
			v.check(false, k, "names the same field as %s (field names are case-insensitive): give it once", first)
		}
		seen[lower] = name
	}
}

// headerRules checks a route's request_headers or response_headers under key: the
// fields set and removed are valid names, none hop-by-hop or framing, and the values
// set are valid values.
func (v *validator) headerRules(key string, h *HeaderRules) {
	if h == nil {
		return
	}
	v.fields(key+".set", h.Set)
	for name := range h.Set {
		if why := reservedField(name); why != "" {
			v.check(false, key+".set."+name, "%s", why)
		}
	}
	for i, name := range h.Remove {
		k := fmt.Sprintf("%s.remove[%d]", key, i)
		v.check(isToken(name), k, "%q is not a header field name", name)
		if why := reservedField(name); why != "" {
			v.check(false, k, "%s", why)
		}
		for set := range h.Set {
			v.check(!strings.EqualFold(set, name), k, "%s is also set: a route sets a field or removes it, not both", name)
		}
	}
}

// reservedFields are the fields a route may not set or remove, by lower-case name,
// with why: the proxy writes them for each hop (RFC 9110 section 7.6.1), they frame
// the message, which the proxy alone may decide, or the proxy sets them itself so
// that a backend can trust them (DESIGN section 11).
var reservedFields = map[string]string{
	"connection":          "Connection is a hop-by-hop header",
	"keep-alive":          "Keep-Alive is a hop-by-hop header",
	"proxy-connection":    "Proxy-Connection is a hop-by-hop header",
	"proxy-authenticate":  "Proxy-Authenticate is a hop-by-hop header",
	"proxy-authorization": "Proxy-Authorization is a hop-by-hop header",
	"te":                  "TE is a hop-by-hop header",
	"trailer":             "Trailer is a hop-by-hop header",
	"upgrade":             "Upgrade is a hop-by-hop header",
	"transfer-encoding":   "Transfer-Encoding is a framing header",
	"content-length":      "Content-Length is a framing header",
	"host":                "Host names the request's target, which routing has already read",
	"forwarded":           "Forwarded is the proxy's own to set",
	"x-forwarded-for":     "X-Forwarded-For is the proxy's own to set",
	"x-forwarded-host":    "X-Forwarded-Host is the proxy's own to set",
	"x-forwarded-proto":   "X-Forwarded-Proto is the proxy's own to set",
}

// reservedField says why a route may not name the field, "" when it may.
func reservedField(name string) string {
	if why, ok := reservedFields[strings.ToLower(name)]; ok {
		return why + ": a route may not set or remove it"
	}
	return ""
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), as a method
// or a field name is.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// redirectStatuses are the statuses a redirect may answer with.
var redirectStatuses = []int{301, 302, 307, 308}

// redirect checks a route's redirect under key: a target whose placeholders are
// known, and a redirect status.
func (v *validator) redirect(key string, d *Redirect) {
	switch {
	case d.To == "":
		v.check(false, key+".to", "must name where to redirect, such as \"https://example.com{uri}\"")
	case strings.ContainsAny(d.To, "\r\n\x00"):
		v.check(false, key+".to", "must not hold CR, LF or NUL")
	default:
		if p := placeholderProblem(d.To); p != "" {
			v.check(false, key+".to", "%s", p)
		}
	}
	v.check(slices.Contains(redirectStatuses, d.Status), key+".status", "must be 301, 302, 307 or 308, got %d", d.Status)
}

// placeholders are what a redirect's to may hold: the request's host, its path, and
// its path and query.
var placeholders = []string{"{host}", "{path}", "{uri}"}

// placeholderProblem says what is wrong with the placeholders of a redirect's to, ""
// when nothing is.
func placeholderProblem(to string) string {
	for rest := to; ; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			return ""
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return fmt.Sprintf("%q: a '{' is not closed (placeholders: %s)", to, strings.Join(placeholders, ", "))
		}
		if p := rest[open : open+end+1]; !slices.Contains(placeholders, p) {
			return fmt.Sprintf("%q: unknown placeholder %s (placeholders: %s)", to, p, strings.Join(placeholders, ", "))
		}
		rest = rest[open+end+1:]
	}
}

// respond checks a route's respond under key: a final status, a body the status may
// carry, a content type.
func (v *validator) respond(key string, a *Respond) {
	switch {
	case a.Status >= 100 && a.Status <= 199:
		v.check(false, key+".status", "%d is informational: an informational answer cannot end a request (use 200 to 599)", a.Status)
	case a.Status < 200 || a.Status > 599:
		v.check(false, key+".status", "must be from 200 to 599, got %d", a.Status)
	case a.Body != "" && (a.Status == 204 || a.Status == 304):
		v.check(false, key+".body", "a %d answer has no body (RFC 9110 section 6.4.1): leave body out or use another status", a.Status)
	}
	v.check(a.ContentType != "", key+".content_type", "must not be empty (leave it out for %q)", DefaultContentType)
	v.check(!strings.ContainsAny(a.ContentType, "\r\n\x00"), key+".content_type", "must not hold CR, LF or NUL")
}
