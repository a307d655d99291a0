//go:build unix

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The flow of bytes through the proxy with raw sockets: interim answers, pipelining,
// and a slow reader holding back a fast backend.

// dialCore opens a raw connection to lb's client port, closed when the test ends; a
// stuck read or write fails after 20 seconds.
func dialCore(t *testing.T, lb *lbInstance) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(lb.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func TestExpectContinueReachesTheClientBeforeItsBody(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	c := dialCore(t, lb)
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: app\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("first line before the body was sent = %q, %v; want HTTP/1.1 100 Continue", line, err)
	}
	for line != "\r\n" && err == nil {
		line, err = br.ReadString('\n')
	}
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"bytes":5`) {
		t.Errorf("answer after 100 Continue = %d %s, want 200 counting 5 bytes", resp.StatusCode, body)
	}
}

func TestEarlyHintsPassThrough(t *testing.T) {
	if !onEventLoop() {
		t.Skip("the " + front() + " front's backend client reads past 1xx answers: interim answers need the event loop")
	}
	u := rawBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	c := dialCore(t, lb)
	io.WriteString(c, "GET /page HTTP/1.1\r\nHost: app\r\n\r\n")
	br := bufio.NewReader(c)
	hints, err := http.ReadResponse(br, nil)
	if err != nil || hints.StatusCode != 103 || hints.Header.Get("Link") != "</style.css>; rel=preload" {
		t.Fatalf("first answer = %v, %v; want 103 with its Link", hints, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Errorf("final answer = %d %q, want 200 ok", resp.StatusCode, body)
	}
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	c := dialCore(t, lb)
	var all strings.Builder
	const n = 8
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&all, "GET /echo-headers?n=%d HTTP/1.1\r\nHost: h%d\r\n\r\n", i, i)
		} else {
			fmt.Fprintf(&all, "POST /upload HTTP/1.1\r\nHost: h%d\r\nContent-Length: %d\r\n\r\n%s", i, i, strings.Repeat("x", i))
		}
	}
	io.WriteString(c, all.String()) // every request in one write
	br := bufio.NewReader(c)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		want := `"host":"h` + strconv.Itoa(i) + `"`
		if i%2 == 1 {
			want = `"bytes":` + strconv.Itoa(i)
		}
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("answer %d = %d %s, want 200 with %s", i, resp.StatusCode, body, want)
		}
	}
}

func TestSlowReaderHoldsBackTheBackend(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	const size = 512 << 20
	resp, err := http.Get(lb.url + "/download?bytes=" + strconv.Itoa(size))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Read a little, then nothing for a while: a proxy that kept reading the fast
	// backend would hold the body in its memory.
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if heap := metric(t, lb, "go_memstats_heap_sys_bytes"); heap > 64<<20 {
		t.Errorf("proxy heap_sys = %.0f MiB while the client reads nothing of a 512 MiB answer, want under 64 MiB", heap/(1<<20))
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size-1<<20 {
		t.Errorf("rest of the body = %d bytes, %v; want %d", n, err, size-1<<20)
	}
}

func TestStatusPathWithChunkedBodiesKeepsTheConnectionInStep(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	c := dialCore(t, lb)
	req := "POST /queue/status HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
	io.WriteString(c, req+req)
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"backends"`) {
			t.Fatalf("answer %d = %d %s, want the status JSON (the chunked body is not a request)", i, resp.StatusCode, body)
		}
	}
}

func TestBackendStallingMidAnswerGetsNoSecondAnswerAppended(t *testing.T) {
	if !onEventLoop() {
		t.Skip("the " + front() + " front's backend client sends the whole request before it reads the answer")
	}
	// A backend that answers before the request body is all here, sends part of a
	// chunked body, then says nothing more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				r, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if r.URL.Path == "/health" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
				io.Copy(io.Discard, br) // the rest of the request, then silence
			}()
		}
	}()
	lb := startCore(t, map[string]any{"servers": backendsConfig("http://" + ln.Addr().String()),
		"load_balancer": map[string]any{"timeouts": map[string]any{"response_header": "1s"}}})
	c := dialCore(t, lb)
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 10\r\n\r\nhello")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("first line = %q, %v; want the backend's 200", line, err)
	}
	io.WriteString(c, "world")
	rest, _ := io.ReadAll(br) // until the proxy closes
	if strings.Contains(string(rest), "HTTP/1.1") {
		t.Errorf("after a 200 head the client read a second answer:\n%s", rest)
	}
}

// TestWebSocketFramesWithBlankLines sends a frame whose bytes hold a blank line (the
// mask key is zero, so the payload goes as it is): a tunnel carries bytes, and no
// header rule may apply to them.
func TestWebSocketFramesWithBlankLines(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	c := dialCore(t, lb)
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: lb\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade = %v, %v; want 101", resp, err)
	}
	for _, payload := range []string{"frame one\n\nframe two\n", "\r\n\r\n", "\n\n\n"} {
		frame := append([]byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 2)
		if _, err := io.ReadFull(br, head); err != nil {
			t.Fatalf("echo of %q: %v", payload, err)
		}
		got := make([]byte, head[1]&0x7f)
		if _, err := io.ReadFull(br, got); err != nil || head[0] != 0x81 || string(got) != payload {
			t.Fatalf("echo = %x %q, %v; want text %q", head, got, err, payload)
		}
	}
}
