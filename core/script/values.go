package script

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/sdk"
)

// state is the script's `state`: a dict that lives as long as the strategy, across
// picks and reloads. It is never frozen, even when a script's top level keeps a
// reference to it (Starlark freezes a module's globals once it has run).
type state struct{ *starlark.Dict }

func newState() *state { return &state{starlark.NewDict(8)} }

// Freeze leaves the state mutable.
func (*state) Freeze() {}

// Type is "state": a dict in all but name, which keeps comparisons with dicts (a
// different type) well defined.
func (*state) Type() string { return "state" }

// request is the `req` a pick sees: its fields are read from the sdk's Request when
// the script asks for them. They are .method, .host, .path, .remote_addr, .pool
// (the pool the request was routed to, "default" when none is named) and .headers
// (the declared headers, keys lower-cased).
type request struct {
	r       *sdk.Request
	headers *starlark.Dict // built on first use, per pick
}

var requestAttrs = []string{"headers", "host", "method", "path", "pool", "remote_addr"}

func (r *request) String() string        { return fmt.Sprintf("<request %s %s>", r.r.Method, r.r.Path) }
func (r *request) Type() string          { return "request" }
func (r *request) Freeze()               {}
func (r *request) Truth() starlark.Bool  { return true }
func (r *request) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: request") }
func (r *request) AttrNames() []string   { return requestAttrs }

// Attr returns one field of the request.
func (r *request) Attr(name string) (starlark.Value, error) {
	switch name {
	case "method":
		return starlark.String(r.r.Method), nil
	case "host":
		return starlark.String(r.r.Host), nil
	case "path":
		return starlark.String(r.r.Path), nil
	case "remote_addr":
		return starlark.String(r.r.RemoteAddr), nil
	case "pool":
		if r.r.Pool == "" { // a core older than pools has the one pool
			return starlark.String(config.DefaultPool), nil
		}
		return starlark.String(r.r.Pool), nil
	case "headers":
		if r.headers == nil {
			r.headers = starlark.NewDict(len(r.r.Headers))
			for k, v := range r.r.Headers {
				_ = r.headers.SetKey(starlark.String(strings.ToLower(k)), starlark.String(v))
			}
		}
		return r.headers, nil
	}
	return nil, nil
}

// backendList is the `backends` a pick sees: a sequence over the sdk's slice, whose
// elements are made when the script reads them.
type backendList struct {
	bs   []sdk.Backend
	vals []backendValue // the elements, made once per pick size and reused
}

// set points the list at bs for one pick.
func (l *backendList) set(bs []sdk.Backend) {
	l.bs = bs
	if cap(l.vals) < len(bs) {
		l.vals = make([]backendValue, len(bs))
	}
	l.vals = l.vals[:len(bs)]
	for i := range bs {
		l.vals[i].b = &bs[i]
	}
}

func (l *backendList) String() string        { return fmt.Sprintf("<%d backends>", len(l.bs)) }
func (l *backendList) Type() string          { return "backends" }
func (l *backendList) Freeze()               {}
func (l *backendList) Truth() starlark.Bool  { return len(l.bs) > 0 }
func (l *backendList) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: backends") }
func (l *backendList) Len() int              { return len(l.bs) }

// Index returns the backend at i.
func (l *backendList) Index(i int) starlark.Value { return &l.vals[i] }

// Iterate walks the backends in order.
func (l *backendList) Iterate() starlark.Iterator { return &backendIter{l: l} }

type backendIter struct {
	l *backendList
	i int
}

func (it *backendIter) Next(p *starlark.Value) bool {
	if it.i >= len(it.l.bs) {
		return false
	}
	*p = it.l.Index(it.i)
	it.i++
	return true
}

func (it *backendIter) Done() {}

// backendValue is one candidate backend.
type backendValue struct{ b *sdk.Backend }

var backendAttrs = []string{"error_rate", "inflight", "latency_ms", "queue_length", "url", "weight"}

func (v *backendValue) String() string        { return fmt.Sprintf("<backend %s>", v.b.URL) }
func (v *backendValue) Type() string          { return "backend" }
func (v *backendValue) Freeze()               {}
func (v *backendValue) Truth() starlark.Bool  { return true }
func (v *backendValue) Hash() (uint32, error) { return starlark.String(v.b.URL).Hash() }
func (v *backendValue) AttrNames() []string   { return backendAttrs }

// Attr returns one figure of the backend.
func (v *backendValue) Attr(name string) (starlark.Value, error) {
	b := v.b
	switch name {
	case "url":
		return starlark.String(b.URL), nil
	case "weight":
		return starlark.MakeInt(b.Weight), nil
	case "inflight":
		return starlark.MakeInt(b.Inflight), nil
	case "queue_length":
		return starlark.MakeInt(b.QueueLength), nil
	case "latency_ms":
		return starlark.Float(float64(b.Latency.Microseconds()) / 1000), nil
	case "error_rate":
		return starlark.Float(b.ErrorRate), nil
	}
	return nil, nil
}

// outcome is the `outcome` observe sees.
type outcome struct{ o *sdk.Outcome }

var outcomeAttrs = []string{"error", "latency_ms", "status", "url"}

func (o *outcome) String() string        { return fmt.Sprintf("<outcome %s %d>", o.o.URL, o.o.Status) }
func (o *outcome) Type() string          { return "outcome" }
func (o *outcome) Freeze()               {}
func (o *outcome) Truth() starlark.Bool  { return true }
func (o *outcome) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: outcome") }
func (o *outcome) AttrNames() []string   { return outcomeAttrs }

// Attr returns one field of the outcome.
func (o *outcome) Attr(name string) (starlark.Value, error) {
	switch name {
	case "url":
		return starlark.String(o.o.URL), nil
	case "status":
		return starlark.MakeInt(o.o.Status), nil
	case "latency_ms":
		return starlark.Float(float64(o.o.Latency.Microseconds()) / 1000), nil
	case "error":
		return starlark.String(o.o.Err), nil
	}
	return nil, nil
}

// Interface guards
var (
	_ starlark.HasAttrs  = (*request)(nil)
	_ starlark.Indexable = (*backendList)(nil)
	_ starlark.Iterable  = (*backendList)(nil)
	_ starlark.HasAttrs  = (*backendValue)(nil)
	_ starlark.HasAttrs  = (*outcome)(nil)
	_ starlark.HasSetKey = (*state)(nil)
)
