package nethttp

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange"
)

func TestDoubleSlashTargetStaysOriginForm(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	got := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var head string
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					head += l
					if l == "\r\n" {
						break
					}
				}
				got <- head
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	addr, _ := serve(t, exchange.Settings{}, "http://"+ln.Addr().String())
	for _, target := range []string{"//admin.internal/secret?x=1", "http://public.example//admin.internal/secret"} {
		c, _ := net.Dial("tcp", addr)
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: public.example\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		t.Logf("client target %q -> backend got:\n%s", target, <-got)
		c.Close()
	}
}
