//go:build linux || darwin || freebsd || netbsd || openbsd

package conformance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/engine"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
	"github.com/switchyard-lb/switchyard/core/h1"
	"github.com/switchyard-lb/switchyard/core/nethttp"
)

// A case is raw bytes from a client, and what the backend does with the request that
// reaches it: echo what it saw (answer == ""), or send answer's raw bytes.
type conformanceCase struct {
	name    string
	request string
	answer  string // the backend's raw answer; "" echoes the request as it arrived
	status  int    // the final status the client gets; 0: the connection closes unanswered
	reached bool   // the request reaches the backend
	// cut: the client breaks its body off where the event loop has passed framing
	// on that the nethttp front frames anew (the trailers): that the backend's read
	// broke is compared, not the words net/http's reader found for it.
	cut     bool
	haproxy string // how HAProxy answers the same bytes, where it is worth saying
}

var conformanceCases = []conformanceCase{
	// Requests.
	{name: "plain GET", request: "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", status: 200, reached: true},
	{name: "bare LF line ends", request: "GET / HTTP/1.1\nHost: example.com\nX-A: 1\n\n", status: 200, reached: true, haproxy: "accepted, as here"},
	{name: "empty lines before the request line", request: "\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", status: 200, reached: true, haproxy: "skipped, as here"},
	{name: "Content-Length and Transfer-Encoding", request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400, haproxy: "forwards chunked without Content-Length; refused here (RFC 9112 section 6.3 allows either)"},
	{name: "Content-Length list of equal values", request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", status: 200, reached: true, haproxy: "one Content-Length: 3, as here"},
	{name: "Content-Length twice, equal", request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", status: 200, reached: true, haproxy: "one Content-Length: 3, as here"},
	{name: "Content-Length twice, different", request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", status: 400, haproxy: "400, as here"},
	{name: "Content-Length not a number", request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", status: 400, haproxy: "400, as here"},
	{name: "chunked, and an empty Transfer-Encoding line", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: 200, reached: true, haproxy: "read as chunked, both lines sent on"},
	{name: "chunked with empty list elements", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked,\r\n\r\n3\r\nabc\r\n0\r\n\r\n", status: 200, reached: true, haproxy: "read as chunked, the line sent on as it came"},
	{name: "Transfer-Encoding not ending in chunked", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", status: 400, haproxy: "400, as here"},
	{name: "white space before a colon", request: "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", status: 400, haproxy: "400, as here"},
	{name: "folded header line", request: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", status: 400, haproxy: "400, as here"},
	{name: "control byte in a value", request: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x012\r\n\r\n", status: 400, haproxy: "400, as here"},
	{name: "HTTP/2.0 request line", request: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505},
	{name: "chunk extension", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n", status: 200, reached: true},
	{name: "chunk size of 17 digits, leading zeros", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000003\r\nabc\r\n00000000000000000\r\n\r\n", status: 200, reached: true, haproxy: "the sizes sent on without their zeros, as here"},
	{name: "bare LF inside chunked framing", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", status: 400, reached: true, haproxy: "400, as here"},
	{name: "request trailers, framing ones dropped", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\nContent-Length: 9\r\n\r\n", status: 200, reached: true},
	{name: "request trailers over 4 KiB", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: " + strings.Repeat("a", 5000) + "\r\n\r\n", status: 400, reached: true, cut: true, haproxy: "forwarded (up to its buffer's size)"},
	{name: "user information in an absolute target", request: "GET http://u:p@evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n", status: 400},
	{name: "absolute form", request: "GET http://other.example/p?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, reached: true, haproxy: "origin-form target; HAProxy 2.6 answers 400 when Host differs from the target's host"},
	{name: "HTTP/1.0 without Host", request: "GET / HTTP/1.0\r\n\r\n", status: 200, reached: true},
	{name: "OPTIONS *", request: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, reached: true, haproxy: "forwarded, as here"},
	{name: "Host with a space", request: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400, haproxy: "forwards it; refused here (RFC 9112 section 3.2)"},
	{name: "Host beyond ASCII", request: "GET / HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\n\r\n", status: 400, haproxy: "forwards it; refused here (RFC 9112 section 3.2)"},
	{name: "invalid percent escape in the path", request: "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, haproxy: "forwards it; refused here (RFC 3986 section 2.1)"},
	{name: "invalid percent escape in the query", request: "GET /?q=%zz HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, reached: true, haproxy: "forwards it, as here"},
	{name: "relative target without a slash", request: "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, haproxy: "400, as here"},
	{name: "absolute target without an authority", request: "GET http:/foo HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, haproxy: "400, as here"},
	{name: "absolute target with an invalid port", request: "GET http://a:xx/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "unknown expectation", request: "GET / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n", status: 417, haproxy: "forwards it; 417 here, as RFC 9110 section 10.1.1 allows"},
	{name: "100-continue without a body", request: "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", status: 200, reached: true, haproxy: "forwards it, as here"},
	{name: "Connection names a header", request: "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Private, keep-alive\r\nX-Private: 1\r\nX-Public: 2\r\n\r\n", status: 200, reached: true},
	{name: "Connection names Host and Content-Length", request: "POST / HTTP/1.1\r\nHost: a\r\nConnection: Host, Content-Length\r\nContent-Length: 2\r\n\r\nhi", status: 200, reached: true},
	{name: "client's forwarded headers dropped", request: "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\r\n", status: 200, reached: true},
	{name: "hop-by-hop headers dropped", request: "GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: x\r\n\r\n", status: 200, reached: true},
	{name: "Upgrade without Connection: upgrade", request: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", status: 200, reached: true},
	{name: "head too large", request: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", status: 431, haproxy: "400"},
	{name: "too many fields", request: "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: 1\r\n", 120) + "\r\n", status: 431},
	{name: "HEAD", request: "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, reached: true},

	// Answers.
	{name: "answer: 103 Early Hints before 200", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, reached: true, haproxy: "103 passed on, as here"},
	{name: "answer: Content-Length and Transfer-Encoding", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 502, reached: true, haproxy: "reads it chunked; refused here"},
	{name: "answer: Content-Length list", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", status: 200, reached: true},
	{name: "answer: bare LF head", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", status: 200, reached: true, haproxy: "accepted, as here"},
	{name: "answer: 204 with Content-Length", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", status: 204, reached: true},
	{name: "answer: 304 with Transfer-Encoding", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", status: 304, reached: true},
	{name: "answer: until the backend closes", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\r\n\r\nuntil close", status: 200, reached: true},
	{name: "answer: chunked with trailers", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2;x=y\r\nok\r\n0\r\nX-T: 1\r\nContent-Length: 5\r\n\r\n", status: 200, reached: true},
	{name: "answer: Transfer-Encoding: gzip, chunked", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 502, reached: true, haproxy: "502, as here"},
	{name: "answer: Transfer-Encoding: gzip, until the backend closes", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", status: 502, reached: true, haproxy: "502, as here"},
	{name: "answer: HTTP/1.0 and chunked", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 502, reached: true, haproxy: "reads it chunked; refused here (RFC 9112 section 6.1)"},
	{name: "answer: chunked, and an empty Transfer-Encoding line", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n", status: 200, reached: true, haproxy: "read as chunked, both lines passed on"},
	{name: "answer: malformed status line", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok", status: 502, reached: true, haproxy: "502, as here"},
	{name: "answer: closed before a head", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 20", status: 502, reached: true, haproxy: "502, as here"},
	{name: "answer: HEAD with Content-Length", request: "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", status: 200, reached: true},
	{name: "answer: Connection names a header", request: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		answer: "HTTP/1.1 200 OK\r\nConnection: X-Drop\r\nX-Drop: 1\r\nX-Keep: 2\r\nContent-Length: 2\r\n\r\nok", status: 200, reached: true},
	{name: "answer: WebSocket upgrade", request: "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nping",
		answer: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", status: 101, reached: true},
}

// outcome is what a case came to on one front: what the client read and what the
// backend saw, in a form that does not depend on a front's choices that do not
// matter (the order of fields, the size of chunks).
type outcome struct {
	status  int
	client  string // the client's answer: interim statuses, fields, body, trailers
	backend string // the request as the backend read it; "" when none came
}

func TestSameBytesSameAnswer(t *testing.T) {
	fronts := startFronts(t)
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) { runOnEach(t, fronts, tc) })
	}
}

// runOnEach sends tc to each front, checks the status and whether the backend was
// reached, and that the fronts agree; it returns the first front's outcome.
func runOnEach(t *testing.T, fronts []*front, tc conformanceCase) outcome {
	t.Helper()
	var got []outcome
	for _, fr := range fronts {
		o := fr.run(t, tc)
		if o.status != tc.status {
			t.Errorf("%s: status %d, want %d\nclient read:\n%s", fr.name, o.status, tc.status, o.client)
		}
		if reached := o.backend != ""; reached != tc.reached {
			t.Errorf("%s: reached the backend: %v, want %v (%s)", fr.name, reached, tc.reached, o.backend)
		}
		got = append(got, o)
	}
	if got[0] != got[1] {
		t.Errorf("the fronts differ:\n%s:\n  client: %s\n  backend: %s\n%s:\n  client: %s\n  backend: %s",
			fronts[0].name, got[0].client, got[0].backend, fronts[1].name, got[1].client, got[1].backend)
	}
	return got[0]
}

// front is one front under test, with the backend it proxies to.
type front struct {
	name string
	addr string
	be   *rawBackend
}

// fronts names the fronts every case runs against.
var fronts = []string{config.EngineEventLoop, config.EngineNetHTTP}

// startFronts starts each front, each on a proxy of its own with a raw backend.
func startFronts(t *testing.T) []*front {
	t.Helper()
	var out []*front
	for _, name := range fronts {
		be := startRawBackend(t)
		px := exchangetest.NewProxy(t, exchange.Settings{StatusPath: "/lb-status", ReuseAlways: true, MaxHeaders: h1.DefaultLimits.MaxHeaders,
			ConnectTimeout: time.Second, Idle: 10 * time.Second}, "http://"+be.addr)
		out = append(out, &front{name: name, be: be, addr: startFront(t, name, px)})
	}
	return out
}

// startFront serves px on the front called name and returns its address.
func startFront(t *testing.T, name string, px *exchange.Proxy) string {
	t.Helper()
	const connect, header, idle, readHeader, bodyIdle = time.Second, 2 * time.Second, 10 * time.Second, 2 * time.Second, 2 * time.Second
	status := func() []byte { return []byte(`{}`) }
	if name == config.EngineEventLoop {
		e, err := engine.Start(engine.Config{Addr: "127.0.0.1:0", Loops: 1, Proxy: px, Limits: h1.DefaultLimits,
			Status:   func(answer func([]byte)) { answer(status()) },
			Timeouts: engine.Timeouts{Connect: connect, ResponseHeader: header, Idle: idle, ReadHeader: readHeader, BodyIdle: bodyIdle}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
		return e.Addr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := nethttp.Serve(nethttp.Config{Listener: ln, Proxy: px, Status: status, Limits: h1.DefaultLimits,
		Timeouts: nethttp.Timeouts{Connect: connect, ResponseHeader: header, Idle: idle, ReadHeader: readHeader, BodyIdle: bodyIdle}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = f.Shutdown(ctx)
	})
	return f.Addr().String()
}

// An https backend behind a plaintext listener, on each front: the TLS connection is
// kept and reused; a backend whose certificate is refused got nothing of the request,
// which goes to another backend whatever its method; with none left the client gets
// the proxy's 502.
func TestHTTPSBackends(t *testing.T) {
	for _, name := range fronts {
		t.Run(name, func(t *testing.T) {
			srv, conns := exchangetest.TLSBackend(t, "tls")
			addr := startFront(t, name, exchangetest.Trust(exchangetest.NewProxy(t, exchange.Settings{ReuseAlways: true}, srv.URL), srv))
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for i := range 5 {
				status, body := post(t, client, addr)
				if status != 200 || body != "tls POST /p?q=1 http body" {
					t.Fatalf("request %d: %d %q", i, status, body)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("the backend accepted %d TLS connections for 5 requests in a row, want 1", n)
			}

			bad, _ := exchangetest.TLSBackend(t, "untrusted")
			exchangetest.Untrusted(t, bad)
			px := exchangetest.Trust(exchangetest.NewProxyRetries(t, exchange.Settings{}, 1, bad.URL, srv.URL), srv)
			addr = startFront(t, name, px)
			for i := range 4 {
				if status, body := post(t, http.DefaultClient, addr); status != 200 || !strings.HasPrefix(body, "tls ") {
					t.Fatalf("request %d: %d %q, want 200 from the trusted backend", i, status, body)
				}
			}
			if exchangetest.Backend(px, bad.URL).Failures() == 0 {
				t.Errorf("the untrusted backend has no failure recorded")
			}
			addr = startFront(t, name, exchangetest.Trust(exchangetest.NewProxy(t, exchange.Settings{}, bad.URL), srv))
			if status, body := post(t, http.DefaultClient, addr); status != 502 || !strings.Contains(body, "TLS handshake failed") {
				t.Errorf("untrusted certificate, no other backend: %d %s, want 502 naming the TLS handshake", status, body)
			}
		})
	}
}

// post sends a POST with a body to addr and returns the answer.
func post(t *testing.T, client *http.Client, addr string) (int, string) {
	t.Helper()
	resp, err := client.Post("http://"+addr+"/p?q=1", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// run sends tc's bytes to the front and reads what comes back.
func (fr *front) run(t *testing.T, tc conformanceCase) outcome {
	t.Helper()
	fr.be.expect(tc.answer)
	c, err := net.Dial("tcp", fr.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, tc.request); err != nil {
		t.Fatal(err)
	}
	var o outcome
	br := bufio.NewReader(c)
	o.status, o.client = readAnswer(br, strings.HasPrefix(tc.request, "HEAD "))
	if o.status == 101 {
		// The tunnel: the bytes after the request reach the backend, which echoes
		// them; the client's FIN ends it.
		buf := make([]byte, 4)
		if _, err := io.ReadFull(br, buf); err != nil {
			o.client += fmt.Sprintf("\ntunnel read: %v", err)
		} else {
			o.client += "\ntunnel: " + string(buf)
		}
	}
	o.backend = fr.be.seen()
	if i := strings.Index(o.backend, " body error: "); tc.cut && i >= 0 {
		o.backend = o.backend[:i] + " body error"
	}
	// Each front has a backend of its own: its address is not a difference.
	o.client = strings.ReplaceAll(o.client, fr.be.addr, "BACKEND")
	o.backend = strings.ReplaceAll(o.backend, fr.be.addr, "BACKEND")
	return o
}

// readAnswer reads the answers on c up to the final one and describes them.
func readAnswer(br *bufio.Reader, head bool) (int, string) {
	var desc strings.Builder
	method := "GET"
	if head {
		method = "HEAD"
	}
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			fmt.Fprintf(&desc, "read: %v", err)
			return 0, desc.String()
		}
		// Whether the connection closes after the answer is compared, not how it is
		// said (an HTTP/1.0 status line says it without Connection: close).
		fmt.Fprintf(&desc, "%d %s close=%v", resp.StatusCode, fields(resp.Header, "Connection"), resp.Close)
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			desc.WriteString("\n")
			continue
		}
		if resp.StatusCode == 101 {
			return 101, desc.String()
		}
		body, err := io.ReadAll(resp.Body)
		fmt.Fprintf(&desc, " body=%q", body)
		if err != nil {
			fmt.Fprintf(&desc, " body error: %v", err)
		}
		if len(resp.Trailer) > 0 {
			fmt.Fprintf(&desc, " trailers=%s", fields(resp.Trailer))
		}
		if resp.StatusCode >= 400 {
			return resp.StatusCode, fmt.Sprintf("%d", resp.StatusCode) // the proxy's own: its words may differ
		}
		return resp.StatusCode, desc.String()
	}
}

// fields lists h's fields, sorted, leaving out the named ones.
func fields(h http.Header, skip ...string) string {
	var out []string
	for name, values := range h {
		if contains(skip, name) {
			continue
		}
		out = append(out, name+": "+strings.Join(values, ","))
	}
	sort.Strings(out)
	return "[" + strings.Join(out, "; ") + "]"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rawBackend reads each request and then either echoes what it read, as a JSON
// summary, or writes the raw answer it was given and closes.
type rawBackend struct {
	addr   string
	answer chan string
	saw    chan string
}

func startRawBackend(t *testing.T) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	be := &rawBackend{addr: ln.Addr().String(), answer: make(chan string, 1), saw: make(chan string, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go be.serve(c)
		}
	}()
	return be
}

// expect sets the answer to the next request ("" echoes it).
func (be *rawBackend) expect(answer string) {
	for len(be.saw) > 0 {
		<-be.saw
	}
	select {
	case <-be.answer:
	default:
	}
	be.answer <- answer
}

// seen returns the next request the backend read, "" when none came.
func (be *rawBackend) seen() string {
	select {
	case s := <-be.saw:
		return s
	case <-time.After(200 * time.Millisecond):
		return ""
	}
}

func (be *rawBackend) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(r.Body)
		desc := describe(r, body, err)
		var answer string
		select {
		case answer = <-be.answer:
		default:
		}
		be.saw <- desc
		if answer == "" {
			if r.Method == http.MethodHead {
				desc = ""
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(desc), desc)
			continue
		}
		_, _ = io.WriteString(c, answer)
		if strings.Contains(answer, " 101 ") {
			_, _ = io.Copy(c, br) // echo the tunnel until the client's end
			return
		}
		if !framed(answer, r.Method) {
			return // the answer ends with the connection, or is broken
		}
	}
}

// describe is the request as the backend read it.
func describe(r *http.Request, body []byte, err error) string {
	h := r.Header.Clone()
	if xff := h.Get("X-Forwarded-For"); net.ParseIP(xff) == nil {
		h.Set("X-Forwarded-For", "not an address: "+xff)
	}
	s := fmt.Sprintf("%s %s %s host=%q cl=%d te=%v %s body=%q", r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength,
		r.TransferEncoding, fields(h), body)
	if len(r.Trailer) > 0 {
		s += " trailers=" + fields(r.Trailer)
	}
	if err != nil {
		s += " body error: " + err.Error()
	}
	return string(bytes.TrimSpace([]byte(s)))
}

// framed reports whether answer is one whole, well-framed answer to a request with
// method, after which the connection may carry another.
func framed(answer, method string) bool {
	br := bufio.NewReader(strings.NewReader(answer))
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return false
		}
		if resp.StatusCode >= 200 {
			if resp.ContentLength < 0 && len(resp.TransferEncoding) == 0 && method != http.MethodHead &&
				resp.StatusCode != 204 && resp.StatusCode != 304 {
				return false // until the connection closes
			}
			if len(resp.Header["Content-Length"]) > 0 && len(resp.TransferEncoding) > 0 {
				return false
			}
			_, err := io.ReadAll(resp.Body)
			return err == nil && br.Buffered() == 0
		}
	}
}

// A backend that answers an upload before reading it, and stops reading: the client
// gets the backend's answer whole, on each front, while its upload is still going.
func TestAnswerBeforeTheUploadEnds(t *testing.T) {
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
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
				// A lingering close, as servers do: what the proxy still sends is
				// read for a while, then the connection ends.
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				io.Copy(io.Discard, br)
			}()
		}
	}()
	for _, name := range fronts {
		t.Run(name, func(t *testing.T) {
			addr := startFront(t, name, exchangetest.NewProxy(t, exchange.Settings{ConnectTimeout: time.Second}, "http://"+ln.Addr().String()))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			const size = 64 << 20
			go func() {
				io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
				chunk := make([]byte, 64<<10)
				for sent := 0; sent < size; sent += len(chunk) {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if resp.StatusCode != 413 || string(b) != "too big!" {
				t.Errorf("got %d %q (%v), want the backend's 413 \"too big!\"", resp.StatusCode, b, err)
			}
		})
	}
}
