package nethttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// h2cClient speaks HTTP/2 without TLS to an h2c listener.
func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, a string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}}
}

// rawH2 opens an HTTP/2 connection by prior knowledge and returns its framer, after
// the settings exchange; settings holds what the server announced.
func rawH2(t *testing.T, addr string) (net.Conn, *http2.Framer, map[http2.SettingID]uint32) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, h2Preface)
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	settings := map[http2.SettingID]uint32{}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			_ = sf.ForeachSetting(func(s http2.Setting) error { settings[s.ID] = s.Val; return nil })
			_ = fr.WriteSettingsAck()
			return c, fr, settings
		}
	}
}

// headerBlock encodes a GET of path.
func headerBlock(path string, extra ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", path}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return buf.Bytes()
}

// The server announces its stream limit, and holds a client's header section to
// load_balancer.limits, as h1 does for HTTP/1.1: 431.
func TestH2LimitsStreamsAndHeaders(t *testing.T) {
	url, _, _ := countingBackend(t)
	addr := serveOn(t, exchangetest.NewProxy(t, exchange.Settings{MaxHeaders: 100}, url), Config{H2C: true})
	_, _, settings := rawH2(t, addr)
	if got := settings[http2.SettingMaxConcurrentStreams]; got != maxStreams {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want %d", got, maxStreams)
	}
	c := h2cClient()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	for i := range 101 {
		req.Header.Add("X-Many", strings.Repeat("v", i%7))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 431 {
		t.Errorf("101 header fields over HTTP/2: %d, want 431", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 17<<10))
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 431 {
			t.Errorf("a 17 KiB field over HTTP/2: %d, want 431", resp.StatusCode)
		}
	} // or the server refuses the header block outright: either way it is not proxied
	req, _ = http.NewRequest("GET", "http://"+addr+"/", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a plain request after them: %v %v", resp, err)
	}
}

// Rapid reset (CVE-2023-44487): a client that opens streams and cancels them at once,
// in a loop, never has more requests at the backend at once than a client that sends
// requests may have (the stream limit), and other clients are served meanwhile.
func TestH2RapidResetIsBounded(t *testing.T) {
	var started, open, most atomic.Int64
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		n := open.Add(1)
		defer open.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go slow.Serve(ln)
	t.Cleanup(func() { slow.Close() })
	addr := serveOn(t, exchangetest.NewProxy(t, exchange.Settings{MaxHeaders: 100}, "http://"+ln.Addr().String()), Config{H2C: true})

	c, fr, _ := rawH2(t, addr)
	block := headerBlock("/")
	sent := 0
	var werr error
	for id := uint32(1); id < 2*10000; id += 2 {
		if werr = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); werr != nil {
			break
		}
		if werr = fr.WriteRSTStream(id, http2.ErrCodeCancel); werr != nil {
			break
		}
		sent++
	}
	// Whatever the server sent meanwhile (resets, maybe a GOAWAY) is read out.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	goaway := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			goaway = true
		}
	}
	// A client that sends requests may have maxStreams of them at the backend at
	// once; one that resets its streams must not have more.
	if n := most.Load(); n > maxStreams {
		t.Errorf("the backend had %d requests at once from %d cancelled streams, want at most %d", n, sent, maxStreams)
	}
	resp, err := h2cClient().Get("http://" + addr + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Logf("%d streams opened and cancelled (GOAWAY %v); %d reached the backend, %d at most at once", sent, goaway, started.Load(), most.Load())
}

// A client that reads slowly holds the answer back by HTTP/2 flow control: the proxy
// does not read the backend's body far ahead of it, and the client gets it all.
func TestH2SlowReaderHoldsTheBackendBack(t *testing.T) {
	const total = 64 << 20
	var written atomic.Int64
	big := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		for written.Load() < total {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go big.Serve(ln)
	t.Cleanup(func() { big.Close() })
	addr := serveOn(t, exchangetest.NewProxy(t, exchange.Settings{MaxHeaders: 100}, "http://"+ln.Addr().String()), Config{H2C: true})
	resp, err := h2cClient().Get("http://" + addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(time.Second) // the client reads nothing
	if n := written.Load(); n > 24<<20 {
		t.Errorf("the backend wrote %d MiB while the client read nothing, want the flow-control window and socket buffers at most", n>>20)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != total {
		t.Errorf("the client read %d bytes (%v), want %d", n, err, total)
	}
}

// A drain that runs out of time cuts off the HTTP/2 streams left, as it does the
// HTTP/1.1 exchanges: a stream that never ends does not hold a replaced listener
// open.
func TestH2DrainCutsOffWhatIsLeftAtItsEnd(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 400 && r.Context().Err() == nil; i++ { // 20 s at most
			io.WriteString(w, "tick;")
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := Serve(Config{Listener: ln, H2C: true, Proxy: exchangetest.NewProxy(t, exchange.Settings{MaxHeaders: 100}, srv.URL),
		Limits: h1.DefaultLimits, Status: func() []byte { return []byte(`{}`) },
		Timeouts: Timeouts{Connect: time.Second, ResponseHeader: 2 * time.Second, Idle: 10 * time.Second, ReadHeader: 2 * time.Second, BodyIdle: 2 * time.Second}})
	resp, err := h2cClient().Get("http://" + ln.Addr().String() + "/endless")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "tick;" {
		t.Fatalf("the stream's first bytes: %q %v", buf, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- f.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if err == nil {
			t.Errorf("Shutdown with a stream that never ends = nil, want the drain's timeout")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after its drain timeout: the HTTP/2 stream holds it")
	}
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Errorf("the stream ended as if whole after being cut off")
	}
}
