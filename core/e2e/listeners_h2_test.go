//go:build unix

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
)

// HTTP/2 as curl speaks it to the listeners: h2 by ALPN over TLS, HTTP/1.1 when asked,
// h2c by prior knowledge, a 1 MiB upload, parallel transfers multiplexed on one
// connection, and the redirect listener's 308; the access log names HTTP/2.0.
func TestListenersHTTP2ThroughCurl(t *testing.T) {
	curl := curlWithHTTP2(t)
	_, web := startBackend(t, "-work", "0")
	ca := exchangetest.NewCA(t)
	dir := t.TempDir()
	cert, key := ca.Issue(t, dir, "lb.test")
	tlsAddr, h2cAddr, redirAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	logPath := filepath.Join(dir, "access.log")
	startCore(t, map[string]any{
		"servers":       backendsConfig(web),
		"load_balancer": map[string]any{"access_log": logPath},
		"listeners": []any{
			map[string]any{"addr": tlsAddr, "tls": map[string]any{"certificates": []any{map[string]any{"cert": cert, "key": key}}}},
			map[string]any{"addr": h2cAddr, "h2c": true},
			map[string]any{"addr": redirAddr, "redirect_https": true},
		},
	})
	caFile := writeRootPEM(t, ca, tlsAddr, "lb.test", dir)
	tlsPort, redirPort := portOf(tlsAddr), portOf(redirAddr)
	site := "https://lb.test:" + tlsPort
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"-sS", "--max-time", "60", "--cacert", caFile,
			"--resolve", "lb.test:" + tlsPort + ":127.0.0.1", "--resolve", "lb.test:" + redirPort + ":127.0.0.1"}, args...)
		out, err := exec.Command(curl, args...).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return string(out)
	}
	body := filepath.Join(dir, "body")
	readJSON := func(v any) {
		t.Helper()
		b, err := os.ReadFile(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("answer %q: %v", b, err)
		}
	}

	// h2 by ALPN; the backend hears the request came over https.
	if got := run("--http2", "-o", body, "-w", "%{http_code} %{http_version}", site+"/echo-headers?via=h2"); got != "200 2" {
		t.Errorf("curl --http2 %s: %q, want %q", site, got, "200 2")
	}
	var echoed struct{ Headers http.Header }
	readJSON(&echoed)
	if p := echoed.Headers.Get("X-Forwarded-Proto"); p != "https" {
		t.Errorf("X-Forwarded-Proto at the backend = %q, want https", p)
	}
	// HTTP/1.1 when the client offers only that.
	if got := run("--http1.1", "-o", body, "-w", "%{http_code} %{http_version}", site+"/echo-headers?via=h1"); got != "200 1.1" {
		t.Errorf("curl --http1.1 %s: %q, want %q", site, got, "200 1.1")
	}
	// h2c by prior knowledge.
	if got := run("--http2-prior-knowledge", "-o", body, "-w", "%{http_code} %{http_version}", "http://"+h2cAddr+"/requests?via=h2c"); got != "200 2" {
		t.Errorf("curl --http2-prior-knowledge to the h2c listener: %q, want %q", got, "200 2")
	}

	// A 1 MiB upload arrives whole.
	upload := make([]byte, 1<<20)
	rand.Read(upload)
	uploadFile := filepath.Join(dir, "upload")
	writeFile(t, uploadFile, string(upload), 0o644)
	sum := sha256.Sum256(upload)
	if got := run("--http2", "--data-binary", "@"+uploadFile, "-H", "Content-Type: application/octet-stream",
		"-o", body, "-w", "%{http_code} %{http_version}", site+"/upload?via=h2"); got != "200 2" {
		t.Errorf("curl --http2 --data-binary: %q, want %q", got, "200 2")
	}
	var received struct {
		Bytes  int
		SHA256 string
	}
	readJSON(&received)
	if received.Bytes != len(upload) || received.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("the backend received %d bytes with SHA-256 %s, want %d with %x", received.Bytes, received.SHA256, len(upload), sum)
	}

	// Parallel transfers: curl waits for the first connection and multiplexes the
	// rest on it.
	const parallel = 6
	args := []string{"--http2", "-Z", "--parallel-max", itoa(parallel), "-w", "%{http_code} %{http_version} %{local_port} %{num_connects}\n"}
	for i := range parallel {
		args = append(args, "-o", os.DevNull, site+"/requests?parallel="+itoa(i))
	}
	lines := strings.Split(strings.TrimSpace(run(args...)), "\n")
	ports, connects := map[string]bool{}, 0
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 || f[0] != "200" || f[1] != "2" {
			t.Errorf("parallel transfer: %q, want 200 over HTTP/2", l)
			continue
		}
		ports[f[2]] = true
		n, _ := strconv.Atoi(f[3])
		connects += n
	}
	if len(lines) != parallel || len(ports) != 1 || connects != 1 {
		t.Errorf("%d parallel transfers answered from %d local ports with %d connects, want %d on one connection:\n%s",
			len(lines), len(ports), connects, parallel, strings.Join(lines, "\n"))
	}

	// The redirect listener sends curl to https, without the plaintext port.
	head := filepath.Join(dir, "head")
	if got := run("-o", os.DevNull, "-D", head, "-w", "%{http_code}", "http://lb.test:"+redirPort+"/a?b=c"); got != "308" {
		t.Errorf("curl to the redirect listener: %q, want 308", got)
	}
	if loc := headerOf(t, head, "Location"); loc != "https://lb.test/a?b=c" {
		t.Errorf("Location = %q, want %q", loc, "https://lb.test/a?b=c")
	}

	// The access log: a line per request, with the protocol it came in.
	want := map[string]string{"/echo-headers?via=h2": "HTTP/2.0", "/echo-headers?via=h1": "HTTP/1.1",
		"/requests?via=h2c": "HTTP/2.0", "/upload?via=h2": "HTTP/2.0"}
	for i := range parallel {
		want["/requests?parallel="+itoa(i)] = "HTTP/2.0"
	}
	var logged map[string]string
	waitUntil(t, "the requests in the access log", func() bool {
		logged = accessLogProtocols(t, logPath)
		for path := range want {
			if _, ok := logged[path]; !ok {
				return false
			}
		}
		return true
	})
	for path, proto := range want {
		if logged[path] != proto {
			t.Errorf("access log: %s logged with protocol=%s, want %s", path, logged[path], proto)
		}
	}
}

// An edit that replaces a listener (here: moves it) sends its HTTP/2 connections
// GOAWAY and drains them: the stream in flight ends whole, a stream opened after the
// GOAWAY is not served, and the listener serves at its new address.
func TestListenerReplacedByEditSendsGOAWAYAndDrains(t *testing.T) {
	b := newHeldBackend(t)
	oldAddr, newAddr := freeAddr(t), freeAddr(t)
	lb := startCore(t, map[string]any{
		"servers":   backendsConfig(b.url),
		"listeners": []any{map[string]any{"addr": oldAddr, "h2c": true}},
	})
	c := dialH2C(t, oldAddr)
	held := c.get("/held")
	b.waitArrived(t)

	cfg := lb.cfg
	cfg["listeners"] = []any{map[string]any{"addr": newAddr, "h2c": true}}
	lb.applied(t, lb.save(t, cfg))

	away := c.waitGoAway()
	if away.ErrCode != http2.ErrCodeNo || away.LastStreamID < held {
		t.Fatalf("GOAWAY %v last stream %d, want NO_ERROR with the held stream %d", away.ErrCode, away.LastStreamID, held)
	}
	late := c.get("/late")
	b.release()
	c.readToEnd()

	if got := c.answer(held); got.status != "200" || !got.ended || !bytes.Equal(got.body, heldBody) {
		t.Errorf("held stream: status %q, ended %v, %d bytes; want 200 with the whole %d-byte body", got.status, got.ended, len(got.body), len(heldBody))
	}
	if got := c.answer(late); got.status != "" || len(got.body) > 0 {
		t.Errorf("stream opened after GOAWAY answered %q with %d bytes, want it not served", got.status, len(got.body))
	}
	if n := b.count("/late"); n != 0 {
		t.Errorf("the backend received the stream opened after GOAWAY %d times, want 0", n)
	}
	if conn, err := net.Dial("tcp", oldAddr); err == nil {
		conn.Close()
		t.Errorf("the old address %s still accepts connections", oldAddr)
	}

	fresh := dialH2C(t, newAddr)
	id := fresh.get("/fresh")
	if got := fresh.response(id); got.status != "200" || string(got.body) != "fresh" {
		t.Errorf("new listener: status %q body %q, want 200 %q", got.status, got.body, "fresh")
	}
	if st := lb.status(t); len(st.Listeners) != 2 || st.Listeners[1].Addr != newAddr {
		t.Errorf("status listeners %+v, want the plaintext one and %s", st.Listeners, newAddr)
	}
}

// An edit that leaves a listener alone keeps its HTTP/2 connections, even when it
// adds another listener beside it: no GOAWAY, the stream in flight ends whole, and
// the connection serves new streams. (A listener starts anew only when its entry,
// the client timeouts or limits, or the config's directory change: see startExtras
// in core/lb.)
func TestListenerKeptByEditKeepsHTTP2Connection(t *testing.T) {
	b := newHeldBackend(t)
	addr := freeAddr(t)
	lb := startCore(t, map[string]any{
		"servers":   backendsConfig(b.url),
		"listeners": []any{map[string]any{"addr": addr, "h2c": true}},
	})
	c := dialH2C(t, addr)
	held := c.get("/held")
	b.waitArrived(t)

	cfg := lb.cfg
	cfg["servers"].(map[string]any)["backends"].([]map[string]any)[0]["weight"] = 3
	added := freeAddr(t)
	cfg["listeners"] = []any{map[string]any{"addr": addr, "h2c": true}, map[string]any{"addr": added, "h2c": true}}
	lb.applied(t, lb.save(t, cfg))
	b.release()

	if got := c.response(held); got.status != "200" || !bytes.Equal(got.body, heldBody) {
		t.Errorf("held stream: status %q, %d bytes; want 200 with the whole %d-byte body", got.status, len(got.body), len(heldBody))
	}
	if c.away != nil {
		t.Fatalf("GOAWAY %v on a connection to a listener the edit left alone", c.away.ErrCode)
	}
	after := c.get("/after")
	if got := c.response(after); got.status != "200" || string(got.body) != "after" {
		t.Errorf("new stream on the kept connection: status %q body %q, want 200 %q", got.status, got.body, "after")
	}
	if n := b.count("/after"); n != 1 {
		t.Errorf("the backend received the new stream %d times, want 1", n)
	}
	c2 := dialH2C(t, added)
	if got := c2.response(c2.get("/after")); got.status != "200" {
		t.Errorf("the listener the edit added: status %q, want 200", got.status)
	}
}

// curlWithHTTP2 returns the path of a curl that speaks HTTP/2, or skips the test
// (fails it on CI, where .ci/run installs curl).
func curlWithHTTP2(t *testing.T) string {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatal(why + "; .ci/run installs Debian's curl")
		}
		t.Skip(why + " (apt-get install -y curl)")
	}
	path, err := exec.LookPath("curl")
	if err != nil {
		missing("no curl installed to test HTTP/2 with")
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		missing(fmt.Sprintf("curl --version: %v", err))
	}
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(line, "Features:"); ok && strings.Contains(" "+rest+" ", " HTTP2 ") {
			return path
		}
	}
	missing("curl without the HTTP2 feature")
	return ""
}

// writeRootPEM writes, as a PEM file in dir, the root that verifies the certificate
// served at addr for name: what curl's --cacert reads.
func writeRootPEM(t *testing.T, ca *exchangetest.CA, addr, name, dir string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: name})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	chain := c.ConnectionState().VerifiedChains[0]
	path := filepath.Join(dir, "ca.pem")
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[len(chain)-1].Raw})), 0o644)
	return path
}

// headerOf reads a header from the head curl's -D wrote at path.
func headerOf(t *testing.T, path, name string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// accessLogProtocols maps each path in the access log at path to the protocol logged
// with it.
func accessLogProtocols(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.Lines(string(data)) {
		_, rest, ok := strings.Cut(line, ` path="`)
		if !ok {
			continue
		}
		p, rest, _ := strings.Cut(rest, `"`)
		if _, proto, ok := strings.Cut(rest, " protocol="); ok {
			out[p], _, _ = strings.Cut(proto, " ")
		}
	}
	return out
}

// heldBody is what the held backend answers /held with: a first line at once, the
// rest once released.
var heldBody = func() []byte {
	b := []byte("begin\n")
	for i := range 256 << 10 {
		b = append(b, byte('a'+i%26))
	}
	return append(b, "end\n"...)
}()

// heldBackend answers /held with heldBody, holding all but its first line until
// release; any other path with its name.
type heldBackend struct {
	url      string
	arrived  chan struct{} // one per /held request
	released chan struct{}
	once     sync.Once
	mu       sync.Mutex
	paths    map[string]int
}

func newHeldBackend(t *testing.T) *heldBackend {
	t.Helper()
	b := &heldBackend{arrived: make(chan struct{}, 8), released: make(chan struct{}), paths: map[string]int{}}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.paths[r.URL.Path]++
		b.mu.Unlock()
		if r.URL.Path != "/held" {
			io.WriteString(w, strings.TrimPrefix(r.URL.Path, "/"))
			return
		}
		w.Header().Set("Content-Length", itoa(len(heldBody)))
		first := bytes.IndexByte(heldBody, '\n') + 1
		w.Write(heldBody[:first])
		http.NewResponseController(w).Flush()
		b.arrived <- struct{}{}
		select {
		case <-b.released:
			w.Write(heldBody[first:])
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { b.release(); s.Close() })
	b.url = s.URL
	return b
}

// waitArrived waits until a /held request reaches the backend.
func (b *heldBackend) waitArrived(t *testing.T) {
	t.Helper()
	select {
	case <-b.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the held request never reached the backend")
	}
}

// release lets the held answers finish.
func (b *heldBackend) release() { b.once.Do(func() { close(b.released) }) }

// count is how many requests for path the backend received.
func (b *heldBackend) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.paths[path]
}

// h2Answer is what a client saw of one stream.
type h2Answer struct {
	status string // :status, "" when no header came
	body   []byte
	ended  bool // END_STREAM came
	reset  http2.ErrCode
}

// h2Client speaks HTTP/2 by prior knowledge over one connection, frame by frame, so
// that a test sees the GOAWAY itself. A goroutine reads the frames; the test's
// goroutine waits on them.
type h2Client struct {
	t      *testing.T
	conn   net.Conn
	wmu    sync.Mutex // serialises writes to fr
	fr     *http2.Framer
	enc    *hpack.Encoder
	encBuf bytes.Buffer
	nextID uint32

	events  chan struct{} // a frame was read (or the connection ended)
	mu      sync.Mutex
	streams map[uint32]*h2Answer
	goAway  *http2.GoAwayFrame // copy of the first GOAWAY
	readErr error              // why reading ended; set once
	done    atomic.Bool        // readErr is set

	away *http2.GoAwayFrame // what the test's goroutine last saw of goAway
}

// dialH2C opens an HTTP/2 connection to addr by prior knowledge with a large flow
// control window, so that the server never waits for WINDOW_UPDATE.
func dialH2C(t *testing.T, addr string) *h2Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &h2Client{t: t, conn: conn, fr: http2.NewFramer(conn, conn), nextID: 1,
		events: make(chan struct{}, 1), streams: map[uint32]*h2Answer{}}
	c.enc = hpack.NewEncoder(&c.encBuf)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	c.write(func() error {
		return c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	})
	c.write(func() error { return c.fr.WriteWindowUpdate(0, 1<<30) })
	go c.read()
	return c
}

// write runs one frame write, failing the test on an error.
func (c *h2Client) write(f func() error) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := f(); err != nil {
		c.t.Fatalf("writing a frame: %v", err)
	}
}

// get opens a stream for GET path and returns its id.
func (c *h2Client) get(path string) uint32 {
	c.t.Helper()
	c.wmu.Lock()
	id := c.nextID
	c.nextID += 2
	c.encBuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "lb.test"}, {":path", path}} {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.encBuf.Bytes(), EndStream: true, EndHeaders: true})
	c.wmu.Unlock()
	if err != nil {
		c.t.Fatalf("opening stream %d for %s: %v", id, path, err)
	}
	return id
}

// read records frames until the connection ends, answering SETTINGS and PING.
func (c *h2Client) read() {
	for {
		f, err := c.fr.ReadFrame()
		c.mu.Lock()
		if err != nil {
			c.readErr = err
			c.done.Store(true)
			c.mu.Unlock()
			c.signal()
			return
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			a := c.stream(f.StreamID)
			if a.status == "" {
				a.status = f.PseudoValue("status")
			}
			a.ended = a.ended || f.StreamEnded()
		case *http2.DataFrame:
			a := c.stream(f.StreamID)
			a.body = append(a.body, f.Data()...)
			a.ended = a.ended || f.StreamEnded()
		case *http2.RSTStreamFrame:
			c.stream(f.StreamID).reset = f.ErrCode
		case *http2.GoAwayFrame:
			if c.goAway == nil {
				c.goAway = &http2.GoAwayFrame{LastStreamID: f.LastStreamID, ErrCode: f.ErrCode}
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.wmu.Lock()
				_ = c.fr.WriteSettingsAck()
				c.wmu.Unlock()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.wmu.Lock()
				_ = c.fr.WritePing(true, f.Data)
				c.wmu.Unlock()
			}
		}
		c.mu.Unlock()
		c.signal()
	}
}

// stream returns id's answer, creating it; c.mu must be held.
func (c *h2Client) stream(id uint32) *h2Answer {
	a := c.streams[id]
	if a == nil {
		a = &h2Answer{}
		c.streams[id] = a
	}
	return a
}

func (c *h2Client) signal() {
	select {
	case c.events <- struct{}{}:
	default:
	}
}

// until waits for cond (called with c.mu held) to hold; the deadline only guards
// against a hang. It fails the test if the connection ends first, unless eof is
// what cond waits for.
func (c *h2Client) until(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		ok, ended, err := cond(), c.done.Load(), c.readErr
		if c.goAway != nil {
			c.away = c.goAway
		}
		c.mu.Unlock()
		if ok {
			return
		}
		if ended {
			c.t.Fatalf("connection ended (%v) before %s", err, what)
		}
		select {
		case <-c.events:
		case <-deadline:
			c.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitGoAway waits for the server's GOAWAY and returns it.
func (c *h2Client) waitGoAway() *http2.GoAwayFrame {
	c.t.Helper()
	c.until("GOAWAY", func() bool { return c.goAway != nil })
	return c.away
}

// response waits for stream id to end and returns what came on it.
func (c *h2Client) response(id uint32) h2Answer {
	c.t.Helper()
	c.until(fmt.Sprintf("the end of stream %d", id), func() bool {
		a := c.streams[id]
		return a != nil && (a.ended || a.reset != 0)
	})
	return c.answer(id)
}

// readToEnd waits until the server closes the connection.
func (c *h2Client) readToEnd() {
	c.t.Helper()
	c.until("the server to close the connection", func() bool { return c.done.Load() })
	c.mu.Lock()
	defer c.mu.Unlock()
	if !errors.Is(c.readErr, io.EOF) {
		c.t.Errorf("connection ended with %v, want the server to close it cleanly", c.readErr)
	}
}

// answer returns what came on stream id so far.
func (c *h2Client) answer(id uint32) h2Answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.streams[id]; a != nil {
		return h2Answer{status: a.status, body: bytes.Clone(a.body), ended: a.ended, reset: a.reset}
	}
	return h2Answer{}
}
