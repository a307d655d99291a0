package nethttp

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
)

// A POST whose backend takes longer than body_idle to answer.
func TestSlowAnswerAfterAnUpload(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		time.Sleep(700 * time.Millisecond)
		io.WriteString(w, "late answer")
	}))
	defer srv.Close()
	addr, px := serve(t, exchange.Settings{}, srv.URL)
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	t.Logf("status %d headers %v body %q", resp.StatusCode, resp.Header, b)
	if string(b) != "late answer" {
		t.Errorf("got %d %q", resp.StatusCode, b)
	}
	bk := exchangetest.Backend(px, srv.URL)
	t.Logf("backend failures %d", bk.Failures())
}

// An upgrade request answered by the proxy itself (status page), then a second request.
func TestUpgradeAnsweredByTheProxyLetsTheNextRequestThrough(t *testing.T) {
	url, _, _ := countingBackend(t)
	addr, _ := serve(t, exchange.Settings{}, url)
	for _, first := range []string{
		"GET /lb-status HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade:\r\n\r\n",
	} {
		c, _ := net.Dial("tcp", addr)
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, first)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		t.Logf("first: %d %q", resp.StatusCode, b)
		io.WriteString(c, "GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("second request after %q: %v", first[:20], err)
		} else {
			b, _ = io.ReadAll(resp.Body)
			t.Logf("second: %d %q", resp.StatusCode, b)
		}
		c.Close()
	}
}

// Upgrade refused by the backend (non-101): run with -race.
func TestRefusedUpgradeWithAPipelinedRequest(t *testing.T) {
	url, _, _ := countingBackend(t)
	addr, _ := serve(t, exchange.Settings{}, url)
	for i := 0; i < 20; i++ {
		c, _ := net.Dial("tcp", addr)
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
		br := bufio.NewReader(c)
		for j := 0; j < 2; j++ {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%d/%d: %v", i, j, err)
			}
			io.ReadAll(resp.Body)
		}
		c.Close()
	}
}
