package status

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// Errors of a Controller, which the admin address answers 404 and 400.
var (
	ErrUnknownBackend = errors.New("no backend has this URL")
	ErrBadState       = errors.New(`state must be "drain" or "ready"`)
)

// Controller changes backends at run time, as HAProxy's "set server ... state".
type Controller interface {
	// SetBackendState drains the backend with url ("drain": no new requests, those
	// in flight finish) or makes it ready again ("ready": also ends a passive
	// ejection and its backoff).
	SetBackendState(url, state string) error
}

// serveBackendState answers POST /backends/state {"url": "...", "state": "drain"|"ready"}
// with the backend's status entry.
func serveBackendState(s *Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			URL   string `json:"url"`
			State string `json:"state"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.URL == "" {
			writeJSONError(w, http.StatusBadRequest, `body must be {"url": "http://host:port", "state": "drain" or "ready"}`)
			return
		}
		err := ErrUnknownBackend
		if s.Control != nil {
			err = s.Control.SetBackendState(body.URL, body.State)
		}
		switch {
		case errors.Is(err, ErrUnknownBackend):
			writeJSONError(w, http.StatusNotFound, "no backend "+body.URL)
			return
		case err != nil:
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
		for _, b := range s.Status().Backends {
			if b.URL == body.URL {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(b)
				return
			}
		}
		writeJSONError(w, http.StatusNotFound, "no backend "+body.URL)
	}
}

// writeJSONError answers {"error": msg} with status.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
