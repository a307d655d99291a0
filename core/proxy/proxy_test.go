package proxy

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
)

// memDialer connects every backend to one in-memory listener.
type memDialer struct {
	ln *fasthttputil.InmemoryListener
}

func (d memDialer) Dial(string) (net.Conn, error) { return d.ln.Dial() }

// memHandler is a Handler in front of three backends that are one in-memory server.
func memHandler(tb testing.TB) *Handler {
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"server":"mem"}`)
	}}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Shutdown() })
	set := backend.NewSet()
	set.Update([]config.Backend{{URL: "http://a:1", Weight: 1}, {URL: "http://b:1", Weight: 1}, {URL: "http://c:1", Weight: 1}},
		backend.ClientConfig{Connect: time.Second, ReadIdle: 10 * time.Second, Idle: time.Minute, Dialer: memDialer{ln}})
	return New(Config{
		Pool:     pool.New(pool.Config{MinWorkers: 1, MaxWorkers: 256, QueueCapacity: 1000, QueueTimeout: time.Second, IdleTimeout: time.Minute}),
		Backends: set,
		Picker:   strategy.NewLocal("leastconn", leastconn.New()),
		Settings: Settings{StatusPath: "/queue/status", Retries: 2, MaxHeaders: 100, ConnectTimeout: time.Second, Idle: time.Minute},
		Status:   func(*fasthttp.RequestCtx) {},
		Log:      hclog.NewNullLogger(),
	})
}

// serve runs one request through h and writes the answer out, as the server would.
func serve(h *Handler, ctx *fasthttp.RequestCtx, req *fasthttp.Request, addr net.Addr) error {
	req.SetRequestURI("/requests")
	req.Header.SetMethod("POST")
	req.Header.SetHost("lb.example")
	ctx.Init(req, addr, nil)
	h.ServeHTTP(ctx)
	_, err := ctx.Response.WriteTo(io.Discard) // streams the body and ends the exchange
	return err
}

func TestHandlerAgainstInMemoryBackend(t *testing.T) {
	h := memHandler(t)
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	for range 10 {
		if err := serve(h, &ctx, &req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}); err != nil {
			t.Fatal(err)
		}
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("status = %d, want 200", ctx.Response.StatusCode())
		}
	}
	if st := h.pool.Stats(); st.Busy != 0 || st.Admitted != 10 {
		t.Errorf("pool after 10 requests = %+v, want 10 admitted and none busy", st)
	}
	for _, b := range h.backends.Snapshot().All {
		if b.Inflight() != 0 {
			t.Errorf("backend %s has %d in flight after all requests ended", b.URL, b.Inflight())
		}
	}
}

// BenchmarkHandler measures the core's request path (admission, pick, forward,
// stream back, bookkeeping) against in-memory backends, without client sockets.
func BenchmarkHandler(b *testing.B) {
	h := memHandler(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
		for pb.Next() {
			if err := serve(h, &ctx, &req, addr); err != nil {
				b.Fatal(err)
			}
		}
	})
}
