// Command testplugin is a strategy plugin built from its own module against the sdk,
// as a user would write one. Its options choose a behaviour, so that the core's tests
// can check how the core treats good and bad strategies.
package main

import (
	"encoding/json"
	"errors"
	"log"
	"strconv"

	"github.com/switchyard-lb/switchyard/sdk"
)

type options struct {
	Mode   string `json:"mode"`   // "", "hang", "index99", "panic", "tenant"
	Prefer string `json:"prefer"` // pick this backend URL when offered
	Refuse bool   `json:"refuse"` // refuse the options
}

type strategy struct {
	opts     options
	observed int
}

func (s *strategy) Configure(raw json.RawMessage) error {
	if err := json.Unmarshal(raw, &s.opts); err != nil {
		return err
	}
	if s.opts.Refuse {
		return errors.New("testplugin: options refused")
	}
	log.Printf("testplugin configured: mode=%q prefer=%q options=%s", s.opts.Mode, s.opts.Prefer, raw)
	return nil
}

func (s *strategy) Headers() []string { return []string{"X-Tenant"} }

func (s *strategy) Observe(o sdk.Outcome) {
	s.observed++
	if s.observed%10 == 0 {
		log.Printf("testplugin observed %d outcomes, last from %s with status %d", s.observed, o.URL, o.Status)
	}
}

func (s *strategy) Pick(req *sdk.Request, backends []sdk.Backend) (int, error) {
	switch s.opts.Mode {
	case "hang":
		select {}
	case "index99":
		return 99, nil
	case "panic":
		panic("testplugin: panic in Pick")
	case "tenant":
		i, err := strconv.Atoi(req.Headers["X-Tenant"])
		if err != nil || i < 0 || i >= len(backends) {
			return 0, errors.New("testplugin: no backend for this tenant")
		}
		return i, nil
	}
	for i, b := range backends {
		if b.URL == s.opts.Prefer {
			return i, nil
		}
	}
	return 0, nil
}

func main() { sdk.Serve(&strategy{}) }
