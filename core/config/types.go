package config

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Duration is a time.Duration written in config.json as a Go duration string ("1.5s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as a Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return strconv.AppendQuote(nil, d.String()), nil }

// UnmarshalJSONFrom reads a duration string such as "500ms" or "2s".
func (d *Duration) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var s string
	if err := json.UnmarshalDecode(dec, &s); err != nil {
		return errors.New(`want a duration string such as "2s" or "500ms"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use a Go duration such as \"2s\" or \"500ms\")", s)
	}
	*d = Duration(v)
	return nil
}

// Port is a TCP port written as a number (8000) or a string ("8000").
type Port int

// MarshalJSON writes p as a string, as the seed's config.json does.
func (p Port) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, strconv.Itoa(int(p))), nil
}

// UnmarshalJSONFrom reads a port given as a number or a string.
func (p *Port) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	s := string(v)
	if v.Kind() == '"' {
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s is not a port (want 1 to 65535, as a number or a string)", v)
	}
	*p = Port(n)
	return nil
}

// backendFields has Backend's fields without its unmarshaler.
type backendFields Backend

// UnmarshalJSONFrom reads a backend, with weight 1 when it is not given.
func (b *Backend) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	f := backendFields{Weight: 1}
	if err := json.UnmarshalDecode(dec, &f); err != nil {
		return err
	}
	*b = Backend(f)
	return nil
}

// discoveryFields has Discovery's fields without its unmarshaler.
type discoveryFields Discovery

// UnmarshalJSONFrom reads a discovery section, filling its defaults.
func (d *Discovery) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	f := discoveryFields{Interval: Duration(5 * time.Second), Scheme: "http", Weight: 1}
	if err := json.UnmarshalDecode(dec, &f); err != nil {
		return err
	}
	*d = Discovery(f)
	return nil
}

// Addrs is a list of host:port addresses, written in config.json as a list of strings
// or, for one, as a string ("" for none).
type Addrs []string

// UnmarshalJSONFrom reads a string or a list of strings. An empty list stays
// non-nil, for validation to refuse.
func (a *Addrs) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case '"':
		var s string
		if err := json.UnmarshalDecode(dec, &s); err != nil {
			return err
		}
		*a = nil
		if s != "" {
			*a = Addrs{s}
		}
		return nil
	case '[':
		var l []string
		if err := json.UnmarshalDecode(dec, &l); err != nil {
			return errors.New(`want "host:port" or a list of them`)
		}
		*a = append(Addrs{}, l...)
		return nil
	case 'n':
		_, err := dec.ReadValue()
		*a = nil
		return err
	}
	_, _ = dec.ReadValue()
	return errors.New(`want "host:port" or a list of them`)
}
