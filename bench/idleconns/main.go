// Command idleconns opens N keep-alive connections to a proxy, sends one request on
// each, keeps them all open and idle, and prints the resident memory of the proxy and
// of the processes it started, then.
//
//	go run ./bench/idleconns -addr 127.0.0.1:8000 -n 10000 -pid PID
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "the proxy's address")
	n := flag.Int("n", 10000, "connections")
	pid := flag.Int("pid", 0, "the proxy's process id, to read its memory")
	path := flag.String("path", "/", "the path requested on each connection")
	hold := flag.Duration("hold", 2*time.Second, "how long to hold the connections idle before reading memory")
	flag.Parse()

	before := rss(*pid)
	conns := make([]net.Conn, 0, *n)
	for i := range *n {
		c, err := net.DialTimeout("tcp", *addr, 10*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "idleconns: connection %d: %v\n", i, err)
			os.Exit(1)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", *path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "idleconns: request %d: %v\n", i, err)
			os.Exit(1)
		}
		resp.Body.Close()
		conns = append(conns, c)
	}
	time.Sleep(*hold) // let the proxy settle
	after := rss(*pid)
	fmt.Printf("idle_connections=%d rss_before_mib=%.1f rss_after_mib=%.1f\n", len(conns), before, after)
	for _, c := range conns {
		c.Close()
	}
}
