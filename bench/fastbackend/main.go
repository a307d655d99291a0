// Command fastbackend is the benchmark's backend: it answers every request at once
// with a small JSON body naming itself, so that the proxies in front of it are what
// a benchmark measures.
//
//	go run ./bench/fastbackend PORT [PORT...]
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fastbackend PORT [PORT...]")
		os.Exit(2)
	}
	for _, port := range os.Args[1:] {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fastbackend:", err)
			os.Exit(1)
		}
		body := []byte(fmt.Sprintf(`{"server":%q}`, ln.Addr().String()))
		s := &fasthttp.Server{NoDefaultServerHeader: true, Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(body)
		}}
		go func() { _ = s.Serve(ln) }()
		fmt.Println("listening on", ln.Addr())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
