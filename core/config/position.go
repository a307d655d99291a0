package config

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
)

// Position returns the 1-based line and column at which the value of key (a dotted
// key such as "routes[2].request_headers.set.Connection") starts in the file c was
// parsed from; 0, 0 when key is not in the file (a default, or a config built in
// code).
func (c *Config) Position(key string) (line, col int) {
	off, ok := offsets(c.raw)[key]
	if !ok {
		return 0, 0
	}
	return lineCol(c.raw, off)
}

// locate fills in the line and column of each *Error in errs whose key is in data.
func locate(data []byte, errs []error) {
	if len(data) == 0 || len(errs) == 0 {
		return
	}
	offs := offsets(data)
	for _, err := range errs {
		var e *Error
		if !errors.As(err, &e) || e.Line > 0 {
			continue
		}
		if off, ok := offs[e.Key]; ok {
			e.Line, e.Col = lineCol(data, off)
		}
	}
}

// offsets maps the dotted key of every value in the JSON document data to the byte
// offset where the value starts. Keys are written as Validate and keyPath write them:
// member names joined by ".", list indexes as "[i]". A malformed document gives the
// keys read before the fault.
func offsets(data []byte) map[string]int64 {
	out := make(map[string]int64)
	if len(data) == 0 {
		return out
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	_ = walk(dec, data, "", out)
	return out
}

// walk records the offset of the value dec is at, under key, then of every value
// inside it.
func walk(dec *jsontext.Decoder, data []byte, key string, out map[string]int64) error {
	out[key] = valueStart(data, dec.InputOffset())
	switch dec.PeekKind() {
	case '{':
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		for dec.PeekKind() != '}' {
			name, err := dec.ReadToken()
			if err != nil {
				return err
			}
			if err := walk(dec, data, join(key, name.String()), out); err != nil {
				return err
			}
		}
		_, err := dec.ReadToken()
		return err
	case '[':
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		for i := 0; dec.PeekKind() != ']'; i++ {
			if err := walk(dec, data, fmt.Sprintf("%s[%d]", key, i), out); err != nil {
				return err
			}
		}
		_, err := dec.ReadToken()
		return err
	}
	return dec.SkipValue()
}

// valueStart skips, from off, what may stand between the previous token and the next
// value: white space, the ':' after a member name and the ',' between values.
func valueStart(data []byte, off int64) int64 {
	for off < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n:,"), data[off]) >= 0 {
		off++
	}
	return off
}
