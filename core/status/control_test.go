package status

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// weightSetter is a Controller that sets weights on the backends of set, found by
// normalized URL as the load balancer's are.
type weightSetter struct{ set *backend.Set }

func (weightSetter) SetBackendState(string, string) error { return ErrBadState }

func (w weightSetter) SetBackendWeight(url string, weight int) error {
	if weight < 0 || weight > backend.MaxWeight {
		return ErrBadWeight
	}
	key, _ := config.NormalizeURL(url)
	for _, b := range w.set.Snapshot().All {
		if b.Key == key {
			b.SetWeight(weight)
			return nil
		}
	}
	return ErrUnknownBackend
}

func TestBackendWeightEndpoint(t *testing.T) {
	const url = "http://127.0.0.1:8081"
	set := backend.NewSet()
	set.Update([]config.Backend{{URL: url, Weight: 1}}, backend.ClientConfig{})
	src := &Source{Pool: pool.New(pool.Config{MinWorkers: 1, MaxWorkers: 1}), Backends: set,
		Strategy: func() strategy.Status { return strategy.Status{} }, Control: weightSetter{set}}
	srv := httptest.NewServer(AdminHandler(src))
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
