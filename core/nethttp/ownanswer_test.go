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

func TestStatusWithABodyNeverSentIsAnswered(t *testing.T) {
	url, _, _ := countingBackend(t)
	addr, _ := serve(t, exchange.Settings{}, url)
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	io.WriteString(c, "POST /lb-status HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
	c.SetDeadline(time.Now().Add(4 * time.Second)) // > read_header 2s, body_idle 300ms
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	t.Logf("after %v: resp=%v err=%v", time.Since(start), resp != nil, err)
}
