package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Error is a refused configuration: the file, the key (dotted path, "" for the
// document) and, when the key is in the file, the line and column of its value.
type Error struct {
	File string
	Key  string
	Line int // 1-based; 0 when not known
	Col  int // 1-based; 0 when not known
	Msg  string
}

// Error formats e as "file:line:col: key: msg", leaving out what is not known.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Load reads, decodes and validates the configuration at path. bundled names the
// strategies built into the core; any other strategy must be a key of plugins.
func Load(path string, bundled []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("reading: %v", errors.Unwrap(err))}
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(bundled); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes config.json's bytes strictly (unknown keys, duplicate keys and wrong
// types are errors) and fills defaults. It does not validate values; see Validate.
// file names the source in errors.
func Parse(data []byte, file string) (*Config, error) {
	c := defaults()
	c.Path = file
	c.raw = bytes.Clone(data)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: file, Msg: "file is empty (want a JSON object; {} gives every default)"}
	}
	err := json.Unmarshal(data, c, json.RejectUnknownMembers(true))
	if err != nil {
		return nil, decodeError(data, file, err)
	}
	if c.Servers.Backends == nil && c.Servers.Discovery == nil {
		c.Servers.Backends = DefaultBackends()
	}
	if c.LoadBalancer.Engine == engineFastHTTP {
		c.LoadBalancer.Engine = EngineNetHTTP
		c.Warnings = append(c.Warnings, `load_balancer.engine: "fasthttp" is read as "nethttp", the goroutine-per-connection front that replaced it; write "nethttp" (or leave the key out)`)
	}
	return c, nil
}

// engineFastHTTP is the name an older file may give the nethttp front.
const engineFastHTTP = "fasthttp"

// decodeError turns a decoding error into an *Error naming the key, line and column.
func decodeError(data []byte, file string, err error) *Error {
	e := &Error{File: file, Msg: err.Error()}
	var (
		syn *jsontext.SyntacticError
		sem *json.SemanticError
	)
	switch {
	case errors.As(err, &syn):
		e.Key = keyPath(syn.JSONPointer)
		e.Line, e.Col = lineCol(data, syn.ByteOffset)
		e.Msg = "syntax error: " + strings.TrimPrefix(syn.Err.Error(), "jsontext: ")
	case errors.As(err, &sem):
		e.Key = keyPath(sem.JSONPointer)
		e.Line, e.Col = lineCol(data, sem.ByteOffset)
		e.Msg = semanticMessage(sem)
	}
	return e
}

// semanticMessage says what was wrong with a well-formed value, in config.json's terms.
func semanticMessage(sem *json.SemanticError) string {
	switch {
	case errors.Is(sem.Err, json.ErrUnknownName):
		return "unknown key (check its spelling; unknown keys are refused)"
	case sem.Err != nil && sem.GoType == nil:
		return sem.Err.Error()
	case sem.Err != nil && !strings.Contains(sem.Err.Error(), "invalid syntax"):
		return sem.Err.Error()
	}
	want := "a value of another type"
	if sem.GoType != nil {
		want = jsonKind(sem.GoType.Kind().String())
	}
	got := map[jsontext.Kind]string{'"': "a string", '0': "a number", '{': "an object", '[': "a list",
		't': "true", 'f': "false", 'n': "null"}[sem.JSONKind]
	return fmt.Sprintf("got %s, want %s", got, want)
}

// jsonKind names a Go kind as config.json's readers know it.
func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "a whole number"
	case strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "slice":
		return "a list"
	case goKind == "struct", goKind == "map":
		return "an object"
	case goKind == "bool":
		return "true or false"
	}
	return goKind
}

// keyPath turns a JSON pointer ("/servers/backends/1/url") into a dotted key
// ("servers.backends[1].url").
func keyPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// lineCol converts a byte offset in data into a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}
