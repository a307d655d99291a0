package nethttp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
)

// An answer that streams for longer than body_idle (300 ms in serve) after an upload
// arrives whole, whether the upload came at once or paused before its last byte
// (longer than a quarter of body_idle, when the body reader would move the deadline).
func TestLongAnswerAfterAnUploadIsWhole(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		for i := 0; i < 8; i++ {
			fmt.Fprintf(w, "tok%d ", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer srv.Close()
	addr, _ := serve(t, exchange.Settings{}, srv.URL)
	for _, pause := range []time.Duration{0, 150 * time.Millisecond} {
		t.Run(pause.String(), func(t *testing.T) {
			c, _ := net.Dial("tcp", addr)
			defer c.Close()
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab")
			time.Sleep(pause)
			io.WriteString(c, "c")
			c.SetDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if string(b) != "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 " {
				t.Errorf("stream cut short: %q err=%v", b, err)
			}
		})
	}
}

// Steady upload lasting longer than body_idle in total.
func TestUploadLongerThanBodyIdleThatKeepsMoving(t *testing.T) {
	url, _, _ := countingBackend(t)
	addr, px := serve(t, exchange.Settings{}, url)
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 90\r\n\r\n")
	for i := 0; i < 9; i++ {
		time.Sleep(80 * time.Millisecond)
		io.WriteString(c, strings.Repeat("x", 10))
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("status %d %q, backend failures %d", resp.StatusCode, b, exchangetest.Backend(px, url).Failures())
	}
}

// Pooled connection idle for most of body_idle, then a POST answered in 150ms.
func TestPooledConnectionIdleTimeIsNotTheAnswersDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		if r.Method == "POST" {
			time.Sleep(150 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	addr, px := serve(t, exchange.Settings{ReuseAlways: true}, srv.URL)
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	time.Sleep(200 * time.Millisecond)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("status %d %q, backend failures %d", resp.StatusCode, b, exchangetest.Backend(px, srv.URL).Failures())
	}
}

// A connection's second head, trickled, gets 408 after read_header (2 s in serve),
// not after idle (10 s): the server waits for the next request under its idle
// timeout, and the gate holds a head back until it is whole.
func TestSecondHeadIsTimedByReadHeader(t *testing.T) {
	url, _, _ := countingBackend(t)
	addr, _ := serve(t, exchange.Settings{}, url)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost:")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(8 * time.Second))
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a head left unfinished: %v", err)
	}
	if resp.StatusCode != 408 || time.Since(start) > 6*time.Second {
		t.Errorf("answer %d after %v, want 408 after read_header (2s)", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	}
}
