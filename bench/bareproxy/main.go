// Command bareproxy is the benchmark's baseline: the least a Go proxy on fasthttp can
// do (least-connections over the backends, keep-alive both ways, no pool, no health,
// no plugin, no header rewriting), to show what the load balancer's own work costs.
//
//	go run ./bench/bareproxy LISTEN_PORT BACKEND_PORT...
package main

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

type upstream struct {
	client   *fasthttp.HostClient
	inflight atomic.Int64
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bareproxy LISTEN_PORT BACKEND_PORT...")
		os.Exit(2)
	}
	var ups []*upstream
	for _, p := range os.Args[2:] {
		ups = append(ups, &upstream{client: &fasthttp.HostClient{Addr: "127.0.0.1:" + p, MaxConns: 1 << 16}})
	}
	handler := func(ctx *fasthttp.RequestCtx) {
		best := ups[0]
		for _, u := range ups[1:] {
			if u.inflight.Load() < best.inflight.Load() {
				best = u
			}
		}
		best.inflight.Add(1)
		err := best.client.Do(&ctx.Request, &ctx.Response)
		best.inflight.Add(-1)
		if err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
		}
	}
	if err := fasthttp.ListenAndServe("127.0.0.1:"+os.Args[1], handler); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}
