package status

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// controller is the Controller of core/lb, without its logs: it drains, readies and
// weighs the backends of set, found by normalized URL.
type controller struct{ set *backend.Set }

func (c controller) SetBackendState(url, state string) error {
	b := c.backend(url)
	if b == nil {
		return ErrUnknownBackend
	}
	var changed bool
	switch state {
	case "drain":
		_, changed = b.Drain()
	case "ready":
		_, changed = b.Ready()
	default:
		return ErrBadState
	}
	if changed {
		c.set.Rebuild()
	}
	return nil
}

func (c controller) SetBackendWeight(url string, weight int) error {
	if weight < 0 || weight > backend.MaxWeight {
		return ErrBadWeight
	}
	b := c.backend(url)
	if b == nil {
		return ErrUnknownBackend
	}
	if b.SetWeight(weight) {
		c.set.Rebuild()
	}
	return nil
}

// backend is the backend of the set with url, nil when there is none.
func (c controller) backend(url string) *backend.Backend {
	key, err := config.NormalizeURL(url)
	if err != nil {
		return nil
	}
	for _, b := range c.set.Snapshot().All {
		if b.Key == key {
			return b
		}
	}
	return nil
}

func TestBackendWeightEndpoint(t *testing.T) {
	const url = "http://127.0.0.1:8081"
	srv := httptest.NewServer(AdminHandler(newSource(t, strategy.Status{}, urls(url)...)))
	defer srv.Close()

	for _, tc := range []struct {
		body   string
		code   int
		weight int // in the answer, when 200
	}{
		{`{"url": "` + url + `", "weight": 3}`, 200, 3},
		{`{"url": "` + url + `/", "weight": 4, "pool": "default"}`, 200, 4},
		{`{"url": "` + url + `", "weight": 0}`, 200, 0},
		{`{"url": "http://127.0.0.1:1", "weight": 1}`, 404, 0},
		{`{"url": "` + url + `", "weight": 1, "pool": "blue"}`, 404, 0},
		{`{"url": "` + url + `", "weight": 257}`, 400, 0},
		{`{"url": "` + url + `", "weight": -1}`, 400, 0},
		{`{"url": "` + url + `", "weight": 2.5}`, 400, 0},
		{`{"url": "` + url + `"}`, 400, 0},
		{`{"weight": 1}`, 400, 0},
		{`{"url": "` + url + `", "weight": 1, "extra": true}`, 400, 0},
		{`{"url": "` + url + `", "weight": 1} {}`, 400, 0},
		{`[]`, 400, 0},
	} {
		resp, err := http.Post(srv.URL+"/backends/weight", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Weight int    `json:"weight"`
			Error  string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		switch {
		case err != nil || resp.StatusCode != tc.code:
			t.Errorf("POST %s = %d (%v), want %d", tc.body, resp.StatusCode, err, tc.code)
		case tc.code == 200 && got.Weight != tc.weight:
			t.Errorf("POST %s answered weight %d, want %d", tc.body, got.Weight, tc.weight)
		case tc.code != 200 && got.Error == "":
			t.Errorf("POST %s = %d without an error message", tc.body, resp.StatusCode)
		}
	}
}

// post posts body to url and decodes the JSON answer into v; it returns the status
// code and the Content-Type.
func post(t *testing.T, url, body string, v any) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Errorf("POST %s %s: decoding the answer: %v", url, body, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

func TestBackendStateEndpoint(t *testing.T) {
	const url = "http://127.0.0.1:8081"
	for _, tc := range []struct {
		name    string
		drained bool // before the request
		body    string
		code    int
		state   string // of the backend afterwards, in the answer when 200 and in the status
		wantErr string // in the error answer, when not 200
	}{
		{name: "drain", body: `{"url": "` + url + `", "state": "drain"}`, code: 200, state: "drain"},
		{name: "drain by another spelling", body: `{"url": "` + url + `/", "state": "drain"}`, code: 200, state: "drain"},
		{name: "drain twice", drained: true, body: `{"url": "` + url + `", "state": "drain"}`, code: 200, state: "drain"},
		{name: "ready after drain", drained: true, body: `{"url": "` + url + `", "state": "ready"}`, code: 200, state: "up"},
		{name: "ready when up", body: `{"url": "` + url + `", "state": "ready"}`, code: 200, state: "up"},
		{name: "unknown state", body: `{"url": "` + url + `", "state": "maint"}`, code: 400, state: "up", wantErr: ErrBadState.Error()},
		{name: "no state", drained: true, body: `{"url": "` + url + `"}`, code: 400, state: "drain", wantErr: ErrBadState.Error()},
		{name: "unknown backend", body: `{"url": "http://127.0.0.1:1", "state": "drain"}`, code: 404, state: "up", wantErr: "no backend http://127.0.0.1:1"},
		{name: "no url", body: `{"state": "drain"}`, code: 400, state: "up", wantErr: "body must be"},
		{name: "bad JSON", body: `{"url": "` + url, code: 400, state: "up", wantErr: "body must be"},
		{name: "unknown field", body: `{"url": "` + url + `", "state": "drain", "force": true}`, code: 400, state: "up", wantErr: "body must be"},
		{name: "two objects", body: `{"url": "` + url + `", "state": "drain"} {}`, code: 400, state: "up", wantErr: "body must be"},
		{name: "not an object", body: `["drain"]`, code: 400, state: "up", wantErr: "body must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, strategy.Status{}, urls(url)...)
			if tc.drained {
				byURL(t, s, url).Drain()
			}
			srv := httptest.NewServer(AdminHandler(s))
			t.Cleanup(srv.Close)

			var got struct {
				URL   string `json:"url"`
				State string `json:"state"`
				Error string `json:"error"`
			}
			code, ctype := post(t, srv.URL+"/backends/state", tc.body, &got)
			switch {
			case code != tc.code || ctype != "application/json":
				t.Errorf("POST %s = %d %s, want %d application/json", tc.body, code, ctype, tc.code)
			case code == 200 && (got.URL != url || got.State != tc.state):
				t.Errorf("POST %s answered %s in state %q, want %s in %q", tc.body, got.URL, got.State, url, tc.state)
			case code != 200 && !strings.Contains(got.Error, tc.wantErr):
				t.Errorf("POST %s answered error %q, want one with %q", tc.body, got.Error, tc.wantErr)
			}
			if st := s.Status().Backends[0]; st.State != tc.state || st.Healthy != (tc.state == "up") {
				t.Errorf("after POST %s, status has the backend %s (healthy %v), want %s", tc.body, st.State, st.Healthy, tc.state)
			}
		})
	}
}

func TestBackendEndpointsWithoutController(t *testing.T) {
	const url = "http://127.0.0.1:8081"
	s := newSource(t, strategy.Status{}, urls(url)...)
	s.Control = nil
	srv := httptest.NewServer(AdminHandler(s))
	defer srv.Close()
	for _, tc := range []struct{ path, body string }{
		{"/backends/state", `{"url": "` + url + `", "state": "drain"}`},
		{"/backends/weight", `{"url": "` + url + `", "weight": 5}`},
	} {
		var got struct {
			Error string `json:"error"`
		}
		if code, _ := post(t, srv.URL+tc.path, tc.body, &got); code != http.StatusNotFound || got.Error == "" {
			t.Errorf("POST %s without a Controller = %d %q, want 404 with an error", tc.path, code, got.Error)
		}
	}
	if b := s.Status().Backends[0]; b.State != backend.StateUp || b.Weight != 1 {
		t.Errorf("backend after refused changes = %s, weight %d; want up, 1", b.State, b.Weight)
	}
}
