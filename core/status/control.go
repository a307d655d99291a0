package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
)

// Errors of a Controller, which the admin address answers 404 (ErrUnknownBackend,
// ErrUnknownPool), 409 (ErrAmbiguousBackend, see AmbiguousError) and 400 (the
// others).
var (
	ErrUnknownBackend = errors.New("no backend has this URL")
	ErrUnknownPool    = errors.New("no pool has this name")
	// ErrAmbiguousBackend is what an *AmbiguousError is, for errors.Is.
	ErrAmbiguousBackend = errors.New("the URL is in several pools")
	ErrBadState         = errors.New(`state must be "drain" or "ready"`)
	ErrBadWeight        = fmt.Errorf("weight must be 0 to %d", backend.MaxWeight)
)

// AmbiguousError is the error of a Controller asked to change a backend by its URL
// alone (pool "") when the URL is in several pools (DESIGN section 4.1). The admin
// address answers it 409 Conflict with the pools' names, for the caller to ask again
// with "pool". errors.Is(err, ErrAmbiguousBackend) holds for it.
type AmbiguousError struct {
	URL   string   // as the caller gave it
	Pools []string // the pools that have a backend with the URL, default first
}

// Error names the URL and its pools, and says what to do.
func (e *AmbiguousError) Error() string {
	return fmt.Sprintf(`backend %s is in several pools (%s): say which with "pool"`, e.URL, quoteAll(e.Pools))
}

// Unwrap returns ErrAmbiguousBackend.
func (e *AmbiguousError) Unwrap() error { return ErrAmbiguousBackend }

// Controller changes backends at run time, as HAProxy's "set server ... state" and
// "set server ... weight". A backend is named by its pool and its URL (any spelling
// of it, see config.NormalizeURL); pool "" names the one pool that has the URL. Its
// errors are ErrUnknownPool, ErrUnknownBackend, an *AmbiguousError when pool is ""
// and the URL is in several pools, ErrBadState and ErrBadWeight (FindBackend finds
// a backend with those errors).
type Controller interface {
	// SetBackendState drains the backend ("drain": no new requests, those in flight
	// finish) or makes it ready again ("ready": also ends a passive ejection and its
	// backoff).
	SetBackendState(pool, url, state string) error
	// SetBackendWeight sets the weight of the backend (0 to 256; 0 takes it out of
	// the picks), kept across reloads until config.json's weight for it changes.
	SetBackendWeight(pool, url string, weight int) error
}

// FindBackend returns the backend with url of the set whose pool is named pool, or,
// when pool is "", of the one set that has url: a backend as a Controller names it.
// Its errors are ErrUnknownPool, ErrUnknownBackend and *AmbiguousError, which names
// the pools in the order of sets.
func FindBackend(sets []*backend.Set, pool, url string) (*backend.Backend, error) {
	key, err := config.NormalizeURL(url)
	if pool != "" {
		i := slices.IndexFunc(sets, func(set *backend.Set) bool { return set.Pool() == pool })
		if i < 0 {
			return nil, ErrUnknownPool
		}
		if b := backendByKey(sets[i], key); err == nil && b != nil {
			return b, nil
		}
		return nil, ErrUnknownBackend
	}
	if err != nil {
		return nil, ErrUnknownBackend
	}
	var found *backend.Backend
	var in []string // the pools that have url
	for _, set := range sets {
		if b := backendByKey(set, key); b != nil {
			found, in = b, append(in, set.Pool())
		}
	}
	switch {
	case len(in) > 1:
		return nil, &AmbiguousError{URL: url, Pools: in}
	case found == nil:
		return nil, ErrUnknownBackend
	}
	return found, nil
}

// backendByKey is the backend of set whose Key is key, nil when there is none.
func backendByKey(set *backend.Set, key string) *backend.Backend {
	for _, b := range set.Snapshot().All {
		if b.Key == key {
			return b
		}
	}
	return nil
}

// serveBackendState answers POST /backends/state {"url": "...", "state":
// "drain"|"ready"} (and "pool" when the URL is in several pools) with the backend's
// status entry.
func serveBackendState(s *Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			URL   string `json:"url"`
			Pool  string `json:"pool"` // "": the one pool that has URL
			State string `json:"state"`
		}
		if !decodeBody(r, &body) || body.URL == "" {
			writeJSONError(w, http.StatusBadRequest, `body must be {"url": "http://host:port", "state": "drain" or "ready"}, with "pool" when the URL is in several pools`)
			return
		}
		err := ErrUnknownBackend
		if s.Control != nil {
			err = s.Control.SetBackendState(body.Pool, body.URL, body.State)
		}
		answerBackend(w, s, body.Pool, body.URL, err)
	}
}

// serveBackendWeight answers POST /backends/weight {"url": "...", "weight": N} (and
// "pool" when the URL is in several pools) with the backend's status entry.
func serveBackendWeight(s *Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			URL    string `json:"url"`
			Pool   string `json:"pool"` // "": the one pool that has URL
			Weight *int   `json:"weight"`
		}
		if !decodeBody(r, &body) || body.URL == "" || body.Weight == nil {
			writeJSONError(w, http.StatusBadRequest, `body must be {"url": "http://host:port", "weight": 0 to 256}, with "pool" when the URL is in several pools`)
			return
		}
		err := ErrUnknownBackend
		if s.Control != nil {
			err = s.Control.SetBackendWeight(body.Pool, body.URL, *body.Weight)
		}
		answerBackend(w, s, body.Pool, body.URL, err)
	}
}

// decodeBody decodes r's JSON body into v, refusing unknown fields and anything after
// the object. It reports whether the body was such an object.
func decodeBody(r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// answerBackend answers a Controller's err about the backend with url in pool
// ("": the one that has it): 404 for an unknown pool or backend, 409 for a URL in
// several pools, 400 for another error, else the backend's status entry.
func answerBackend(w http.ResponseWriter, s *Source, pool, url string, err error) {
	var amb *AmbiguousError
	switch {
	case errors.As(err, &amb):
		writeJSON(w, http.StatusConflict, map[string]any{"error": amb.Error(), "pools": amb.Pools})
		return
	case errors.Is(err, ErrUnknownPool):
		writeJSONError(w, http.StatusNotFound, "no pool "+strconv.Quote(pool)+" (pools: "+quoteAll(s.poolNames())+")")
		return
	case errors.Is(err, ErrUnknownBackend):
		writeJSONError(w, http.StatusNotFound, "no backend "+url+inPool(pool))
		return
	case err != nil:
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if e, ok := s.statusEntry(pool, url); ok {
		writeJSON(w, http.StatusOK, e)
		return
	}
	writeJSONError(w, http.StatusNotFound, "no backend "+url+inPool(pool))
}

// statusEntry is the status entry of the backend with url (any spelling) in pool, or
// in the first pool that has it when pool is "".
func (s *Source) statusEntry(pool, url string) (Backend, bool) {
	key, _ := config.NormalizeURL(url)
	for _, p := range s.Status().Pools {
		if pool != "" && p.Name != pool {
			continue
		}
		for _, b := range p.Backends {
			if k, _ := config.NormalizeURL(b.URL); b.URL == url || k == key && key != "" {
				return b, true
			}
		}
	}
	return Backend{}, false
}

// poolNames lists the names of the pools, default first.
func (s *Source) poolNames() []string {
	var names []string
	for _, p := range s.poolSources(nil) {
		names = append(names, p.Name)
	}
	return names
}

// inPool is " in pool NAME", or "" for pool "".
func inPool(pool string) string {
	if pool == "" {
		return ""
	}
	return " in pool " + strconv.Quote(pool)
}

// quoteAll quotes each of names and joins them with commas.
func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError answers {"error": msg} with status.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
