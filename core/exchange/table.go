package exchange

import (
	"bytes"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/h1"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// Upstream is one pool of backends (DESIGN section 4.1): its backend set and its own
// strategy, and what its requests may do on failure. The worker pool that admits
// requests is the Proxy's, shared by every Upstream.
//
// An Upstream is safe for use by multiple goroutines; its picker and retries may be
// replaced while requests are served.
type Upstream struct {
	// Name is the pool's name, as status, metrics and the access log show it.
	Name     string
	backends *backend.Set
	picker   atomic.Pointer[pickerBox]
	retries  atomic.Int64
	tls      atomic.Pointer[BackendTLS]
}

// NewUpstream returns the pool called name over backends, picked by picker.
func NewUpstream(name string, backends *backend.Set, picker strategy.Picker, retries int) *Upstream {
	u := &Upstream{Name: name, backends: backends}
	u.SetPicker(picker)
	u.SetRetries(retries)
	return u
}

// Backends is the pool's backend set.
func (u *Upstream) Backends() *backend.Set { return u.backends }

// Picker returns the pool's picker now.
func (u *Upstream) Picker() strategy.Picker { return u.picker.Load().Picker }

// SetPicker makes pk choose the pool's backends from now on.
func (u *Upstream) SetPicker(pk strategy.Picker) { u.picker.Store(&pickerBox{pk}) }

// Retries is how many more backends a failed request of the pool may try.
func (u *Upstream) Retries() int { return int(u.retries.Load()) }

// SetRetries sets Retries.
func (u *Upstream) SetRetries(n int) { u.retries.Store(int64(n)) }

// Action is what a route does with the requests it matches.
type Action uint8

// The actions of a route.
const (
	ToPool     Action = iota // send the request to the route's Upstream
	DoRedirect               // answer with a redirect
	DoRespond                // answer with a fixed status and body
	NoRoute                  // no route matched and default has no backends: 404
)

// Route is one route of a Table, compiled: its action and what goes with it.
type Route struct {
	// Index is the route's place in config.json's routes, -1 for a request that
	// matched none.
	Index  int
	Action Action
	// Upstream serves the requests of a ToPool route.
	Upstream *Upstream
	// StripPrefix is removed from the start of the path before the request goes on.
	StripPrefix string
	// Request and Response are the header rules of a ToPool route.
	Request, Response HeaderRules
	// Redirect is the location template and status of a DoRedirect route.
	Redirect Redirect
	// Reply is the answer of a DoRespond route.
	Reply Reply
}

// Pool is the name of the pool that serves the route's requests, "" when the proxy
// answers them itself.
func (r *Route) Pool() string {
	if r.Upstream == nil {
		return ""
	}
	return r.Upstream.Name
}

// RouteSpec is a route as a Table is built from it.
type RouteSpec struct {
	Match Match
	Route Route
}

// Table is one generation of the routes: a Router over their matches, and what a
// request that matches none gets (the default pool, or 404 no_route). A Table is
// read-only once built and shared by every request routed by it; a request keeps the
// Upstream its route named to its end, whatever table replaces this one meanwhile.
type Table struct {
	// Gen is the table's generation, which the processes of the load balancer
	// switch to together (see Proxy.Commit).
	Gen      uint64
	router   *Router
	routes   []Route
	fallback Route
}

// NewTable builds the table of generation gen: routes in order, and def, the default
// pool, for requests that match none (nil: they get 404 no_route).
func NewTable(gen uint64, routes []RouteSpec, def *Upstream) *Table {
	t := &Table{Gen: gen, fallback: Route{Index: -1, Action: NoRoute}}
	if def != nil {
		t.fallback = Route{Index: -1, Action: ToPool, Upstream: def}
	}
	matches := make([]Match, len(routes))
	t.routes = make([]Route, len(routes))
	for i, r := range routes {
		matches[i] = r.Match
		t.routes[i] = r.Route
		t.routes[i].Index = i
	}
	t.router = NewRouter(matches)
	return t
}

// Route returns the route of a request: the first whose match holds, else the
// fallback. host is the host the request goes on with (its absolute target's
// authority, else its Host field); path is the path of its target, without the query.
func (t *Table) Route(method, host, path []byte, h HeaderPeeker) *Route {
	if i := t.router.Route(method, host, path, h); i >= 0 {
		return &t.routes[i]
	}
	return &t.fallback
}

// Default is the route of a request that matches no route.
func (t *Table) Default() *Route { return &t.fallback }

// Field is one header field a rule sets.
type Field struct {
	Name, Value string
	lower       string
}

// HeaderRules are a route's changes to the fields of a request or an answer: the
// fields called one of Remove, or one of Set's names, are dropped, then Set's are
// added. Hop-by-hop and framing fields are never named (config validation refuses
// them).
type HeaderRules struct {
	Set    []Field
	Remove []string // lower case
}

// NewHeaderRules compiles set and remove.
func NewHeaderRules(set map[string]string, remove []string) HeaderRules {
	var hr HeaderRules
	for name, value := range set {
		hr.Set = append(hr.Set, Field{Name: textproto.CanonicalMIMEHeaderKey(name), Value: value, lower: strings.ToLower(name)})
	}
	// Fields go out in one order whatever the map's.
	for i := 1; i < len(hr.Set); i++ {
		for j := i; j > 0 && hr.Set[j].lower < hr.Set[j-1].lower; j-- {
			hr.Set[j], hr.Set[j-1] = hr.Set[j-1], hr.Set[j]
		}
	}
	for _, name := range remove {
		hr.Remove = append(hr.Remove, strings.ToLower(name))
	}
	return hr
}

// Empty reports whether the rules change nothing.
func (hr *HeaderRules) Empty() bool { return len(hr.Set) == 0 && len(hr.Remove) == 0 }

// Drops reports whether the field called name leaves: removed, or replaced by Set.
func (hr *HeaderRules) Drops(name []byte) bool {
	for i := range hr.Remove {
		if h1.EqualFold(name, hr.Remove[i]) {
			return true
		}
	}
	for i := range hr.Set {
		if h1.EqualFold(name, hr.Set[i].lower) {
			return true
		}
	}
	return false
}

// AppendSet appends Set's fields as HTTP/1.1 writes them.
func (hr *HeaderRules) AppendSet(dst []byte) []byte {
	for _, f := range hr.Set {
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// Strip is target with the route's StripPrefix taken off its path; the query stays,
// and "/" remains at least. A target whose path does not start with the prefix is
// returned as it is.
func (r *Route) Strip(dst, target []byte) []byte {
	p := r.StripPrefix
	if p == "" || !bytes.HasPrefix(target, []byte(p)) {
		return append(dst, target...)
	}
	rest := target[len(p):]
	if len(rest) == 0 || rest[0] != '/' {
		dst = append(dst, '/')
	}
	return append(dst, rest...)
}

// Redirect is a redirect's location template and status.
type Redirect struct {
	Status int
	parts  []redirectPart
}

// redirectPart is a piece of a location: text, or a request's part.
type redirectPart struct {
	text string
	hole byte // 0: text; 'h' host, 'p' path, 'u' path and query
}

// NewRedirect compiles the location template to, in which {host}, {path} and {uri}
// stand for the request's host, path, and path and query.
func NewRedirect(to string, status int) Redirect {
	rd := Redirect{Status: status}
	for to != "" {
		i := strings.IndexByte(to, '{')
		if i < 0 {
			rd.parts = append(rd.parts, redirectPart{text: to})
			break
		}
		hole := byte(0)
		switch {
		case strings.HasPrefix(to[i:], "{host}"):
			hole = 'h'
		case strings.HasPrefix(to[i:], "{path}"):
			hole = 'p'
		case strings.HasPrefix(to[i:], "{uri}"):
			hole = 'u'
		}
		if hole == 0 { // not a placeholder (validation refuses unknown ones)
			rd.parts = append(rd.parts, redirectPart{text: to[:i+1]})
			to = to[i+1:]
			continue
		}
		if i > 0 {
			rd.parts = append(rd.parts, redirectPart{text: to[:i]})
		}
		rd.parts = append(rd.parts, redirectPart{hole: hole})
		to = to[strings.IndexByte(to[i:], '}')+i+1:]
	}
	return rd
}

// AppendLocation appends the location for a request with host (its port kept) and
// target (origin form: path and query).
func (rd *Redirect) AppendLocation(dst, host, target []byte) []byte {
	path := target
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for _, p := range rd.parts {
		switch p.hole {
		case 0:
			dst = append(dst, p.text...)
		case 'h':
			dst = append(dst, host...)
		case 'p':
			dst = append(dst, path...)
		case 'u':
			dst = append(dst, target...)
		}
	}
	return dst
}

// Reply is an answer a route makes itself: status, content type and body.
type Reply struct {
	Status      int
	ContentType string
	Body        []byte
}

// AppendHTTP1 appends the reply as HTTP/1.1 sends it, with location when it is a
// redirect; head leaves the body out (a HEAD request). connection is the value of
// the Connection field to send ("close", "keep-alive" to an HTTP/1.0 client that
// keeps its connection), "" for none. A 204 or 304 has no body and no
// Content-Length.
func (rp *Reply) AppendHTTP1(dst, location []byte, head bool, connection string) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(rp.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(rp.Status)...)
	dst = append(dst, "\r\n"...)
	if len(location) > 0 {
		dst = append(dst, "Location: "...)
		dst = append(dst, location...)
		dst = append(dst, "\r\n"...)
	}
	if rp.ContentType != "" && len(rp.Body) > 0 {
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, rp.ContentType...)
		dst = append(dst, "\r\n"...)
	}
	if !rp.Bodiless() {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(rp.Body)), 10)
		dst = append(dst, "\r\n"...)
	}
	if connection != "" {
		dst = append(dst, "Connection: "...)
		dst = append(dst, connection...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	if !head && !rp.Bodiless() {
		dst = append(dst, rp.Body...)
	}
	return dst
}

// Bodiless reports whether the reply's status allows no body (204, 304): it is sent
// without one, and without Content-Length.
func (rp *Reply) Bodiless() bool { return rp.Status == 204 || rp.Status == 304 }

// NoRouteAnswer is the answer to a request that matched no route when default has no
// backends.
var NoRouteAnswer = Answer{404, CodeNoRoute, "no route matches the request", false}

// Upstreams lists the pools the table routes to, each once: default (when it has
// backends) first, then those of the routes in order.
func (t *Table) Upstreams() []*Upstream {
	var out []*Upstream
	add := func(u *Upstream) {
		if u == nil {
			return
		}
		for _, o := range out {
			if o == u {
				return
			}
		}
		out = append(out, u)
	}
	add(t.fallback.Upstream)
	for i := range t.routes {
		add(t.routes[i].Upstream)
	}
	return out
}
