//go:build unix

package e2e

// Tests of what goes on the wire between a misbehaving peer and the others (DESIGN
// section 11): a backend that answers late and twice, clients that half-close, framing
// that two parties could read two ways. Each runs on every data plane (see TestMain).

import (
	"bufio"
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

// headBackend serves a loopback socket that reads each request's head byte for byte
// (up to CRLF CRLF) and a body of bodyLen bytes (or, when bodyLen is -1, up to the
// chunked body's end "0\r\n...\r\n\r\n"), hands both to answer, and writes what it
// returns; an empty answer closes the connection. GET /health answers 200.
func headBackend(t *testing.T, answer func(head, body string) string) string {
	t.Helper()
	return "http://" + serveLoopback(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		for {
			head, body, ok := readRawRequest(br)
			if !ok {
				return
			}
			if strings.HasPrefix(head, "GET /health ") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			a := answer(head, body)
			if a == "" {
				return
			}
			io.WriteString(c, a)
		}
	})
}

// readRawRequest reads one request: its head as sent, and its body as sent (the
// framing of a chunked body included).
func readRawRequest(br *bufio.Reader) (head, body string, ok bool) {
	var h strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", "", false
		}
		h.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	head = h.String()
	lower := strings.ToLower(head)
	switch {
	case strings.Contains(lower, "\r\ntransfer-encoding: chunked"):
		var b strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return "", "", false
			}
			b.WriteString(line)
			hex := strings.TrimRight(line, "\r\n")
			if i := strings.IndexAny(hex, "; \t"); i >= 0 {
				hex = hex[:i]
			}
			size, err := strconv.ParseInt(hex, 16, 64)
			if err != nil {
				return "", "", false
			}
			if size == 0 {
				for { // the last chunk: trailers, up to the empty line
					l, err := br.ReadString('\n')
					if err != nil {
						return "", "", false
					}
					b.WriteString(l)
					if l == "\r\n" {
						return head, b.String(), true
					}
				}
			}
			data := make([]byte, size+2)
			if _, err := io.ReadFull(br, data); err != nil {
				return "", "", false
			}
			b.Write(data)
		}
	case strings.Contains(lower, "\r\ncontent-length: "):
		i := strings.Index(lower, "\r\ncontent-length: ") + len("\r\ncontent-length: ")
		var n int
		fmt.Sscanf(lower[i:], "%d", &n)
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", "", false
		}
		return head, string(buf), true
	}
	return head, "", true
}

// fieldLines returns the values of every line of head whose field name is name.
func fieldLines(head, name string) []string {
	var vs []string
	for _, line := range strings.Split(head, "\r\n") {
		n, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(n, name) {
			vs = append(vs, strings.TrimSpace(v))
		}
	}
	return vs
}

// rawExchange sends raw on a new connection, half-closes a moment later when
// halfClose is set, and returns everything the proxy sent until it closed.
func rawExchange(t *testing.T, addr, raw string, halfClose bool) string {
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
	if halfClose {
		time.Sleep(5 * time.Millisecond) // the FIN comes once the request is on its way
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := io.ReadAll(c)
	return string(all)
}

// A backend answers a request, then a moment later sends a second, unrequested answer
// on the same connection. With the default reuse policy ("safe") a new client's first
// request never goes on a backend connection another client used last, so no new
// client ever reads that answer as its own (HAProxy's http-reuse safe).
func TestLateAnswerNeverReachesAnotherClient(t *testing.T) {
	lb := startCore(t, map[string]any{"servers": backendsConfig(lateBackend(t))})
	addr := strings.TrimPrefix(lb.url, "http://")
	strayed := 0
	const rounds, clients = 12, 6
	for range rounds {
		if got := rawExchange(t, addr, "GET /late HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(got, "\r\n\r\nhello") {
			t.Fatalf("GET /late = %q, want hello", got)
		}
		// New clients, each with its first request, while the stray is on its way.
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range clients {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 40 * time.Millisecond)
				got := rawExchange(t, addr, "GET /fresh HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", false)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case strings.Contains(got, "STRAYED"):
					strayed++
				case !strings.HasSuffix(got, "\r\n\r\n/fresh"):
					t.Errorf("a new client's first request = %q, want /fresh", got)
				}
			})
		}
		wg.Wait()
		time.Sleep(150 * time.Millisecond) // the stray has come and gone
	}
	if strayed > 0 {
		t.Errorf("%d of %d new clients received another client's late answer (STRAYED)", strayed, rounds*clients)
	}
}

// lateBackend answers GET /late with hello, and 300ms later sends a second whole
// answer, STRAYED, on the same connection; then it goes on serving that connection.
// Every other path is answered with the path.
func lateBackend(t *testing.T) string {
	t.Helper()
	return rawBackend(t, func(c net.Conn, r *http.Request, _ []byte) bool {
		if r.URL.Path == "/late" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
			time.Sleep(300 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nSTRAYED")
			return true
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
		return true
	})
}

// Under "safe" every new client's first request opens a backend connection of its
// own; under "always" it may take an idle one another client used.
func TestReusePolicies(t *testing.T) {
	for _, tc := range []struct {
		reuse string
		conns func(n int) bool
		want  string
	}{
		{"safe", func(n int) bool { return n == 6 }, "6, one per client"},
		{"always", func(n int) bool { return n < 6 }, "fewer than 6"},
	} {
		t.Run(tc.reuse, func(t *testing.T) {
			var mu sync.Mutex
			conns := map[string]bool{}
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/health" {
					mu.Lock()
					conns[r.RemoteAddr] = true
					mu.Unlock()
				}
				io.WriteString(w, r.URL.Path)
			}))
			t.Cleanup(s.Close)
			lb := startCore(t, map[string]any{"servers": backendsConfig(s.URL), "load_balancer": map[string]any{"reuse": tc.reuse}})
			addr := strings.TrimPrefix(lb.url, "http://")
			for range 6 { // one after the other: an idle connection is there for the next
				if got := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(got, "\r\n\r\n/x") {
					t.Fatalf("GET /x = %q, want /x", got)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if !tc.conns(len(conns)) {
				t.Errorf("6 new clients, one request each, came over %d backend connections, want %s", len(conns), tc.want)
			}
		})
	}
}

// A client that sends its request and then closes its side (shutdown(SHUT_WR), as
// `nc -N` does) still gets the whole answer: a FIN read with the request ends nothing.
func TestHalfClosedClientGetsItsAnswer(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(50 * time.Millisecond) // the FIN is read before the answer comes
		fmt.Fprintf(w, "%s %s %q", r.Method, r.URL.Path, body)
	}))
	t.Cleanup(s.Close)
	lb := startCore(t, map[string]any{"servers": backendsConfig(s.URL)})
	addr := strings.TrimPrefix(lb.url, "http://")
	var wg sync.WaitGroup
	var mu sync.Mutex
	lost := 0
	for i := range 30 {
		wg.Go(func() {
			raw, want := "POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 2\r\n\r\nhi", `POST /up "hi"`
			if i%3 == 0 {
				raw, want = "GET /down HTTP/1.1\r\nHost: app\r\n\r\n", `GET /down ""`
			}
			got := rawExchange(t, addr, raw, true)
			if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, want) {
				mu.Lock()
				lost++
				mu.Unlock()
				t.Logf("half-closed client %d got %q, want 200 and %s", i, got, want)
			}
		})
	}
	wg.Wait()
	if lost > 0 {
		t.Errorf("%d of 30 half-closed clients lost their answer", lost)
	}
}

// A Content-Length given as a list of equal values, or on repeated lines, goes on as
// one value, so a backend that reads only one cannot be made to fail by a client (and
// ejected for it).
func TestContentLengthListGoesOnAsOneValue(t *testing.T) {
	u := headBackend(t, func(head, body string) string {
		cls := fieldLines(head, "Content-Length")
		if len(cls) != 1 || cls[0] != "5" {
			return "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
		}
		if strings.HasPrefix(head, "GET /twice ") {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"
	})
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	addr := strings.TrimPrefix(lb.url, "http://")
	for i := range 8 {
		for _, raw := range []string{
			"POST /list HTTP/1.1\r\nHost: app\r\nContent-Length: 5, 5\r\nConnection: close\r\n\r\nhello",
			"POST /lines HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		} {
			got := rawExchange(t, addr, raw, false)
			head, body, _ := strings.Cut(got, "\r\n\r\n")
			if onNetHTTP() && strings.HasPrefix(head, "HTTP/1.1 400 ") && strings.Contains(body, "content-length") {
				continue // fasthttp's server refuses both forms itself, as RFC 9110 section 8.6 allows
			}
			if !strings.HasPrefix(head, "HTTP/1.1 200 ") || body != "ok" {
				t.Errorf("request %d %q = %q, want 200 ok: the backend saw one Content-Length: 5", i, raw, got)
				continue
			}
			if cls := fieldLines(head+"\r\n", "Content-Length"); len(cls) != 1 || cls[0] != "2" {
				t.Errorf("the answer's Content-Length fields = %q, want one, 2", cls)
			}
		}
	}
	if state, _, _, failures := lb.backendStatus(t, u); state != "up" || failures != 0 {
		t.Errorf("backend %s, %d failures, want up with none", state, failures)
	}
}

// A WebSocket (or other upgraded) connection passes each side's FIN on and keeps the
// other direction open until it ends too: an echo sent after the client's FIN reaches
// the client, and bytes the client sends after the backend's FIN reach the backend.
func TestUpgradedConnectionPassesHalfCloses(t *testing.T) {
	got := make(chan string, 4)
	u := "http://" + serveLoopback(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, _, ok := readRawRequest(br)
		if !ok {
			return
		}
		if strings.HasPrefix(head, "GET /health ") {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if strings.HasPrefix(head, "GET /client-first ") {
			// Read until the client's FIN, then answer it.
			all, _ := io.ReadAll(br)
			io.WriteString(c, "echo:"+string(all))
			return
		}
		// The backend says all it has and closes its side first, then still
		// reads what the client sends.
		io.WriteString(c, "bye")
		c.(*net.TCPConn).CloseWrite()
		all, _ := io.ReadAll(br)
		got <- string(all)
	})
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	addr := strings.TrimPrefix(lb.url, "http://")
	upgrade := func(path string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", path)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade %s: %v %v", path, resp, err)
		}
		return c, br
	}

	c, br := upgrade("/client-first")
	io.WriteString(c, "ping")
	c.(*net.TCPConn).CloseWrite()
	if all, err := io.ReadAll(br); string(all) != "echo:ping" {
		t.Errorf("after the client's FIN the client read %q (%v), want the backend's echo:ping, then the end", all, err)
	}

	c, br = upgrade("/backend-first")
	buf := make([]byte, 3)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "bye" {
		t.Fatalf("read %q, %v, want bye", buf, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the backend's FIN the client read %v, want the end of stream", err)
	}
	io.WriteString(c, "still here")
	c.(*net.TCPConn).CloseWrite()
	select {
	case s := <-got:
		if s != "still here" {
			t.Errorf("after its FIN the backend read %q, want still here", s)
		}
	case <-time.After(10 * time.Second):
		t.Error("after its FIN the backend never heard the client's bytes and end")
	}
}

// What goes on is what both sides read the same way: chunk extensions are dropped,
// framing fields never pass as trailers, a 204 or 304 answer loses body framing, and
// an absolute-form target with user information is refused.
func TestAmbiguousFramingIsNotPassedOn(t *testing.T) {
	seen := make(chan string, 16)
	u := headBackend(t, func(head, body string) string {
		path := strings.Fields(head)[1]
		seen <- head + body
		switch path {
		case "/no-content":
			return "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\nX-Kept: yes\r\n\r\n"
		case "/not-modified":
			return "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: \"a\"\r\n\r\n"
		case "/chunked-answer":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5;name=\"unclosed\r\nhello\r\n0;last\r\nContent-Length: 3\r\nX-Sum: 1\r\nHost: evil\r\nTransfer-Encoding: gzip\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	addr := strings.TrimPrefix(lb.url, "http://")

	// A chunked request: extensions (one an unclosed quoted string) and framing
	// trailers do not reach the backend; the data and an ordinary trailer do.
	got := rawExchange(t, addr, "POST /chunked HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
		"5;a=\"unclosed\r\nhello\r\n6 ; b=1\r\n world\r\n0;end\r\nContent-Length: 3\r\nX-Sum: 2\r\nHost: evil\r\nTransfer-Encoding: gzip\r\n\r\n", false)
	switch {
	case onNetHTTP() && strings.HasPrefix(got, "HTTP/1.1 400 "):
		// fasthttp's body reader refuses white space before ";" and framing
		// trailers, after the head went on: the backend never reads a whole
		// request, and is not charged.
		select {
		case s := <-seen:
			t.Errorf("the backend read %q, want no whole request", s)
		case <-time.After(200 * time.Millisecond):
		}
	case !strings.HasPrefix(got, "HTTP/1.1 200 "):
		t.Fatalf("chunked request = %q, want 200", got)
	default:
		sent := <-seen
		_, body, _ := strings.Cut(sent, "\r\n\r\n")
		if strings.Contains(body, ";") || !strings.Contains(body, "hello") || !strings.Contains(body, " world") {
			t.Errorf("the backend read the chunked body %q, want hello world with no chunk extension", body)
		}
		if lower := strings.ToLower(body); strings.Contains(lower, "content-length") || strings.Contains(lower, "host:") ||
			strings.Contains(lower, "transfer-encoding") {
			t.Errorf("the backend read trailers %q, want no framing field among them", body)
		}
	}

	// The same for a chunked answer.
	got = rawExchange(t, addr, "GET /chunked-answer HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", false)
	<-seen
	_, body, _ := strings.Cut(got, "\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") || strings.Contains(body, ";") || !strings.Contains(body, "hello") {
		t.Errorf("chunked answer = %q, want hello with no chunk extension", got)
	}
	// The answer is whole, with its ordinary trailer. (fasthttp's backend client
	// refuses framing trailers itself: its client gets the data, then the close.)
	if !onNetHTTP() && !strings.HasSuffix(body, "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n") {
		t.Errorf("chunked answer body = %q, want hello and the X-Sum trailer, ended", body)
	}
	if lower := strings.ToLower(body); strings.Contains(lower, "content-length") || strings.Contains(lower, "host:") ||
		strings.Contains(lower, "transfer-encoding") {
		t.Errorf("the client read trailers %q, want no framing field among them", body)
	}

	// 204 and 304 answers carry no body framing.
	for _, path := range []string{"/no-content", "/not-modified"} {
		got = rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", false)
		<-seen
		head, _, _ := strings.Cut(got, "\r\n\r\n")
		head += "\r\n"
		if len(fieldLines(head, "Content-Length")) > 0 || len(fieldLines(head, "Transfer-Encoding")) > 0 {
			t.Errorf("GET %s = %q, want no Content-Length or Transfer-Encoding", path, got)
		}
	}

	// User information in an absolute-form target is refused.
	got = rawExchange(t, addr, "GET http://u:p@evil.example/ HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", false)
	if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Errorf("absolute-form target with user information = %q, want 400", got)
	}
	select {
	case s := <-seen:
		t.Errorf("the backend read %q, want nothing", s)
	default:
	}
}

// Under "safe" reuse a client that opens a connection per request never takes an
// idle backend connection, so the idle pool is bounded (256 per backend and data-plane
// process) rather than holding a connection per request until the idle timeout.
func TestSafeReuseBoundsIdleBackendConnections(t *testing.T) {
	var open atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	lb := startCore(t, map[string]any{"servers": backendsConfig(s.URL)})
	addr := strings.TrimPrefix(lb.url, "http://")
	const n = 700
	for i := range n {
		if got := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n", false); !strings.HasSuffix(got, "\r\n\r\nok") {
			t.Fatalf("request %d = %q, want ok", i, got)
		}
	}
	// Two data-plane processes at the most in these tests, and a health check's.
	if got := open.Load(); got > 2*256+4 {
		t.Errorf("after %d requests on new client connections the backend has %d connections open, want at most %d", n, got, 2*256+4)
	}
}
