//go:build linux || darwin || freebsd || netbsd || openbsd

package conformance

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
	"github.com/switchyard-lb/switchyard/core/pool"
)

// h2cBackend is an HTTP/2-only backend without TLS (what h2c:// names): it answers
// "h2c PROTO METHOD URI sha256(body)" and more at the paths below, and counts the
// connections it accepted and the requests whose client went away.
type h2cBackend struct {
	addr      string
	conns     atomic.Int64
	cancelled atomic.Int64
}

func startH2CBackend(t *testing.T) *h2cBackend {
	t.Helper()
	be := &h2cBackend{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.New()
		n, _ := io.Copy(sum, r.Body)
		w.Header().Set("X-Seen-Te", r.Header.Get("Te"))
		fmt.Fprintf(w, "h2c %s %s %s %d %s", r.Proto, r.Method, r.RequestURI, n, hex.EncodeToString(sum.Sum(nil))[:8])
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Parts")
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Parts", "3")
		w.Header().Set(http.TrailerPrefix+"X-Late", "unannounced")
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/hints", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Link", "</style.css>; rel=preload")
		for range n {
			w.WriteHeader(http.StatusEarlyHints)
		}
		io.WriteString(w, "hinted")
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "started;")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		be.cancelled.Add(1)
	})
	srv := &http.Server{Handler: h2c.NewHandler(mux, &http2.Server{}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			be.conns.Add(1)
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return be
}

// An h2c:// backend behind a plaintext HTTP/1.1 listener, on each front: requests
// and answers pass whole in both directions (bodies of known and unknown length,
// trailers, 1xx, HEAD, 204); many client connections share one HTTP/2 connection to
// the backend; a client that leaves ends its stream; an upgrade gets 502 (it needs
// HTTP/1.1); a backend that cannot be reached got nothing, so even a POST goes to
// another backend.
func TestH2CBackends(t *testing.T) {
	for _, name := range fronts {
		t.Run(name, func(t *testing.T) {
			be := startH2CBackend(t)
			addr := startFront(t, name, exchangetest.NewProxy(t, exchange.Settings{}, "h2c://"+be.addr))
			base := "http://" + addr

			// A megabyte up, chunked (unknown length), and one of known length.
			big := strings.Repeat("0123456789abcdef", 64<<10)
			sum := sha256.Sum256([]byte(big))
			want := fmt.Sprintf("h2c HTTP/2.0 POST /up?x=1 %d %s", len(big), hex.EncodeToString(sum[:])[:8])
			for _, chunked := range []bool{true, false} {
				var body io.Reader = strings.NewReader(big)
				if chunked {
					body = io.MultiReader(body) // hides the length: sent chunked
				}
				resp, err := http.Post(base+"/up?x=1", "application/octet-stream", body)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(got) != want {
					t.Errorf("upload (chunked %v): %d %q, want 200 %q", chunked, resp.StatusCode, got, want)
				}
			}

			// An upload that takes longer than response_header (2 s here): the
			// answer is timed from the request's end, not its start.
			pr, pw := io.Pipe()
			go func() {
				for range 10 {
					time.Sleep(250 * time.Millisecond)
					pw.Write([]byte("slow"))
				}
				pw.Close()
			}()
			resp0, err := http.Post(base+"/slow", "application/octet-stream", pr)
			if err != nil {
				t.Fatal(err)
			}
			got0, _ := io.ReadAll(resp0.Body)
			resp0.Body.Close()
			if resp0.StatusCode != 200 || !strings.HasPrefix(string(got0), "h2c HTTP/2.0 POST /slow 40 ") {
				t.Errorf("an upload of 2.5 s: %d %q, want 200 with its 40 bytes", resp0.StatusCode, got0)
			}

			// An answer of unknown length, read as it comes, with its trailers.
			resp, err := http.Get(base + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != "part0;part1;part2;" || resp.Trailer.Get("X-Parts") != "3" || resp.Trailer.Get("X-Late") != "unannounced" {
				t.Errorf("stream: %q, trailers %v; want the three parts and both trailers", got, resp.Trailer)
			}

			// HEAD and 204 have no body; the connection stays usable after them.
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			fmt.Fprintf(c, "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /empty HTTP/1.1\r\nHost: a\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n")
			for _, w := range []struct {
				method string
				status int
				body   string
			}{{"HEAD", 200, ""}, {"GET", 204, ""}, {"GET", 200, "h2c HTTP/2.0 GET /after 0 e3b0c442"}} {
				r, err := http.ReadResponse(br, &http.Request{Method: w.method})
				if err != nil {
					t.Fatalf("%s on one connection: %v", w.method, err)
				}
				b, _ := io.ReadAll(r.Body)
				if r.StatusCode != w.status || string(b) != w.body {
					t.Errorf("%s: %d %q, want %d %q", w.method, r.StatusCode, b, w.status, w.body)
				}
			}

			// 103 Early Hints pass on before the answer; a backend that sends them
			// without end gets its stream ended after 16.
			fmt.Fprintf(c, "GET /hints?n=2 HTTP/1.1\r\nHost: a\r\n\r\n")
			for i := range 2 {
				line, err := br.ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "HTTP/1.1 103") {
					t.Fatalf("early hint %d: %q %v", i, line, err)
				}
				for line != "\r\n" && err == nil {
					line, err = br.ReadString('\n')
				}
			}
			if r, err := http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			} else if b, _ := io.ReadAll(r.Body); r.StatusCode != 200 || string(b) != "hinted" {
				t.Errorf("after two 103s: %d %q", r.StatusCode, b)
			}
			flood, err := http.Get(base + "/hints?n=40")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(flood.Body)
			flood.Body.Close()
			if flood.StatusCode != 502 {
				t.Errorf("after 40 103s: %d %q, want 502", flood.StatusCode, b)
			}

			// Expect: 100-continue: the backend's 100 comes back before the body goes.
			fmt.Fprintf(c, "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
				t.Fatalf("after Expect: 100-continue: %q %v, want 100 Continue", line, err)
			}
			br.ReadString('\n') // the blank line that ends the 100
			io.WriteString(c, "abc")
			r, err := http.ReadResponse(br, &http.Request{Method: "PUT"})
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(r.Body)
			if !strings.HasPrefix(string(b), "h2c HTTP/2.0 PUT /x 3 ") {
				t.Errorf("after 100: %d %q", r.StatusCode, b)
			}

			// 32 clients at once, each on its own connection: one connection to
			// the backend (two at most, should one be closing).
			before := be.conns.Load()
			var wg sync.WaitGroup
			var bad atomic.Int64
			for range 32 {
				wg.Go(func() {
					tr := &http.Transport{}
					defer tr.CloseIdleConnections()
					resp, err := (&http.Client{Transport: tr}).Get(base + "/many")
					if err != nil {
						bad.Add(1)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						bad.Add(1)
					}
				})
			}
			wg.Wait()
			if bad.Load() != 0 {
				t.Errorf("%d of 32 concurrent requests failed", bad.Load())
			}
			if n := be.conns.Load() - before; n > 2 {
				t.Errorf("32 concurrent clients opened %d connections to the h2c backend, want them to share one", n)
			}

			// A stream silent for body_idle (2 s here) mid-answer is ended at the
			// backend, and the client's connection closes: the answer is cut.
			hc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer hc.Close()
			fmt.Fprintf(hc, "GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
			hc.SetReadDeadline(time.Now().Add(10 * time.Second))
			hr, err := http.ReadResponse(bufio.NewReader(hc), nil)
			if err != nil {
				t.Fatalf("/hang: %v", err)
			}
			if b, err := io.ReadAll(hr.Body); err == nil || string(b) != "started;" {
				t.Errorf("an answer the backend stopped sending: %q, %v; want its first bytes, then the connection cut", b, err)
			}
			waitFor(t, "the backend to see its stream ended", func() bool { return be.cancelled.Load() == 1 })

			// An upgrade needs HTTP/1.1: 502, nothing sent.
			up, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			fmt.Fprintf(up, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			r, err = http.ReadResponse(bufio.NewReader(up), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(r.Body)
			if r.StatusCode != 502 || !strings.Contains(string(b), "upgrade needs HTTP/1.1") {
				t.Errorf("upgrade to an h2c backend: %d %s, want 502 saying it needs HTTP/1.1", r.StatusCode, b)
			}

			// A dead h2c backend beside a live one: every POST reaches the live one.
			dead, _ := net.Listen("tcp", "127.0.0.1:0")
			deadAddr := dead.Addr().String()
			dead.Close()
			px := exchangetest.NewProxyRetries(t, exchange.Settings{}, 1, "h2c://"+deadAddr, "h2c://"+be.addr)
			addr2 := startFront(t, name, px)
			for i := range 4 {
				if status, body := post(t, http.DefaultClient, addr2); status != 200 || !strings.HasPrefix(body, "h2c ") {
					t.Errorf("POST %d with a dead h2c backend in the pool: %d %q, want 200 from the live one", i, status, body)
				}
			}
			if exchangetest.Backend(px, "h2c://"+deadAddr).Failures() == 0 {
				t.Errorf("the dead h2c backend has no failure recorded")
			}
		})
	}
}

// Two pools with the same https backend, one that trusts its certificate and one
// that verifies against the system's roots, on each front: each pool verifies as it
// says, request after request, and never takes a connection the other made.
func TestHTTPSBackendsVerifyPerPool(t *testing.T) {
	for _, name := range fronts {
		t.Run(name, func(t *testing.T) {
			srv, conns := exchangetest.TLSBackend(t, "tls")
			trusting := exchangetest.Upstream("trusting", 0, srv.URL)
			trusting.SetTLS(exchange.NewBackendTLS(exchangetest.Trusting(srv), "trust"))
			strict := exchangetest.Upstream("strict", 0, srv.URL)
			routes := []exchange.RouteSpec{{Match: exchange.Match{PathPrefix: "/strict/"}, Route: exchange.Route{Action: exchange.ToPool, Upstream: strict}}}
			p := pool.New(pool.Config{MinWorkers: 4, MaxWorkers: 64, QueueCapacity: 64, QueueTimeout: time.Second, IdleTimeout: time.Minute})
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			go p.Run(ctx)
			px := exchange.New(exchange.Config{Pool: p, Table: exchange.NewTable(1, routes, trusting),
				Settings: exchange.Settings{StatusPath: "/lb-status", ReuseAlways: true, ConnectTimeout: time.Second, Idle: 10 * time.Second}})
			addr := startFront(t, name, px)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for i := range 3 {
				resp, err := client.Get("http://" + addr + "/ok")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("round %d, the trusting pool: %d %s", i, resp.StatusCode, b)
				}
				resp, err = client.Get("http://" + addr + "/strict/x")
				if err != nil {
					t.Fatal(err)
				}
				b, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 502 || !strings.Contains(string(b), "TLS handshake failed") {
					t.Errorf("round %d, the strict pool after the trusting pool's connection: %d %s, want 502 (certificate refused)", i, resp.StatusCode, b)
				}
			}
			if n := conns.Load(); n < 4 {
				t.Errorf("the backend accepted %d TLS connections, want the trusting pool's one and the strict pool's refused attempts", n)
			}
			// An edit makes the trusting pool strict: its pooled connection, verified
			// under the old settings, is not used again.
			trusting.SetTLS(exchange.NewBackendTLS(nil, "strict now"))
			resp, err := client.Get("http://" + addr + "/ok")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 502 || !strings.Contains(string(b), "TLS handshake failed") {
				t.Errorf("the pool once trusting, now strict: %d %s, want 502: no connection made under the old settings", resp.StatusCode, b)
			}
		})
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
