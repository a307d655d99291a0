package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
)

// Errors of a Controller, which the admin address answers 404 and 400.
var (
	ErrUnknownBackend = errors.New("no backend has this URL")
	ErrBadState       = errors.New(`state must be "drain" or "ready"`)
	ErrBadWeight      = fmt.Errorf("weight must be 0 to %d", backend.MaxWeight)
)

// Controller changes backends at run time, as HAProxy's "set server ... state" and
// "set server ... weight".
type Controller interface {
	// SetBackendState drains the backend with url ("drain": no new requests, those
	// in flight finish) or makes it ready again ("ready": also ends a passive
	// ejection and its backoff).
	SetBackendState(url, state string) error
	// SetBackendWeight sets the weight of the backend with url (0 to 256; 0 takes
	// it out of the picks), kept across reloads until config.json's weight for it
	// changes.
	SetBackendWeight(url string, weight int) error
}

// defaultPool is the one pool there is: a body may name it.
const defaultPool = "default"

// serveBackendState answers POST /backends/state {"url": "...", "state": "drain"|"ready"}
// with the backend's status entry.
func serveBackendState(s *Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			URL   string `json:"url"`
			State string `json:"state"`
		}
		if !decodeBody(r, &body) || body.URL == "" {
			writeJSONError(w, http.StatusBadRequest, `body must be {"url": "http://host:port", "state": "drain" or "ready"}`)
			return
		}
		err := ErrUnknownBackend
		if s.Control != nil {
			err = s.Control.SetBackendState(body.URL, body.State)
		}
		answerBackend(w, s, body.URL, err)
	}
}

// serveBackendWeight answers POST /backends/weight {"url": "...", "weight": N} (and
// "pool", which may only name the default pool) with the backend's status entry.
func serveBackendWeight(s *Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			URL    string `json:"url"`
			Weight *int   `json:"weight"`
			Pool   string `json:"pool"`
		}
		if !decodeBody(r, &body) || body.URL == "" || body.Weight == nil {
			writeJSONError(w, http.StatusBadRequest, `body must be {"url": "http://host:port", "weight": 0 to 256}`)
			return
		}
		if body.Pool != "" && body.Pool != defaultPool {
			writeJSONError(w, http.StatusNotFound, "no pool "+strconv.Quote(body.Pool)+` (there is one, "default")`)
			return
		}
		err := ErrUnknownBackend
		if s.Control != nil {
			err = s.Control.SetBackendWeight(body.URL, *body.Weight)
		}
		answerBackend(w, s, body.URL, err)
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

// answerBackend answers a Controller's err: 404 for an unknown backend, 400 for
// another error, else the status entry of the backend with url.
func answerBackend(w http.ResponseWriter, s *Source, url string, err error) {
	switch {
	case errors.Is(err, ErrUnknownBackend):
		writeJSONError(w, http.StatusNotFound, "no backend "+url)
		return
	case err != nil:
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	key, _ := config.NormalizeURL(url)
	for _, b := range s.Status().Backends {
		if k, _ := config.NormalizeURL(b.URL); b.URL == url || k == key && key != "" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(b)
			return
		}
	}
	writeJSONError(w, http.StatusNotFound, "no backend "+url)
}

// writeJSONError answers {"error": msg} with status.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
