//go:build unix

package e2e

// Tests of the data plane against misbehaving peers on real sockets: backends that
// write raw bytes, clients that send raw bytes (DESIGN section 11).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawBackend serves a loopback socket: it parses each request (body read whole, or
// as much as arrived) and lets answer write the reply byte for byte; answer returns
// false to close the connection. GET /health answers 200.
func rawBackend(t *testing.T, answer func(c net.Conn, r *http.Request, body []byte) bool) string {
	t.Helper()
	return "http://" + serveLoopback(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(r.Body)
			if r.URL.Path == "/health" {
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			if !answer(c, r, body) {
				return
			}
		}
	})
}

// serveLoopback accepts connections on a free loopback port until the test ends,
// each served by serve on a goroutine of its own and closed when serve returns; it
// returns the port's host:port.
func serveLoopback(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	return ln.Addr().String()
}

// rawRequest sends raw to addr (host:port) on a new connection and reads one answer.
func rawRequest(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// backendStatus is the status entry of the backend with url.
func (l *lbInstance) backendStatus(t *testing.T, url string) (state, reason, lastError string, failures uint64) {
	t.Helper()
	for _, b := range l.status(t).Backends {
		if b.URL == url {
			return b.State, b.Reason, b.LastError, b.Failures
		}
	}
	t.Fatalf("no backend %s in status", url)
	return "", "", "", 0
}

func TestStrayBytesNeverReachAnotherClient(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stray string // written 100ms after the first answer, once it was read
	}{
		{"second response", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"},
		{"body longer than its length", "-and-more-bytes"},
		{"partial response", "HTTP/1.1 200 OK\r\nContent-Le"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := rawBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
				if r.URL.Path == "/first" {
					time.Sleep(100 * time.Millisecond)
					io.WriteString(c, tc.stray)
				}
				return true
			})
			// "always": every request may take the pooled connection, so only the
			// soundness check stands between the stray bytes and the next client.
			lb := startCore(t, map[string]any{"servers": backendsConfig(u), "load_balancer": map[string]any{"reuse": "always"}})
			client := &http.Client{Timeout: 10 * time.Second}
			if got := get(t, client, lb.url+"/first"); got != "/first" {
				t.Fatalf("first answer %q, want /first", got)
			}
			time.Sleep(300 * time.Millisecond) // the stray bytes arrive on the idle connection
			for i := range 6 {
				path := fmt.Sprintf("/client-%d", i)
				if got := get(t, client, lb.url+path); got != path {
					t.Errorf("client asking %s got %q: another request's answer", path, got)
				}
			}
			if state, _, _, failures := lb.backendStatus(t, u); state != "up" || failures != 0 {
				t.Errorf("backend %s with %d failures, want up with none", state, failures)
			}
			if stale := lb.status(t).Backends[0].StaleConns; stale != 1 {
				t.Errorf("stale_conns = %d, want the one connection with stray bytes", stale)
			}
		})
	}
}

// get GETs url and returns the body, failing the test on anything but 200.
func get(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s, want 200", url, resp.StatusCode, body)
	}
	return body
}

// idleClosing is a backend that closes keep-alive connections idle for a second, as
// Node, uvicorn and gunicorn do by default.
func idleClosing(t *testing.T) string {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(body))
	}))
	s.Config.IdleTimeout = time.Second
	s.Start()
	t.Cleanup(s.Close)
	return s.URL
}

func TestBackendsClosingIdleConnectionsCostNoRequest(t *testing.T) {
	a, b := idleClosing(t), idleClosing(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b), "health_check": fastChecks(nil)})
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 8 {
		// Both requests at once, so that both backends hold a pooled connection.
		var wg sync.WaitGroup
		var postResp, getResp string
		var postErr, getErr error
		wg.Go(func() {
			resp, err := client.Post(lb.url+"/post", "text/plain", strings.NewReader("hello"))
			if postErr = err; err == nil {
				postResp = fmt.Sprint(resp.StatusCode, " ", readBody(t, resp))
			}
		})
		wg.Go(func() {
			resp, err := client.Get(lb.url + "/get")
			if getErr = err; err == nil {
				getResp = fmt.Sprint(resp.StatusCode, " ", readBody(t, resp))
			}
		})
		wg.Wait()
		if postErr != nil || postResp != "200 POST /post 5" || getErr != nil || getResp != "200 GET /get 0" {
			t.Errorf("round %d: POST = %q %v, GET = %q %v; want both served", i, postResp, postErr, getResp, getErr)
		}
		time.Sleep(1300 * time.Millisecond) // past the backends' idle timeout
	}
	var stale uint64
	for _, bk := range lb.status(t).Backends {
		stale += bk.StaleConns
		if bk.State != "up" || bk.Failures != 0 {
			t.Errorf("backend %s: %s with %d failures, want up with none", bk.URL, bk.State, bk.Failures)
		}
	}
	if stale == 0 {
		t.Errorf("stale_conns = 0 over both backends, want the connections they closed counted")
	}
}

func TestGracefulBackendRestartCostsNoRequest(t *testing.T) {
	_, other := startBackend(t, "-work", "0", "-workers", "64")
	victim, u := startBackend(t, "-work", "0", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(other, u), "health_check": fastChecks(nil)})
	countBy(t, postMany(lb.url+"/requests", 200, 16)) // fill the pools of both

	// A graceful restart closes the idle pooled connections; the next process takes
	// the same port, and no request goes in between.
	if code := victim.stop(t, sigterm); code != 0 {
		t.Fatalf("backend exit code %d on SIGTERM", code)
	}
	startBackendOn(t, strings.TrimPrefix(u, "http://127.0.0.1:"), "-work", "0", "-workers", "64")
	waitUntil(t, "the restarted backend up", func() bool { state, _, _, _ := lb.backendStatus(t, u); return state == "up" })

	counts := countBy(t, postMany(lb.url+"/requests", 300, 16))
	if counts[hostOf(u)] == 0 {
		t.Errorf("the restarted backend served none of 300 (counts %v)", counts)
	}
	if state, _, _, failures := lb.backendStatus(t, u); state != "up" || failures != 0 {
		t.Errorf("restarted backend: %s with %d failures, want up with none", state, failures)
	}
}

// bodyDrainer is a backend that reads whole request bodies and says how long they were.
func bodyDrainer(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return // the proxy cut the body off: nothing to answer
		}
		fmt.Fprintf(w, "%d", n)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

func TestClientFaultsDoNotCountAgainstBackends(t *testing.T) {
	a, b := bodyDrainer(t), bodyDrainer(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b), "health_check": fastChecks(nil)})
	addr := strings.TrimPrefix(lb.url, "http://")

	for i := range 9 {
		resp, body := rawRequest(t, addr, "POST /upload HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ\r\nworld\r\n0\r\n\r\n")
		if resp.StatusCode != 400 || strings.Contains(body, "backend") {
			t.Errorf("malformed chunked body %d: answer %d %s, want 400 naming the request", i, resp.StatusCode, body)
		}
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for range 9 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: %d\r\n\r\n", 10<<20)
		for range 16 { // 1 MiB of the announced 10
			if _, err := c.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	// A well-formed request still passes, and nothing moved against the backends.
	resp, body := rawRequest(t, addr, "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello")
	if resp.StatusCode != 200 || body != "5" {
		t.Errorf("a sound upload after the faults: %d %q, want 200 \"5\"", resp.StatusCode, body)
	}
	waitUntil(t, "every aborted upload done", func() bool { return lb.status(t).Pool.Busy == 0 })
	for _, bk := range lb.status(t).Backends {
		if bk.State != "up" || bk.Failures != 0 || bk.ErrorRate != 0 {
			t.Errorf("backend %s: state %s, %d failures, error rate %v; want up, none, 0", bk.URL, bk.State, bk.Failures, bk.ErrorRate)
		}
	}
	if strings.Contains(lb.Log(), "ejected") {
		t.Errorf("a backend was ejected for the clients' faults")
	}
}

func TestRefusedUpgradeAnswersWhole(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "plain answer to %s with %q", r.Header.Get("Upgrade"), body)
	}))
	t.Cleanup(s.Close)
	lb := startCore(t, map[string]any{"servers": backendsConfig(s.URL)})
	resp, body := rawRequest(t, strings.TrimPrefix(lb.url, "http://"), "POST /x HTTP/1.1\r\nHost: app\r\n"+
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"+
		"Content-Length: 5\r\n\r\nhello")
	if want := `plain answer to h2c with "hello"`; resp.StatusCode != 200 || body != want {
		t.Errorf("POST with Upgrade: h2c = %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}

func TestTrickledResponseStreamsAndFreesItsWorker(t *testing.T) {
	received := make(chan struct{})
	cut := make(chan struct{})
	u := rawBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
		piece := strings.Repeat("p", 100)
		io.WriteString(c, piece)
		if r.URL.Path == "/stream" {
			// The rest waits until the client has the first piece: a proxy that
			// buffered would never show it.
			select {
			case <-received:
			case <-time.After(20 * time.Second):
				return false
			}
		}
		for {
			time.Sleep(250 * time.Millisecond)
			if _, err := io.WriteString(c, piece); err != nil {
				close(cut)
				return false
			}
		}
	})
	lb := startCore(t, map[string]any{"servers": backendsConfig(u), "health_check": fastChecks(nil)})

	resp, err := http.Get(lb.url + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 100)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("reading the first piece: %v", err)
	}
	close(received)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("reading the second piece: %v", err)
	}
	if st := lb.status(t); st.Pool.Busy != 1 {
		t.Errorf("pool busy = %d while the response streams, want 1", st.Pool.Busy)
	}
	resp.Body.Close() // the client leaves
	select {
	case <-cut:
	case <-time.After(20 * time.Second):
		t.Fatal("the backend connection stayed open after the client left")
	}
	waitUntil(t, "the worker freed", func() bool { return lb.status(t).Pool.Busy == 0 })
	if state, _, _, failures := lb.backendStatus(t, u); state != "up" || failures != 0 {
		t.Errorf("backend %s with %d failures after the client left, want up with none", state, failures)
	}
}

func TestMalformedBackendAnswerIsNotEchoed(t *testing.T) {
	secrets := []string{"hunter2", "db1.internal", "Set-Cookie"}
	for _, tc := range []struct{ name, answer string }{
		{"bad content length", "HTTP/1.1 200 OK\r\nSet-Cookie: session=hunter2\r\nX-Upstream: db1.internal\r\nContent-Length: abc\r\n\r\n"},
		{"bad status line", "HTTX/1.1 2OO hunter2 db1.internal\r\nSet-Cookie: a=b\r\n\r\n"},
		{"header without colon", "HTTP/1.1 200 OK\r\nSet-Cookie hunter2 db1.internal\r\nContent-Length: 0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := rawBackend(t, func(c net.Conn, _ *http.Request, _ []byte) bool {
				io.WriteString(c, tc.answer)
				return false
			})
			lb := startCore(t, map[string]any{"servers": backendsConfig(u), "load_balancer": map[string]any{"retries": 0}})
			resp, err := http.Get(lb.url + "/x")
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if resp.StatusCode != 502 {
				t.Errorf("status %d, want 502", resp.StatusCode)
			}
			for _, s := range secrets {
				if strings.Contains(body, s) || strings.Contains(fmt.Sprint(resp.Header), s) {
					t.Errorf("the 502 carries the backend's %q: %v %s", s, resp.Header, body)
				}
			}
			var e struct{ Error, Code string }
			if json.Unmarshal([]byte(body), &e) != nil || e.Code != "backend_failed" {
				t.Errorf("body %s, want the proxy's JSON error", body)
			}
		})
	}
}

func TestConnectionCannotRemoveFramingOrForwardedHeaders(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		json.NewEncoder(w).Encode(map[string]string{"host": r.Host, "xfh": r.Header.Get("X-Forwarded-Host"),
			"xff": r.Header.Get("X-Forwarded-For"), "body": string(body)})
	}))
	t.Cleanup(s.Close)
	lb := startCore(t, map[string]any{"servers": backendsConfig(s.URL), "health_check": fastChecks(nil)})
	addr := strings.TrimPrefix(lb.url, "http://")
	for _, conn := range []string{"Content-Length", "Host", "X-Forwarded-For, X-Forwarded-Host", "Transfer-Encoding"} {
		for i := range 3 {
			resp, body := rawRequest(t, addr, "POST /x HTTP/1.1\r\nHost: app.example\r\nConnection: "+conn+
				"\r\nContent-Length: 11\r\n\r\nhello world")
			var got map[string]string
			_ = json.Unmarshal([]byte(body), &got)
			if resp.StatusCode != 200 || got["body"] != "hello world" || got["host"] != "app.example" ||
				got["xfh"] != "app.example" || got["xff"] != "127.0.0.1" {
				t.Errorf("Connection: %s (%d): %d %s, want the body, Host and forwarded headers intact", conn, i, resp.StatusCode, body)
			}
		}
	}
	if state, _, _, failures := lb.backendStatus(t, s.URL); state != "up" || failures != 0 {
		t.Errorf("backend %s with %d failures, want up with none", state, failures)
	}
}

func TestPluginThatNeverStartsLeavesNothingBehind(t *testing.T) {
	_, a := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(a)})
	script := t.TempDir() + "/sleepy.sh"
	// The marker makes the script's child findable among the machine's processes.
	writeFile(t, script, "#!/bin/sh\nsleep 317.25\n", 0o755)

	cfg := lb.cfg
	section(cfg, "load_balancer")["strategy"] = "sleepy"
	section(cfg, "load_balancer")["timeouts"] = map[string]any{"plugin_start": "1s"}
	cfg["plugins"] = map[string]any{"sleepy": map[string]any{"command": script}}
	gen := lb.save(t, cfg)
	waitUntil(t, "the sleeping plugin refused", func() bool {
		g, lastErr := lb.generation(t)
		return g == gen-1 && strings.Contains(lastErr, "sleepy")
	})
	waitUntil(t, "no process of the plugin left", func() bool { return len(processesWith("317.25")) == 0 })

	section(cfg, "load_balancer")["strategy"] = "weighted"
	delete(cfg, "plugins")
	lb.applied(t, lb.save(t, cfg))
	if st := lb.status(t); st.Strategy.Name != "weighted" || st.Strategy.State != "running" {
		t.Errorf("strategy %+v after the good edit, want weighted running", st.Strategy)
	}
}

func TestHealthStatusAndLogAgree(t *testing.T) {
	var healthy, failing atomic.Bool
	healthy.Store(true)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && !healthy.Load() || r.URL.Path != "/health" && failing.Load() {
			w.WriteHeader(500)
		}
	}))
	t.Cleanup(s.Close)
	_, other := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(s.URL, other),
		"health_check": fastChecks(map[string]any{"passive": map[string]any{"consecutive_failures": 3, "ejection_time": "3s"}})})

	type seen struct{ state, reason string }
	var observed []seen
	await := func(what, want string) {
		t.Helper()
		waitUntil(t, what, func() bool {
			state, reason, _, _ := lb.backendStatus(t, s.URL)
			return state == want && reason != ""
		})
		state, reason, _, _ := lb.backendStatus(t, s.URL)
		observed = append(observed, seen{state, reason})
	}

	// Failing requests eject it; failing checks take it down while it is ejected;
	// the ejection ends while it is down (no change); passing checks bring it up.
	failing.Store(true)
	client := &http.Client{Timeout: 5 * time.Second}
	waitUntil(t, "the backend ejected", func() bool {
		if resp, err := client.Get(lb.url + "/x"); err == nil {
			resp.Body.Close()
		}
		state, _, _, _ := lb.backendStatus(t, s.URL)
		return state == "ejected"
	})
	await("ejected", "ejected")
	healthy.Store(false)
	await("down", "down")
	time.Sleep(3500 * time.Millisecond) // the ejection ends while it is down
	if state, reason, _, _ := lb.backendStatus(t, s.URL); state != "down" || reason != observed[1].reason {
		t.Errorf("after the ejection time: %s %q, want still down %q", state, reason, observed[1].reason)
	}
	failing.Store(false)
	healthy.Store(true)
	await("up", "up")
	if _, _, lastErr, _ := lb.backendStatus(t, s.URL); lastErr != "" {
		t.Errorf("last_error %q once healthy again, want none", lastErr)
	}

	// The log said each change in the same words, and nothing else changed.
	var logged []seen
	for line := range strings.Lines(lb.Log()) {
		if !strings.Contains(line, "backend="+s.URL) || !strings.Contains(line, " state=") ||
			strings.Contains(line, "health check failing") {
			continue
		}
		logged = append(logged, seen{field(line, "state"), field(line, "reason")})
	}
	if fmt.Sprint(logged) != fmt.Sprint(observed) {
		t.Errorf("log said %v, status showed %v: want the same changes", logged, observed)
	}
	for _, o := range observed {
		if o.state == "down" && !strings.HasPrefix(o.reason, "active:") || o.state == "ejected" && !strings.HasPrefix(o.reason, "passive:") {
			t.Errorf("state %s with reason %q, want a reason of its own kind", o.state, o.reason)
		}
	}
}

func TestBackendThatNeverComesUpIsLogged(t *testing.T) {
	_, a := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(a), "health_check": fastChecks(nil)})
	dead := "http://127.0.0.1:1" // nothing listens on port 1
	cfg := lb.cfg
	cfg["servers"] = backendsConfig(a, dead)
	lb.applied(t, lb.save(t, cfg))
	waitUntil(t, "a log line about the new backend", func() bool {
		return strings.Contains(lb.Log(), "backend health check failing: backend="+dead)
	})
	state, reason, lastErr, _ := lb.backendStatus(t, dead)
	if state != "down" || !strings.Contains(reason, "waiting for its health checks") || lastErr == "" {
		t.Errorf("never-up backend: %s %q %q, want down waiting for checks, with the check's error", state, reason, lastErr)
	}
}

// field returns the value of key in a logfmt line ("" when absent).
func field(line, key string) string {
	_, rest, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return ""
	}
	if strings.HasPrefix(rest, `"`) {
		v, _, _ := strings.Cut(rest[1:], `"`)
		return v
	}
	v, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
	return v
}

func TestBareLFRequestAnsweredAtOnce(t *testing.T) {
	_, u := startBackend(t)
	// With a minute to read headers, a request left waiting for CRLF CRLF would hang
	// far past the 20s this client waits.
	lb := startCore(t, map[string]any{"servers": backendsConfig(u),
		"load_balancer": map[string]any{"timeouts": map[string]any{"read_header": "60s"}}})
	addr := strings.TrimPrefix(lb.url, "http://")
	resp, body := rawRequest(t, addr, "GET /echo-headers HTTP/1.1\nHost: app\nConnection: close\n\n")
	// Either answer is sound (DESIGN section 11): the fasthttp engine refuses the
	// request, the eventloop engine reads it as HAProxy does.
	refused := resp.StatusCode == 400 && strings.Contains(body, "bare LF")
	served := resp.StatusCode == 200 && strings.Contains(body, `"host":"app"`) && strings.Contains(body, `"path":"/echo-headers"`)
	if !refused && !served {
		t.Errorf("bare-LF request = %d %s, want 400 naming the bare LF, or the request served", resp.StatusCode, body)
	}
	// A well-formed request on the next connection is served.
	if resp, body := rawRequest(t, addr, "GET /health HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"); resp.StatusCode != 200 {
		t.Errorf("CRLF request after it = %d %s, want 200", resp.StatusCode, body)
	}
}

func TestAbsoluteFormTargetKeepsHostAndForwardedHostTogether(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	resp, body := rawRequest(t, strings.TrimPrefix(lb.url, "http://"),
		"GET http://target.example/echo-headers HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n")
	var got struct {
		Host    string              `json:"host"`
		Headers map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("absolute-form request = %d %s", resp.StatusCode, body)
	}
	if xfh := http.Header(got.Headers).Get("X-Forwarded-Host"); got.Host != "target.example" || xfh != "target.example" {
		t.Errorf("backend saw Host %q and X-Forwarded-Host %q, want both target.example (the target's host)", got.Host, xfh)
	}
}

func TestResponseHeadersPassAsSentWithNothingAdded(t *testing.T) {
	u := rawBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		if r.URL.Path == "/bare" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
		} else {
			io.WriteString(c, "HTTP/1.1 201 Created\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nContent-Type: application/x-custom\r\n"+
				"Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; HttpOnly\r\nX-Thing: one\r\nX-Thing: two\r\nContent-Length: 2\r\n\r\nok")
		}
		return true
	})
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	addr := strings.TrimPrefix(lb.url, "http://")
	resp, body := rawRequest(t, addr, "GET /bare HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
	if _, date := resp.Header["Date"]; resp.StatusCode != 200 || body != "hello" || date || resp.Header["Content-Type"] != nil || len(resp.Header) != 1 {
		t.Errorf("bare answer = %d %q %v, want 200 hello with no header added (no Date, no Content-Type)", resp.StatusCode, body, resp.Header)
	}
	resp, body = rawRequest(t, addr, "GET /full HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
	h := resp.Header
	if resp.StatusCode != 201 || body != "ok" || h.Get("Date") != "Tue, 01 Jan 2030 00:00:00 GMT" ||
		h.Get("Content-Type") != "application/x-custom" || len(h.Values("Set-Cookie")) != 2 ||
		h.Values("Set-Cookie")[1] != "b=2; HttpOnly" || strings.Join(h.Values("X-Thing"), ",") != "one,two" {
		t.Errorf("full answer = %d %q %v, want the backend's headers as sent", resp.StatusCode, body, h)
	}
}

func TestTrailersPassThrough(t *testing.T) {
	u := rawBackend(t, func(c net.Conn, _ *http.Request, _ []byte) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"+
			"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n")
		return true
	})
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	resp, err := http.Get(lb.url + "/t")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp) // trailers arrive after the body
	if body != "hello" || resp.Trailer.Get("X-Checksum") != "abc123" {
		t.Errorf("answer %q with trailers %v, want hello and X-Checksum abc123", body, resp.Trailer)
	}
}

func TestKeepAlivePOSTBodiesWithLineBreaksPass(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d", len(body))
	}))
	t.Cleanup(s.Close)
	lb := startCore(t, map[string]any{"servers": backendsConfig(s.URL)})
	c, err := net.Dial("tcp", strings.TrimPrefix(lb.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	// JSON lines, LF-separated, the header and the start of the body in one write,
	// the rest a moment later: on a kept-alive connection, after a first request.
	body := strings.Repeat(`{"line":"x"}`+"\n", 2000)
	for i := range 3 {
		fmt.Fprintf(c, "POST /lines HTTP/1.1\r\nHost: app\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:100])
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, body[100:])
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(got) != strconv.Itoa(len(body)) {
			t.Errorf("request %d = %d %s, want 200 and the body's length %d", i, resp.StatusCode, got, len(body))
		}
	}
}

// A client that asks for the status and then closes its side of the connection (a
// half-close, as `printf ... | nc -N` does) still gets its answer, though the answer
// comes from the control plane.
func TestHalfClosedClientGetsStatus(t *testing.T) {
	_, u := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	addr := strings.TrimPrefix(lb.url, "http://")
	ask := func(raw string) (string, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, raw); err != nil {
			return "", err
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return "", err
		}
		all, err := io.ReadAll(c)
		return string(all), err
	}
	for i := range 50 {
		got, err := ask("GET /queue/status HTTP/1.1\r\nHost: lb\r\n\r\n")
		if err != nil || !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.Contains(got, `"backends"`) {
			t.Fatalf("status request %d, then a half-close: %q, %v; want 200 and the status JSON", i, got, err)
		}
	}
}
