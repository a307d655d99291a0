package proxy

import "time"

// What other data planes share with this one: the handler's live settings, picker and
// outcome observer, and the access log.

// Settings returns the settings requests are served with now.
func (h *Handler) Settings() *Settings { return h.settings.Load() }

// Outcomes returns the observer that hears every request's result.
func (h *Handler) Outcomes() OutcomeObserver { return h.outcomes }

// Entry is one request's access-log line.
type Entry struct {
	Start                time.Time
	Client, Method, Path []byte
	Status               int
	Backend              string // "" when the proxy answered itself
	In, Out              int64  // body bytes received from the client, sent to it
	Duration             time.Duration
	Attempts             int
}

// Record writes e's line; it takes no lock on the request path.
func (l *AccessLog) Record(e *Entry) {
	l.write(&entry{start: e.Start, client: e.Client, method: e.Method, path: e.Path, status: e.Status,
		backend: e.Backend, in: e.In, out: e.Out, duration: e.Duration, attempts: e.Attempts})
}
