package lb

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/strategy"
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
)

// fastBackends starts n in-memory net/http backends on loopback answering a small body.
func fastBackends(b *testing.B, n int) []config.Backend {
	var out []config.Backend
	for range n {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"server":"fast"}`)
		}))
		b.Cleanup(srv.Close)
		out = append(out, config.Backend{URL: srv.URL, Weight: 1})
	}
	return out
}

// benchClient returns a client for conns concurrent keep-alive connections to
// the proxy: HTTP/1.1, every connection kept idle between requests, no gzip.
func benchClient(conns int) *http.Client {
	var protos http.Protocols
	protos.SetHTTP1(true)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Protocols:           &protos,
		MaxConnsPerHost:     conns,
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
	}}
}

// BenchmarkProxy measures requests/s through the whole proxy (64 concurrent
// keep-alive clients, 3 in-memory backends), picking with the leastconn plugin
// subprocess or with the same strategy called in-process.
func BenchmarkProxy(b *testing.B) {
	for _, mode := range []string{"in-process", "plugin"} {
		b.Run(mode, func(b *testing.B) {
			l, _ := startLB(b, "leastconn", fastBackends(b, 3))
			if mode == "in-process" {
				u := l.upstream("default")
				plugin := u.Picker()
				u.SetPicker(strategy.NewLocal("leastconn", leastconn.New()))
				plugin.Close()
			}
			client := benchClient(64)
			b.Cleanup(client.CloseIdleConnections)
			req, err := http.NewRequest("GET", "http://"+l.Addr()+"/requests", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(32) // 64 clients on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := get(client, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			if st := l.Status().Strategy; st.Fallbacks > 0 {
				b.Logf("%d picks fell back", st.Fallbacks)
			}
		})
	}
}

// get sends req, which the client does not change and so may be sent again, and
// reads the whole answer, which frees the connection for the next request.
func get(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d, want 200", req.URL, resp.StatusCode)
	}
	return nil
}
