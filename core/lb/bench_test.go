package lb

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/strategy"
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
)

// fastBackends starts n in-memory fasthttp backends on loopback answering a small body.
func fastBackends(b *testing.B, n int) []config.Backend {
	var out []config.Backend
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"server":"fast"}`)
		}}
		go s.Serve(ln) //nolint:errcheck
		b.Cleanup(func() { _ = s.Shutdown() })
		out = append(out, config.Backend{URL: "http://" + ln.Addr().String(), Weight: 1})
	}
	return out
}

// BenchmarkProxy measures requests/s through the whole proxy (64 concurrent
// keep-alive clients, 3 in-memory backends), picking with the leastconn plugin
// subprocess or with the same strategy called in-process.
func BenchmarkProxy(b *testing.B) {
	for _, mode := range []string{"in-process", "plugin"} {
		b.Run(mode, func(b *testing.B) {
			l, _ := startLB(b, "leastconn", fastBackends(b, 3))
			if mode == "in-process" {
				plugin := l.handler.Picker()
				l.handler.SetPicker(strategy.NewLocal("leastconn", leastconn.New()))
				plugin.Close()
			}
			client := &fasthttp.HostClient{Addr: l.Addr(), MaxConns: 64, ReadTimeout: 10 * time.Second}
			b.SetParallelism(32) // 64 clients on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://" + l.Addr() + "/requests")
				for pb.Next() {
					if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Errorf("request: %v, status %d", err, resp.StatusCode())
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
