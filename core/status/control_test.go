package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// controller is the Controller of core/lb, without its logs: it drains, readies and
// weighs the backends of its sets, found by FindBackend.
type controller struct{ sets []*backend.Set }

func (c controller) SetBackendState(pool, url, state string) error {
	b, err := FindBackend(c.sets, pool, url)
	if err != nil {
		return err
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
		c.rebuild(b.Pool)
	}
	return nil
}

func (c controller) SetBackendWeight(pool, url string, weight int) error {
	if weight < 0 || weight > backend.MaxWeight {
		return ErrBadWeight
	}
	b, err := FindBackend(c.sets, pool, url)
	if err != nil {
		return err
	}
	if b.SetWeight(weight) {
		c.rebuild(b.Pool)
	}
	return nil
}

// rebuild rebuilds the set of pool.
func (c controller) rebuild(pool string) {
	for _, set := range c.sets {
		if set.Pool() == pool {
			set.Rebuild()
		}
	}
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

// TestBackendControlPools drives POST /backends/state and /backends/weight over two
// pools that share a URL: a URL in several pools needs "pool", one in a single pool
// does not.
func TestBackendControlPools(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		code             int
		pool             string // of the answer, when 200
		wantErr          string // in the error answer, when not 200
		wantPools        []string
		after            []string // the state and weight of a in default and api, and c in api
	}{
		{name: "ambiguous state", path: "/backends/state", body: `{"url": "` + poolA + `", "state": "drain"}`,
			code: 409, wantErr: `backend ` + poolA + ` is in several pools ("default", "api"): say which with "pool"`,
			wantPools: []string{"default", "api"}, after: []string{"up 1", "up 5", "up 1"}},
		{name: "ambiguous weight", path: "/backends/weight", body: `{"url": "` + poolA + `/", "weight": 7}`,
			code: 409, wantErr: "several pools", wantPools: []string{"default", "api"}, after: []string{"up 1", "up 5", "up 1"}},
		{name: "state in a pool", path: "/backends/state", body: `{"url": "` + poolA + `", "pool": "api", "state": "drain"}`,
			code: 200, pool: "api", after: []string{"up 1", "drain 5", "up 1"}},
		{name: "weight in the default pool", path: "/backends/weight", body: `{"url": "` + poolA + `", "pool": "default", "weight": 9}`,
			code: 200, pool: "default", after: []string{"up 9", "up 5", "up 1"}},
		{name: "a URL in one pool needs none", path: "/backends/state", body: `{"url": "` + poolC + `", "state": "drain"}`,
			code: 200, pool: "api", after: []string{"up 1", "up 5", "drain 1"}},
		{name: "unknown pool", path: "/backends/state", body: `{"url": "` + poolA + `", "pool": "blue", "state": "drain"}`,
			code: 404, wantErr: `no pool "blue" (pools: "default", "api")`, after: []string{"up 1", "up 5", "up 1"}},
		{name: "unknown pool for weight", path: "/backends/weight", body: `{"url": "` + poolA + `", "pool": "blue", "weight": 2}`,
			code: 404, wantErr: `no pool "blue"`, after: []string{"up 1", "up 5", "up 1"}},
		{name: "not in that pool", path: "/backends/weight", body: `{"url": "` + poolC + `", "pool": "default", "weight": 2}`,
			code: 404, wantErr: `no backend ` + poolC + ` in pool "default"`, after: []string{"up 1", "up 5", "up 1"}},
		{name: "in no pool", path: "/backends/state", body: `{"url": "http://127.0.0.1:1", "state": "drain"}`,
			code: 404, wantErr: "no backend http://127.0.0.1:1", after: []string{"up 1", "up 5", "up 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newPoolsSource(t)
			srv := httptest.NewServer(AdminHandler(s))
			t.Cleanup(srv.Close)
			var got struct {
				URL   string   `json:"url"`
				Pool  string   `json:"pool"`
				Error string   `json:"error"`
				Pools []string `json:"pools"`
			}
			code, _ := post(t, srv.URL+tc.path, tc.body, &got)
			switch {
			case code != tc.code:
				t.Errorf("POST %s %s = %d (%q), want %d", tc.path, tc.body, code, got.Error, tc.code)
			case code == 200 && got.Pool != tc.pool:
				t.Errorf("POST %s %s answered pool %q, want %q", tc.path, tc.body, got.Pool, tc.pool)
			case code != 200 && (!strings.Contains(got.Error, tc.wantErr) || !slices.Equal(got.Pools, tc.wantPools)):
				t.Errorf("POST %s %s answered error %q, pools %q; want one with %q, pools %q", tc.path, tc.body, got.Error, got.Pools, tc.wantErr, tc.wantPools)
			}
			var after []string
			for _, b := range []*backend.Backend{poolBackend(t, s, "default", poolA), poolBackend(t, s, "api", poolA), poolBackend(t, s, "api", poolC)} {
				after = append(after, fmt.Sprintf("%s %d", b.Health().State, b.Weight()))
			}
			if !slices.Equal(after, tc.after) {
				t.Errorf("after POST %s %s, backends are %q, want %q", tc.path, tc.body, after, tc.after)
			}
		})
	}
}

func TestFindBackend(t *testing.T) {
	def := backend.NewPoolSet(backend.DefaultPool, nil)
	def.Update(urls(poolA, poolB))
	api := backend.NewPoolSet("api", nil)
	api.Update(urls(poolA, poolC))
	web := backend.NewPoolSet("web", nil)
	web.Update(urls(poolA))
	sets := []*backend.Set{def, api, web}
	for _, tc := range []struct {
		pool, url string
		want      string // pool of the backend found, when no error
		wantErr   error
		ambiguous []string // the pools of an *AmbiguousError
	}{
		{pool: "", url: poolB, want: "default"},
		{pool: "", url: poolC + "/", want: "api"},
		{pool: "api", url: poolA, want: "api"},
		{pool: "default", url: poolA, want: "default"},
		{pool: "", url: poolA, wantErr: ErrAmbiguousBackend, ambiguous: []string{"default", "api", "web"}},
		{pool: "blue", url: poolA, wantErr: ErrUnknownPool},
		{pool: "blue", url: "::bad", wantErr: ErrUnknownPool},
		{pool: "web", url: poolB, wantErr: ErrUnknownBackend},
		{pool: "", url: "http://127.0.0.1:1", wantErr: ErrUnknownBackend},
		{pool: "", url: "::bad", wantErr: ErrUnknownBackend},
		{pool: "api", url: "::bad", wantErr: ErrUnknownBackend},
	} {
		b, err := FindBackend(sets, tc.pool, tc.url)
		var amb *AmbiguousError
		errors.As(err, &amb)
		switch {
		case tc.wantErr == nil && (err != nil || b.Pool != tc.want):
			t.Errorf("FindBackend(%q, %s) = %v, %v; want the backend of pool %s", tc.pool, tc.url, b, err, tc.want)
		case tc.wantErr != nil && (b != nil || !errors.Is(err, tc.wantErr)):
			t.Errorf("FindBackend(%q, %s) = %v, %v; want %v", tc.pool, tc.url, b, err, tc.wantErr)
		case tc.ambiguous != nil && (amb == nil || !slices.Equal(amb.Pools, tc.ambiguous) || amb.URL != tc.url):
			t.Errorf("FindBackend(%q, %s) = %#v, want an *AmbiguousError of pools %q", tc.pool, tc.url, err, tc.ambiguous)
		}
	}
}
