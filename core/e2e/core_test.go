//go:build unix

package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestLeastconnSpreadsOverEqualBackends(t *testing.T) {
	var urls []string
	for range 3 {
		_, u := startBackend(t, "-work", "5ms", "-workers", "64")
		urls = append(urls, u)
	}
	lb := startCore(t, map[string]any{"servers": backendsConfig(urls...)})

	counts := countBy(t, postMany(lb.url+"/requests", 300, 10))
	for _, u := range urls {
		if got := counts[hostOf(u)]; got < 60 {
			t.Errorf("backend %s served %d of 300, want at least 20%% (counts %v)", u, got, counts)
		}
	}
	st := lb.status(t)
	var total uint64
	for _, b := range st.Backends {
		total += b.Requests
	}
	if total != 300 || st.Strategy.Name != "leastconn" || st.Strategy.State != "running" || st.Pool.Admitted < 300 {
		t.Errorf("status = %+v, want 300 requests counted over the backends by leastconn", st)
	}
}

func TestLeastconnSendsLessToSlowBackend(t *testing.T) {
	_, fast1 := startBackend(t, "-work", "2ms", "-workers", "64")
	_, fast2 := startBackend(t, "-work", "2ms", "-workers", "64")
	_, slow := startBackend(t, "-work", "100ms", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(fast1, fast2, slow)})

	counts := countBy(t, postMany(lb.url+"/requests", 300, 12))
	s, f1, f2 := counts[hostOf(slow)], counts[hostOf(fast1)], counts[hostOf(fast2)]
	if s*3 > min(f1, f2) {
		t.Errorf("slow backend served %d, fast ones %d and %d: want the slow one under a third of either", s, f1, f2)
	}
}

func TestFullPoolSheds503WithRetryAfter(t *testing.T) {
	_, u := startBackend(t, "-work", "500ms", "-workers", "64")
	lb := startCore(t, map[string]any{
		"servers":    backendsConfig(u),
		"threadpool": map[string]any{"min_workers": 1, "max_workers": 2, "queue_capacity": 2, "queue_timeout": "30s"},
	})
	answers := postMany(lb.url+"/requests", 12, 12)
	var ok, shed int
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("request failed without an answer: %v", a.err)
		case a.status == 200:
			ok++
		case a.status == 503:
			shed++
			var body struct{ Error, Code string }
			if err := json.Unmarshal(a.body, &body); err != nil || body.Code != "queue_full" || body.Error == "" {
				t.Errorf("503 body = %s, want JSON with code queue_full", a.body)
			}
			if a.header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After: %v", a.header)
			}
		default:
			t.Errorf("answer %d %s, want 200 or 503", a.status, a.body)
		}
	}
	// 2 workers and 2 queue places: at least 4 are served, the rest shed at once.
	if ok < 4 || shed == 0 || ok+shed != 12 {
		t.Errorf("200s = %d, 503s = %d, want at least 4 served and the rest shed", ok, shed)
	}
	if st := lb.status(t); st.Pool.Shed != uint64(shed) || st.Pool.MaxWorkers != 2 || st.Pool.Workers > 2 {
		t.Errorf("pool status = %+v, want shed %d and at most 2 workers", st.Pool, shed)
	}
}

func TestQueueTimeoutSheds503(t *testing.T) {
	_, u := startBackend(t, "-work", "2s", "-workers", "64")
	lb := startCore(t, map[string]any{
		"servers":    backendsConfig(u),
		"threadpool": map[string]any{"min_workers": 1, "max_workers": 1, "queue_capacity": 10, "queue_timeout": "100ms"},
	})
	answers := postMany(lb.url+"/requests", 3, 3)
	var timedOut int
	for _, a := range answers {
		if a.status == 503 && strings.Contains(string(a.body), `"queue_timeout"`) && a.header.Get("Retry-After") != "" {
			timedOut++
		} else if a.status != 200 {
			t.Errorf("answer %d %s (err %v), want 200 or 503 queue_timeout", a.status, a.body, a.err)
		}
	}
	if timedOut != 2 {
		t.Errorf("%d requests timed out in the queue, want 2 (one worker, 2s of work, 100ms queue_timeout)", timedOut)
	}
}

func TestStreamedResponseArrivesInPieces(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	// The backend sends "chunk 0", then waits a minute before "chunk 1": the client
	// can only read the first chunk if the proxy passes it on before the end.
	resp, err := http.Get(lb.url + "/stream?chunks=2&interval=1m")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "chunk 0\n" {
		t.Fatalf("first line = %q, %v, want \"chunk 0\\n\" while the backend still streams", line, err)
	}
	if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
		t.Errorf("Transfer-Encoding = %v, want chunked", te)
	}
}

// pattern is the test backend's /download content: byte i is i%251.
type pattern struct{ off, n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		b[i] = byte((p.off + int64(i)) % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func TestLargeBodiesStreamWithSmallHeap(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	const size = 256 << 20

	// Upload: the backend hashes what it received.
	want := sha256.New()
	_, _ = io.Copy(want, &pattern{n: size})
	req, err := http.NewRequest("POST", lb.url+"/upload", &pattern{n: size})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	var got struct {
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.Bytes != size || got.SHA256 != hex.EncodeToString(want.Sum(nil)) {
		t.Fatalf("upload answer = %+v, %v, want %d bytes with the sent hash", got, err, size)
	}

	// Download: the client checks every byte.
	resp, err = http.Get(lb.url + "/download?bytes=" + strconv.Itoa(size))
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	defer resp.Body.Close()
	gotHash, wantHash := sha256.New(), sha256.New()
	n, err := io.Copy(gotHash, resp.Body)
	_, _ = io.Copy(wantHash, &pattern{n: size})
	if err != nil || n != size || string(gotHash.Sum(nil)) != string(wantHash.Sum(nil)) {
		t.Fatalf("download = %d bytes, %v, want %d bytes of the pattern", n, err, size)
	}

	// The proxy's heap never held a body: what it got from the OS stays small.
	if heap := metric(t, lb, "go_memstats_heap_sys_bytes"); heap > 64<<20 {
		t.Errorf("proxy heap_sys = %.0f MiB after 2 x 256 MiB, want under 64 MiB", heap/(1<<20))
	}
}

// metric scrapes one unlabelled value from the core's /metrics.
func metric(t *testing.T, lb *lbInstance, name string) float64 {
	t.Helper()
	resp, err := http.Get(lb.admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s:\n%s", name, body)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWebSocketEcho(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(lb.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through the proxy: %v (response %v)", err, resp)
	}
	defer conn.Close()
	for i := range 3 {
		msg := fmt.Sprintf("hello %d", i)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := conn.ReadMessage()
		if err != nil || typ != websocket.TextMessage || string(got) != msg {
			t.Fatalf("echo = %d %q, %v, want text %q", typ, got, err, msg)
		}
	}
	// The tunnel holds no worker (the status page takes none either), but the
	// backend counts the open socket.
	if st := lb.status(t); st.Pool.Busy != 0 || st.Backends[0].Inflight != 1 {
		t.Errorf("with a WebSocket open pool busy = %d, backend inflight = %d, want 0 and 1", st.Pool.Busy, st.Backends[0].Inflight)
	}
}

func TestSIGTERMDrainsInFlightAndExitsZero(t *testing.T) {
	_, u := startBackend(t, "-work", "1s", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	client := &http.Client{Timeout: 30 * time.Second}
	results := make(chan served, 5)
	for range 5 {
		go func() { results <- post(client, lb.url+"/requests") }()
	}
	waitUntil(t, "5 requests in flight", func() bool { return lb.status(t).Pool.Busy >= 5 })
	if code := lb.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	for range 5 {
		if a := <-results; a.err != nil || a.status != 200 {
			t.Errorf("in-flight request = %d %s, %v; want 200", a.status, a.body, a.err)
		}
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(lb.url, "http://")); err == nil {
		t.Errorf("the core still accepts connections after it exited")
	}
	if log := lb.Log(); !strings.Contains(log, "draining") || !strings.Contains(log, "stopped") {
		t.Errorf("log does not tell of the drain:\n%s", log)
	}
}

// waitUntil polls cond; the deadline only guards against a hang.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHeadersForwarded(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	req, _ := http.NewRequest("GET", lb.url+"/echo-headers", nil)
	req.Host = "app.example"
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic Zm9v")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-End-To-End", "kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Host    string              `json:"host"`
		Headers map[string][]string `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	h := http.Header(got.Headers)
	if got.Host != "app.example" {
		t.Errorf("backend saw Host %q, want the client's app.example", got.Host)
	}
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization", "Connection"} {
		v := h.Values(k)
		// The fasthttp engine sends a client connection's first request on a backend
		// connection of its own with its own Connection: close (load_balancer.reuse
		// "safe"); nothing of the client's passes.
		if k == "Connection" && onNetHTTP() && len(v) == 1 && v[0] == "close" {
			continue
		}
		if len(v) > 0 {
			t.Errorf("hop-by-hop %s = %q reached the backend", k, v)
		}
	}
	if v := h.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want only the client address 127.0.0.1", v)
	}
	if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Host") != "app.example" || h.Get("X-End-To-End") != "kept" {
		t.Errorf("headers = %v, want X-Forwarded-Proto http, X-Forwarded-Host app.example, X-End-To-End kept", h)
	}
}

func TestKeepAliveBothSides(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	var reused int
	upstream := map[string]bool{}
	for range 5 {
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				reused++
			}
		}}
		req, _ := http.NewRequest("GET", lb.url+"/echo-headers", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			RemoteAddr string `json:"remote_addr"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		upstream[got.RemoteAddr] = true
	}
	if reused != 4 {
		t.Errorf("client connection reused %d times of 4", reused)
	}
	// Under load_balancer.reuse "safe" the fasthttp engine sends the first request on
	// a connection it closes after the answer; the other four share one.
	want := 1
	if onNetHTTP() {
		want = 2
	}
	if len(upstream) != want {
		t.Errorf("the backend saw %d proxy connections for 5 sequential requests, want %d: %v", len(upstream), want, upstream)
	}
}

func TestProxyErrorsAreJSON(t *testing.T) {
	// A port nothing listens on: bind one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	_, slow := startBackend(t, "-work", "5s")

	tests := []struct {
		name    string
		cfg     map[string]any
		status  int
		code    string
		request string
	}{
		{"dead backend", map[string]any{"servers": backendsConfig(dead)}, 502, "backend_failed", "/requests"},
		{"backend timeout", map[string]any{"servers": backendsConfig(slow),
			"load_balancer": map[string]any{"timeouts": map[string]any{"response_header": "200ms"}}}, 504, "backend_timeout", "/requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb := startCore(t, tt.cfg)
			a := post(http.DefaultClient, lb.url+tt.request)
			var body struct{ Error, Code string }
			if err := json.Unmarshal(a.body, &body); a.status != tt.status || err != nil || body.Code != tt.code || body.Error == "" {
				t.Errorf("answer = %d %s, want %d with JSON code %q", a.status, a.body, tt.status, tt.code)
			}
		})
	}
}

func TestRetriesUnreachableBackendOnAnother(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	_, live := startBackend(t, "-work", "1ms")
	lb := startCore(t, map[string]any{"servers": backendsConfig(dead, live)})
	// POST is not idempotent, but a refused connection received nothing: retry it.
	for _, a := range postMany(lb.url+"/requests", 20, 4) {
		if a.err != nil || a.status != 200 || a.server != hostOf(live) {
			t.Fatalf("answer = %d %s, %v, want 200 from the live backend", a.status, a.body, a.err)
		}
	}
}

func TestAbusiveRequestsRefused(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	addr := strings.TrimPrefix(lb.url, "http://")
	tests := []struct {
		name, raw string
		status    int
	}{
		{"smuggling", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"conflicting lengths", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400},
		{"huge header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20000) + "\r\n\r\n", 431},
		{"too many headers", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-H: 1\r\n", 150) + "\r\n", 431},
		{"garbage", "HELLO\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go func() { _, _ = io.WriteString(c, tt.raw) }()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), `"code"`) {
				t.Errorf("answer = %d %s, want %d with a JSON error", resp.StatusCode, body, tt.status)
			}
		})
	}
}

func TestSlowClientHeaderTimesOut(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u),
		"load_balancer": map[string]any{"timeouts": map[string]any{"read_header": "300ms"}}})
	c, err := net.Dial("tcp", strings.TrimPrefix(lb.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n") // and never the end of the headers
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the proxy kept a client that never finished its headers for 20s")
	}
}

func TestStatusAndMetrics(t *testing.T) {
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	post(http.DefaultClient, lb.url+"/requests")
	for _, target := range []string{lb.url + "/queue/status", lb.admin + "/status"} {
		for _, method := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(method, target, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var raw struct {
				Strategy, Pool, Config map[string]any
				Backends               []map[string]any
			}
			err = json.NewDecoder(resp.Body).Decode(&raw)
			resp.Body.Close()
			if err != nil || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%s %s: %v, content type %q", method, target, err, resp.Header.Get("Content-Type"))
			}
			if len(raw.Backends) != 1 {
				t.Fatalf("%s %s: %d backends, want 1", method, target, len(raw.Backends))
			}
			for section, want := range map[string]struct {
				got  map[string]any
				keys []string
			}{
				"strategy": {raw.Strategy, []string{"name", "state", "pid"}},
				"pool":     {raw.Pool, []string{"workers", "busy", "min_workers", "max_workers", "queue_length", "queue_capacity", "shed"}},
				"backends": {raw.Backends[0], []string{"url", "healthy", "weight", "inflight", "queue_length", "requests", "failures", "state", "reason", "source"}},
				"config":   {raw.Config, []string{"path", "generation", "loaded_at", "last_error"}},
			} {
				for _, k := range want.keys {
					if _, ok := want.got[k]; !ok {
						t.Errorf("%s %s: status has no %s.%s", method, target, section, k)
					}
				}
			}
		}
	}
	st := lb.status(t)
	b := st.Backends[0]
	if b.Reason == "" {
		t.Errorf("backend reason is empty before any change of state, want why it is %s", b.State)
	}
	if len(st.Backends) != 1 || b.URL != u || !b.Healthy || b.Weight != 1 || b.Requests != 1 || st.Config.Generation != 1 {
		t.Errorf("status = %+v, want one healthy backend with 1 request, generation 1", st)
	}
	if got := metric(t, lb, "lb_pool_admitted_total"); got < 1 {
		t.Errorf("lb_pool_admitted_total = %v, want at least 1", got)
	}
	if got := metric(t, lb, regexp.QuoteMeta(`lb_backend_body_bytes_total{backend="`+u+`",direction="out",pool="default"}`)); got < 1 {
		t.Errorf("lb_backend_body_bytes_total out = %v, want the answer's body bytes", got)
	}
	// Profiles under load come from the admin address (README "Performance").
	resp, err := http.Get(lb.admin + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Errorf("/debug/pprof/heap: %s, body starts %q", resp.Status, string(body[:min(len(body), 60)]))
	}
}

func TestBadConfigRefusedAtStart(t *testing.T) {
	path := t.TempDir() + "/config.json"
	tests := []struct{ name, src, want string }{
		{"impossible value", "{\n  \"threadpool\": {\"min_workers\": 9, \"max_workers\": 2}\n}", path + ":2:33: threadpool.min_workers"},
		{"syntax", "{\n  \"threadpool\": {\"max_workers\": 2,}\n}", path + ":2:"},
		{"unknown key", `{"threadpool": {"max_wokers": 2}}`, "threadpool.max_wokers: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(coreBin, "-config", path).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("core on %s: err %v, output %s; want a refusal containing %q", tt.src, err, out, tt.want)
			}
		})
	}
}
