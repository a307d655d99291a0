package nethttp

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
)

func TestUpgradeWhoseBodyTheClientCutsIsTheClientsFault(t *testing.T) {
	url, _, _ := countingBackend(t)
	addr, px := serve(t, exchange.Settings{}, url)
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 10\r\n\r\nabc")
	c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	t.Logf("status %d body %q backend failures %d", resp.StatusCode, b, exchangetest.Backend(px, url).Failures())
}
