//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/exchange"
)

// An h2c backend (HTTP/2 without TLS) is reached through a bridge (tls.go) whose
// goroutine reads the HTTP/1.1 requests the loop writes, sends each on as a stream
// of the backend's HTTP/2 connection, and writes the answer back in HTTP/1.1: a 1xx
// as it arrives, the body as it comes (chunked when its length is not known), and
// the trailers as chunked trailers. Every loop's connections to the backend share
// one HTTP/2 connection (another when it holds as many streams as the backend
// allows), so the backend sees what an HTTP/2 client would show it.

// newH2CTransport returns what starts the HTTP/2 connections to h2c backends: one
// unused for the idle timeout closes.
func newH2CTransport(t Timeouts) *http2.Transport {
	idle := t.Idle
	if idle <= 0 {
		idle = 90 * time.Second
	}
	return &http2.Transport{
		AllowHTTP:          true,
		DisableCompression: true, // the body passes as the backend sent it
		IdleConnTimeout:    idle,
		// A dead connection is found by its pings; a stalled answer by the loop's
		// timers, which end the stream when they close the bridge.
		ReadIdleTimeout: 30 * time.Second,
	}
}

// cancelCloser ends a bridge's streams when the bridge is aborted.
type cancelCloser context.CancelFunc

func (c cancelCloser) Close() error { c(); return nil }

// dialH2C opens a connection to the h2c backend b at ap: it is up once the
// backend's HTTP/2 connection is.
func (l *loop) dialH2C(b *backend.Backend, ap netip.AddrPort) (*upstream, error) {
	t, timeout := l.e.h2c, max(l.e.cfg.Timeouts.Connect, time.Second)
	_, hostport, _ := strings.Cut(b.Key, "://")
	dial := func(ctx context.Context) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		return d.DialContext(ctx, "tcp", ap.String())
	}
	return l.dialBridge(b, ap, func(br *bridge, local *net.UnixConn, done func(error)) {
		ctx, cancel := context.WithCancel(context.Background())
		if !br.attach(cancelCloser(cancel)) {
			done(errAbandoned)
			return
		}
		conn := func() (*http2.ClientConn, error) { return b.H2CConn(ctx, t, dial, true) }
		if _, err := b.H2CConn(ctx, t, dial, false); err != nil {
			local.Close()
			done(err)
			return
		}
		done(nil)
		serveH2C(ctx, local, conn, hostport)
		br.abort()
	})
}

// serveH2C sends each request read from local on as a stream of an HTTP/2
// connection that conn gives, and writes its answer back, until local ends, ctx is
// cancelled, or an exchange fails: the loop then reads the end of the connection.
func serveH2C(ctx context.Context, local *net.UnixConn, conn func() (*http2.ClientConn, error), hostport string) {
	rd := bufio.NewReaderSize(local, 8<<10)
	// A 1xx is written from the read loop of the connection every stream to the
	// backend shares: it may not wait on this client for long, and a backend may
	// send a request only so many.
	interims := 0
	interim := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if interims++; interims > exchange.MaxInterims {
			return exchange.ErrTooManyInterims
		}
		_ = local.SetWriteDeadline(time.Now().Add(interimWait))
		defer local.SetWriteDeadline(time.Time{})
		return writeInterim(local, code, http.Header(h))
	}}
	ctx = httptrace.WithClientTrace(ctx, interim)
	for {
		interims = 0
		req, err := http.ReadRequest(rd)
		if err != nil {
			return
		}
		body := &requestBody{r: req.Body}
		if req.Body == http.NoBody {
			body.whole.Store(true)
		} else {
			req.Body = body
		}
		if _, ok := req.Header["User-Agent"]; !ok {
			req.Header["User-Agent"] = []string{""} // none: the transport adds none either
		}
		closing := req.Close
		req.Close = false
		// Connection-specific fields do not exist in HTTP/2 (RFC 9113 section
		// 8.2.2); the loop sent none but these.
		req.Header.Del("Connection")
		req.Header.Del("Keep-Alive")
		req.URL.Scheme, req.URL.Host, req.RequestURI = "http", hostport, ""
		req = req.WithContext(ctx)
		var resp *http.Response
		for tries := 1; ; tries++ {
			cc, err := conn()
			if err != nil {
				return
			}
			if resp, err = cc.RoundTrip(req); err == nil {
				break
			}
			// A stream the backend never took (its connection was going away, or
			// full) goes on another connection; anything else ends the exchange,
			// and the loop reads the end before an answer.
			if tries == 3 || !unsent(err) || body.touched.Load() || ctx.Err() != nil {
				return
			}
		}
		err = writeAnswer(local, resp, req.Method == http.MethodHead)
		resp.Body.Close()
		// A request body the stream did not take whole still lies in rd's way:
		// the connection ends with this exchange.
		if err != nil || closing || !body.whole.Load() {
			return
		}
	}
}

// interimWait is how long writing a 1xx may wait for the loop to take it.
const interimWait = time.Second

// requestBody is a request's body as the stream reads it. Closing it reads nothing
// more: what the stream left is this connection's to deal with.
type requestBody struct {
	r       io.Reader
	touched atomic.Bool // read from: it cannot be sent again
	whole   atomic.Bool // read to its end
}

func (b *requestBody) Read(p []byte) (int, error) {
	b.touched.Store(true)
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.whole.Store(true)
	}
	return n, err
}

func (b *requestBody) Close() error { return nil }

// unsent reports whether err says that a request never went out on its HTTP/2
// connection (x/net/http2's canRetryError: the connection was unusable or going
// away, or the backend refused the stream), so that it may go on another.
func unsent(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) {
		return se.Code == http2.ErrCodeRefusedStream
	}
	switch err.Error() {
	case "http2: client conn not usable", "http2: Transport received Server's graceful shutdown GOAWAY":
		return true
	}
	return false
}

// answerBufs are the buffers answers' bodies pass through.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeInterim writes a 1xx answer to w.
func writeInterim(w io.Writer, code int, h http.Header) error {
	b := appendStatusLine(nil, code)
	b = appendFields(b, h, false)
	_, err := w.Write(append(b, "\r\n"...))
	return err
}

// writeAnswer writes resp to w in HTTP/1.1, its body as it comes. An answer to
// HEAD, a 204 and a 304 have no body; one of unknown length goes chunked, with its
// trailers.
func writeAnswer(w io.Writer, resp *http.Response, head bool) error {
	bodyless := head || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	// Announced trailers need chunked framing even with a known length.
	chunked := !bodyless && (resp.ContentLength < 0 || len(resp.Trailer) > 0)
	b := appendStatusLine(make([]byte, 0, 512), resp.StatusCode)
	b = appendFields(b, resp.Header, !bodyless)
	switch {
	case chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case !bodyless:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, resp.ContentLength, 10)
		b = append(b, "\r\n"...)
	}
	if _, err := w.Write(append(b, "\r\n"...)); err != nil || bodyless {
		return err
	}
	bp := answerBufs.Get().(*[]byte)
	defer answerBufs.Put(bp)
	buf := *bp
	var size [20]byte
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			var err error
			if chunked {
				line := append(strconv.AppendInt(size[:0], int64(n), 16), "\r\n"...)
				bufs := net.Buffers{line, buf[:n], []byte("\r\n")}
				_, err = bufs.WriteTo(w)
			} else {
				_, err = w.Write(buf[:n])
			}
			if err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr // cut short: the loop reads the end before the answer's
		}
	}
	if !chunked {
		return nil
	}
	b = append(b[:0], "0\r\n"...)
	b = appendFields(b, resp.Trailer, false)
	_, err := w.Write(append(b, "\r\n"...))
	return err
}

// appendStatusLine appends HTTP/1.1's status line for code.
func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	return append(b, "\r\n"...)
}

// appendFields appends h's fields, one line per value; framing fields are left out
// when the caller frames the body itself.
func appendFields(b []byte, h http.Header, framed bool) []byte {
	for k, vv := range h {
		if framed && (k == "Content-Length" || k == "Transfer-Encoding") {
			continue
		}
		for _, v := range vv {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return b
}
