// Command bareproxy is the benchmark's baseline: the least a Go proxy on net/http can
// do (httputil.ReverseProxy, least-connections over the backends, keep-alive both ways,
// no pool, no health, no plugin, no header rewriting beyond the hop-by-hop headers
// ReverseProxy always drops), to show what the load balancer's own work costs.
//
//	go run ./bench/bareproxy LISTEN_PORT BACKEND_PORT...
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// upstream is one backend: its proxy and the requests it has in flight.
type upstream struct {
	proxy    *httputil.ReverseProxy
	inflight atomic.Int64
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bareproxy LISTEN_PORT BACKEND_PORT...")
		os.Exit(2)
	}
	tr := newTransport()
	pool := &bufferPool{}
	var ups []*upstream
	for _, p := range os.Args[2:] {
		addr := "127.0.0.1:" + p
		ups = append(ups, &upstream{proxy: &httputil.ReverseProxy{
			// The client's Host goes to the backend as it came.
			Rewrite:    func(pr *httputil.ProxyRequest) { pr.Out.URL.Scheme, pr.Out.URL.Host = "http", addr },
			Transport:  tr,
			BufferPool: pool,
		}})
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		best := ups[0]
		for _, u := range ups[1:] {
			if u.inflight.Load() < best.inflight.Load() {
				best = u
			}
		}
		best.inflight.Add(1)
		defer best.inflight.Add(-1)
		best.proxy.ServeHTTP(w, r)
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[1], handler); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

// newTransport returns the backends' transport, tuned as a proxy's should be:
// HTTP/1.1 without a proxy from the environment, enough idle connections per
// backend for every client connection (the default keeps 2), and no gzip of its
// own (the client's Accept-Encoding passes through).
func newTransport() *http.Transport {
	var protos http.Protocols
	protos.SetHTTP1(true)
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		Protocols:           &protos,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers, which it would
// otherwise allocate per request. It is safe for use by multiple goroutines.
type bufferPool struct{ p sync.Pool }

// Get returns a buffer from the pool or a new one.
func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

// Put returns buf to the pool.
func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// Interface guards
var _ httputil.BufferPool = (*bufferPool)(nil)
