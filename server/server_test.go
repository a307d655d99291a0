package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// start serves a backend built from cfg on a loopback httptest server whose address the
// backend names in its answers.
func start(t *testing.T, cfg serverConfig) (*httptest.Server, *backend) {
	t.Helper()
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.Queue == 0 {
		cfg.Queue = 10
	}
	ts := httptest.NewUnstartedServer(nil)
	cfg.Addr = ts.Listener.Addr().String()
	b := newServer(cfg)
	ts.Config.Handler = b
	ts.Start()
	t.Cleanup(b.Close)
	t.Cleanup(ts.Close) // runs first: requests end before the workers stop
	return ts, b
}

// do sends a request and decodes a JSON answer into v (when v is not nil).
func do(t *testing.T, method, url string, v any) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s %s: decoding JSON: %v", method, url, err)
		}
	}
	return resp
}

func TestRequestsNamesServer(t *testing.T) {
	ts, _ := start(t, serverConfig{Work: time.Millisecond})
	for _, method := range []string{"POST", "GET"} {
		var got requestAnswer
		resp := do(t, method, ts.URL+"/requests", &got)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /requests status = %d, want 200", method, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		if want := ts.Listener.Addr().String(); got.Server != want {
			t.Errorf("server = %q, want %q", got.Server, want)
		}
		if got.WorkMS != 1 || got.Processed < 1 {
			t.Errorf("answer = %+v, want work_ms 1 and processed >= 1", got)
		}
	}
}

// waitFigures polls /queue/status until ok accepts the figures.
func waitFigures(t *testing.T, url string, ok func(loadFigures) bool) loadFigures {
	t.Helper()
	for {
		var f loadFigures
		do(t, "GET", url+"/queue/status", &f)
		if ok(f) {
			return f
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting; last figures %+v", f)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestQueueFull(t *testing.T) {
	ts, _ := start(t, serverConfig{Work: time.Hour, Workers: 1, Queue: 1})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // frees the worker and the queue slot
	hold := func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/requests", nil)
		wg.Go(func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	hold() // taken by the only worker
	waitFigures(t, ts.URL, func(f loadFigures) bool { return f.Busy == 1 })
	hold() // waits in the only queue slot
	waitFigures(t, ts.URL, func(f loadFigures) bool { return f.QueueLength == 1 })

	var body map[string]string
	resp := do(t, "POST", ts.URL+"/requests", &body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third request status = %d, want 503", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Error("503 has no Retry-After")
	}
	if body["code"] != "queue_full" || body["error"] != "queue full" {
		t.Errorf("503 body = %v, want code queue_full", body)
	}
	f := waitFigures(t, ts.URL, func(loadFigures) bool { return true })
	want := loadFigures{Server: ts.Listener.Addr().String(), QueueLength: 1, QueueCapacity: 1, Workers: 1, Busy: 1, Rejected: 1}
	if f != want {
		t.Errorf("/queue/status = %+v, want %+v", f, want)
	}
}

func TestQueueStatus(t *testing.T) {
	ts, _ := start(t, serverConfig{Workers: 3, Queue: 7})
	do(t, "POST", ts.URL+"/requests", nil)
	for _, method := range []string{"GET", "POST"} {
		var got map[string]any
		if resp := do(t, method, ts.URL+"/queue/status", &got); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /queue/status status = %d, want 200", method, resp.StatusCode)
		}
		for key, want := range map[string]any{"queue_length": 0.0, "queue_capacity": 7.0, "workers": 3.0, "processed": 1.0, "failed": 0.0} {
			if got[key] != want {
				t.Errorf("%s /queue/status %s = %v, want %v", method, key, got[key], want)
			}
		}
	}
}

func TestHealth(t *testing.T) {
	for _, tc := range []struct {
		fail   bool
		status int
		word   string
	}{{false, 200, "ok"}, {true, 503, "failing"}} {
		ts, _ := start(t, serverConfig{HealthFail: tc.fail, Queue: 5})
		var got healthAnswer
		resp := do(t, "GET", ts.URL+"/health", &got)
		if resp.StatusCode != tc.status || got.Status != tc.word || got.QueueCapacity != 5 {
			t.Errorf("health-fail=%v: /health = %d %+v, want %d %q with queue_capacity 5", tc.fail, resp.StatusCode, got, tc.status, tc.word)
		}
	}
}

func TestFailRate(t *testing.T) {
	ts, _ := start(t, serverConfig{FailRate: 1})
	var body map[string]string
	resp := do(t, "POST", ts.URL+"/requests", &body)
	if resp.StatusCode != http.StatusInternalServerError || body["code"] == "" {
		t.Fatalf("fail-rate 1: /requests = %d %v, want 500 with a JSON error", resp.StatusCode, body)
	}
	var f loadFigures
	do(t, "GET", ts.URL+"/queue/status", &f)
	if f.Failed != 1 || f.Processed != 1 {
		t.Errorf("after one failure figures = %+v, want failed 1, processed 1", f)
	}
}

func TestSlowRate(t *testing.T) {
	ts, _ := start(t, serverConfig{SlowRate: 1, Slow: 2 * time.Millisecond})
	var got requestAnswer
	do(t, "POST", ts.URL+"/requests", &got)
	if got.WorkMS != 2 {
		t.Errorf("slow-rate 1: work_ms = %v, want 2", got.WorkMS)
	}
}

func TestStreamIsIncremental(t *testing.T) {
	ts, _ := start(t, serverConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The second chunk is an hour away: the first can only arrive if it was flushed.
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/stream?chunks=3&interval=1h", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("TransferEncoding = %v, want chunked", resp.TransferEncoding)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "chunk 0\n" {
		t.Fatalf("first chunk = %q, %v; want \"chunk 0\\n\"", line, err)
	}
}

func TestStreamAllChunks(t *testing.T) {
	ts, _ := start(t, serverConfig{})
	resp, err := http.Get(ts.URL + "/stream?chunks=3&interval=1ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if want := "chunk 0\nchunk 1\nchunk 2\n"; err != nil || string(body) != want {
		t.Errorf("stream body = %q, %v; want %q", body, err, want)
	}
	if resp := do(t, "GET", ts.URL+"/stream?chunks=-1", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("chunks=-1 status = %d, want 400", resp.StatusCode)
	}
}

func TestUpload(t *testing.T) {
	ts, _ := start(t, serverConfig{})
	data := bytes.Repeat([]byte("switchyard"), 300_001) // 3 MB
	resp, err := http.Post(ts.URL+"/upload", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got.Bytes != int64(len(data)) || got.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("/upload = %+v, want %d bytes, sha256 %x", got, len(data), sum)
	}
}

func TestDownload(t *testing.T) {
	ts, _ := start(t, serverConfig{})
	for _, n := range []int64{0, 1, 251 * 128, 1_000_003} {
		resp, err := http.Get(ts.URL + "/download?bytes=" + strconv.FormatInt(n, 10))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || int64(len(body)) != n || resp.ContentLength != n {
			t.Fatalf("download %d: got %d bytes, Content-Length %d, err %v", n, len(body), resp.ContentLength, err)
		}
		for i, c := range body {
			if c != byte(i%251) {
				t.Fatalf("download %d: byte %d = %d, want %d", n, i, c, i%251)
			}
		}
	}
}

func TestEchoHeaders(t *testing.T) {
	ts, _ := start(t, serverConfig{})
	req, _ := http.NewRequestWithContext(t.Context(), "PATCH", ts.URL+"/echo-headers?x=1", nil)
	req.Host = "example.test"
	req.Header.Set("X-Test", "a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Method, Host, Path string
		Headers            map[string][]string
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "PATCH" || got.Host != "example.test" || got.Path != "/echo-headers?x=1" || got.Headers["X-Test"][0] != "a" {
		t.Errorf("/echo-headers = %+v", got)
	}
}

func TestOtherPath(t *testing.T) {
	ts, _ := start(t, serverConfig{})
	var got map[string]string
	resp := do(t, "DELETE", ts.URL+"/some/where", &got)
	if resp.StatusCode != 200 || got["path"] != "/some/where" || got["server"] != ts.Listener.Addr().String() {
		t.Errorf("/some/where = %d %v", resp.StatusCode, got)
	}
}

func TestWebSocketEcho(t *testing.T) {
	ts, _ := start(t, serverConfig{})
	c, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []struct {
		typ  int
		data string
	}{{websocket.TextMessage, "hello"}, {websocket.BinaryMessage, "\x00\x01\x02"}} {
		if err := c.WriteMessage(m.typ, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		typ, data, err := c.ReadMessage()
		if err != nil || typ != m.typ || string(data) != m.data {
			t.Errorf("echo of %q = %d %q %v, want %d %q", m.data, typ, data, err, m.typ, m.data)
		}
	}
}

func TestQueueFromConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          int
		wantErr       bool
	}{
		{"missing file", "", defaultQueue, false},
		{"key set", `{"servers": {"queue_capacity": 42}}`, 42, false},
		{"key absent", `{"load_balancer": {}}`, defaultQueue, false},
		{"bad JSON", `{"servers": `, defaultQueue, true},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
		if tc.content != "" {
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got, err := queueFromConfig(path)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: queueFromConfig = %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args    string
		wantErr bool
	}{
		{"8081", false},
		{"-work 0 -workers 1 -queue 0 -fail-rate 0.5 -seed 7 0", false},
		{"", true},
		{"8081 8082", true},
		{"70000", true},
		{"-workers 0 8081", true},
		{"-fail-rate 1.5 8081", true},
		{"-work -1s 8081", true},
		{"-queue -1 8081", true},
	} {
		cfg, port, err := parseArgs(strings.Fields(tc.args), defaultQueue, io.Discard)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseArgs(%q) = %+v, %q, %v; want error %v", tc.args, cfg, port, err, tc.wantErr)
		}
	}
}

// TestBinary builds the real command, runs it on port 0 from a directory holding a
// config.json, and stops it with SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	if out, err := exec.Command(goTool, "build", "-o", bin, "server.go").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"servers": {"queue_capacity": 9}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "-work", "0", "0")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "listening on ")
	if err != nil || !ok || !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		cmd.Process.Kill()
		t.Fatalf("first stdout line = %q, %v; want \"listening on 127.0.0.1:PORT\"", line, err)
	}

	var got requestAnswer
	if resp := do(t, "POST", "http://"+addr+"/requests", &got); resp.StatusCode != 200 || got.Server != addr {
		t.Errorf("/requests = %d %+v, want 200 naming %s", resp.StatusCode, got, addr)
	}
	var f loadFigures
	if do(t, "GET", "http://"+addr+"/queue/status", &f); f.QueueCapacity != 9 {
		t.Errorf("queue_capacity = %d, want 9 from config.json", f.QueueCapacity)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "server: listening: addr="+addr) {
		t.Errorf("log does not name %s:\n%s", addr, stderr.String())
	}
}
