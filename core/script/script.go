// Package script runs strategies written in Starlark (DESIGN section 6.1): a .star
// file that defines pick, and optionally configure, observe and HEADERS. The
// strategy runs inside a plugin process like the bundled ones, and reloads its file
// when it is saved; the core checks each version with Check to report refusals.
package script

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	starjson "go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/switchyard-lb/switchyard/plugins/leastconn"
	"github.com/switchyard-lb/switchyard/sdk"
)

// Ext is the file extension of Starlark strategies.
const Ext = ".star"

// Step budgets: a call that runs longer (a runaway loop) fails. Loading may build
// tables; a pick or an observe must be quick.
const (
	loadSteps = 10_000_000
	callSteps = 200_000
)

// fileOptions are the dialect: Starlark's defaults (no while, no recursion) plus
// sets and if/for at the top level.
var fileOptions = &syntax.FileOptions{Set: true, TopLevelControl: true}

// version is one loaded version of a script.
type version struct {
	pick    starlark.Callable
	observe starlark.Callable // nil when the script defines none
	headers []string
}

// Check loads src, the content of the script at path, as a new strategy would with
// options, and returns what keeps it from picking: a syntax or name error, no pick,
// HEADERS that are not strings, configure refusing the options. Errors carry
// file:line:col.
func Check(path string, src []byte, options json.RawMessage) error {
	_, err := load(path, src, options, newState(), func(string) {})
	return err
}

// load compiles and runs src, checks its shape and configures it with options.
func load(path string, src []byte, options json.RawMessage, st *state, print func(string)) (*version, error) {
	name := filepath.Base(path)
	thread := &starlark.Thread{Name: name, Print: func(_ *starlark.Thread, msg string) { print(msg) }}
	thread.SetMaxExecutionSteps(loadSteps)
	globals, err := starlark.ExecFileOptions(fileOptions, thread, path, src, predeclared(st))
	if err != nil {
		return nil, explain(err)
	}
	v := &version{}
	pick, ok := globals["pick"].(*starlark.Function)
	if !ok {
		return nil, fmt.Errorf("%s: defines no function pick(req, backends)", path)
	}
	if pick.NumParams() != 2 {
		return nil, fmt.Errorf("%s: pick takes %d parameters, want 2 (req, backends)", pick.Position(), pick.NumParams())
	}
	v.pick = pick
	if obs, ok := globals["observe"].(*starlark.Function); ok {
		if obs.NumParams() != 1 {
			return nil, fmt.Errorf("%s: observe takes %d parameters, want 1 (outcome)", obs.Position(), obs.NumParams())
		}
		v.observe = obs
	}
	if v.headers, err = headers(path, globals["HEADERS"]); err != nil {
		return nil, err
	}
	if configure, ok := globals["configure"].(*starlark.Function); ok {
		opts, err := decodeOptions(thread, options)
		if err != nil {
			return nil, fmt.Errorf("%s: options: %w", path, err)
		}
		if _, err := starlark.Call(thread, configure, starlark.Tuple{opts}, nil); err != nil {
			return nil, explain(err)
		}
	}
	return v, nil
}

// predeclared are the names every script sees besides Starlark's builtins.
func predeclared(st *state) starlark.StringDict {
	return starlark.StringDict{"state": st, "least": leastBuiltin, "fail": failBuiltin}
}

// headers reads HEADERS: absent, or a list or tuple of header names.
func headers(path string, v starlark.Value) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	var seq starlark.Indexable
	switch l := v.(type) {
	case *starlark.List:
		seq = l
	case starlark.Tuple:
		seq = l
	default:
		return nil, fmt.Errorf("%s: HEADERS is a %s, want a list of header names", path, v.Type())
	}
	out := make([]string, seq.Len())
	for i := range out {
		s, ok := starlark.AsString(seq.Index(i))
		if !ok || s == "" {
			return nil, fmt.Errorf("%s: HEADERS[%d] is %s, want a header name", path, i, seq.Index(i))
		}
		out[i] = s
	}
	return out, nil
}

// decodeOptions turns config.json's options into Starlark values (None when absent).
func decodeOptions(thread *starlark.Thread, options json.RawMessage) (starlark.Value, error) {
	if len(options) == 0 || string(options) == "null" {
		return starlark.None, nil
	}
	return starlark.Call(thread, starjson.Module.Members["decode"], starlark.Tuple{starlark.String(options)}, nil)
}

// explain formats a Starlark error as file:line:col: message, the position being
// the innermost one in the script.
func explain(err error) error {
	var eval *starlark.EvalError
	if !errors.As(err, &eval) {
		return err // syntax and resolve errors read file:line:col: msg already
	}
	msg := strings.TrimPrefix(eval.Msg, "fail: ")
	for i := range eval.CallStack {
		if pos := eval.CallStack.At(i).Pos; pos.IsValid() && pos.Filename() != "<builtin>" {
			return fmt.Errorf("%s: %s", pos, msg)
		}
	}
	return errors.New(msg)
}

// declined is what fail() raises: the strategy says no backend suits the request.
type declined struct{ msg string }

func (d *declined) Error() string { return d.msg }

// failBuiltin is Starlark's fail, made recognizable: a pick that calls it declines
// the request (503 with the message) instead of failing.
var failBuiltin = starlark.NewBuiltin("fail", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) > 0 {
		return nil, errors.New("fail: unexpected keyword arguments")
	}
	parts := make([]string, len(args))
	for i, a := range args {
		if s, ok := starlark.AsString(a); ok {
			parts[i] = s
		} else {
			parts[i] = a.String()
		}
	}
	return nil, &declined{msg: strings.Join(parts, " ")}
})

// leastBuiltin is least(backends): the index leastconn would pick among backends,
// the sequence pick received or a list of some of its elements.
var leastBuiltin = starlark.NewBuiltin("least", func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 1 || len(kwargs) != 0 {
		return nil, fmt.Errorf("%s: takes exactly one argument, the backends", fn.Name())
	}
	lc, _ := thread.Local(leastKey).(*leastconn.Strategy)
	if lc == nil {
		return nil, fmt.Errorf("%s: only pick may call it", fn.Name())
	}
	var bs []sdk.Backend
	switch v := args[0].(type) {
	case *backendList:
		bs = v.bs
	case starlark.Indexable:
		bs = make([]sdk.Backend, v.Len())
		for i := range bs {
			b, ok := v.Index(i).(*backendValue)
			if !ok {
				return nil, fmt.Errorf("%s: element %d is a %s, want a backend", fn.Name(), i, v.Index(i).Type())
			}
			bs[i] = *b.b
		}
	default:
		return nil, fmt.Errorf("%s: got %s, want backends", fn.Name(), args[0].Type())
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("%s: no backends", fn.Name())
	}
	i, err := lc.Pick(nil, bs)
	if err != nil {
		return nil, err
	}
	return starlark.MakeInt(i), nil
})

// leastKey is the thread-local of the leastconn strategy that least uses.
const leastKey = "least"
