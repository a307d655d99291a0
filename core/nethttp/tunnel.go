package nethttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/exchange"
)

// An upgraded connection (WebSocket): the request goes on a backend connection of
// its own; once the backend answered 101, bytes pass both ways as they come. A side
// that closes its direction has its end passed on, and the other direction stays
// open; the tunnel ends when both directions have ended, when a connection fails, or
// when one stays silent for the idle timeout (DESIGN section 11).

// tunnel sends the upgrade request out to x.b and, on 101, joins the two connections.
func (f *Front) tunnel(x *exchangeState, out *http.Request) {
	p, s := f.cfg.Proxy, f.cfg.Proxy.Settings()
	b := x.b
	b.Start()
	sent := time.Now()
	up, err := f.dialBackend(out.Context(), b, x.route.Upstream.TLS())
	if err == nil {
		up = newAnswerGate(up, f.cfg.Limits, 0, nil)
	}
	if err != nil {
		fl := failure(err)
		p.Record(x.picker, b, 0, fl.Msg, time.Since(sent))
		x.backendFailed(fl.Answer())
		return
	}
	_ = up.SetDeadline(time.Now().Add(max(f.cfg.Timeouts.ResponseHeader, time.Second)))
	br := bufio.NewReader(up)
	err = out.Write(up)
	var resp *http.Response
	for err == nil {
		if resp, err = http.ReadResponse(br, out); err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 &&
			resp.StatusCode != http.StatusSwitchingProtocols {
			passInterim(x.w, resp.StatusCode, resp.Header) // 103 before the 101, or the final answer
			continue
		}
		break
	}
	if err != nil {
		_ = up.Close()
		if x.st.body != nil && x.st.body.failed() != nil {
			b.Abandon() // the client broke its body off: not the backend's failure
			x.clientFault(x.st.body.failed())
			return
		}
		fl := failure(err)
		p.Record(x.picker, b, 0, fl.Msg, time.Since(sent))
		x.backendFailed(fl.Answer())
		return
	}
	_ = up.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// Not upgraded: an ordinary answer, and the connection goes on with HTTP.
		defer up.Close()
		x.answer(resp, sent)
		return
	}
	x.status = resp.StatusCode
	// The backend's in-flight slot is held while the tunnel is open; the outcome
	// is recorded when it ends.
	defer func() { p.Record(x.picker, b, resp.StatusCode, "", time.Since(sent)) }()
	client, cbuf, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		_ = up.Close()
		x.finish(b.Answers, b.URL)
		return
	}
	x.tunneled = true
	x.c.g.decide(true) // before the first read of the hijacked connection
	// The answer's head, then what the client sent after its request.
	head := []byte("HTTP/1.1 101 Switching Protocols\r\n")
	connection := resp.Header["Connection"]
	rules := &x.route.Response
	for name, values := range resp.Header {
		if dropResponseField(name, connection) && name != "Upgrade" || !rules.Empty() && rules.Drops([]byte(name)) {
			continue
		}
		for _, v := range values {
			head = append(head, name...)
			head = append(head, ": "...)
			head = append(head, v...)
			head = append(head, "\r\n"...)
		}
	}
	head = rules.AppendSet(head)
	head = append(head, "Connection: Upgrade\r\n\r\n"...)
	_ = client.SetDeadline(time.Time{})
	if _, err := client.Write(head); err != nil {
		_ = client.Close()
		_ = up.Close()
		x.finish(b.Answers, b.URL)
		return
	}
	x.release() // an open tunnel holds no worker, only its backend's in-flight slot
	fromClient := io.MultiReader(io.LimitReader(cbuf.Reader, int64(cbuf.Reader.Buffered())), client)
	idle := s.Idle
	join(&backend.IdleConn{Conn: client, ReadIdle: idle, WriteIdle: idle}, fromClient,
		&backend.IdleConn{Conn: up, ReadIdle: idle, WriteIdle: idle}, br)
	_ = client.Close()
	_ = up.Close()
	x.finish(b.Answers, b.URL)
}

// dialBackend opens a connection of its own to b: TCP, then TLS for https, as bt
// says.
func (f *Front) dialBackend(ctx context.Context, b *backend.Backend, bt *exchange.BackendTLS) (net.Conn, error) {
	scheme, hostport, _ := strings.Cut(b.Key, "://")
	if scheme == "https" {
		return f.dialTLS(ctx, hostport, false, bt)
	}
	d := &net.Dialer{Timeout: f.cfg.Timeouts.Connect, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, "tcp", hostport)
}

// errTLS marks a TLS handshake with a backend that failed: nothing was sent.
var errTLS = errors.New("TLS handshake with the backend failed")

// dialTLS connects to the https backend at hostport: TCP, then a TLS handshake as
// its pool's bt says (ca, tls_skip_verify), offering h2 by ALPN when h2 is set.
func (f *Front) dialTLS(ctx context.Context, hostport string, h2 bool, bt *exchange.BackendTLS) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, max(f.cfg.Timeouts.Connect, time.Second))
	defer cancel()
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	cfg := bt.For(hostport, h2)
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %w", errTLS, err)}
	}
	return tc, nil
}

// join passes bytes both ways between client and up (read through fromClient and
// fromUp, which hold what was read ahead) until both directions have ended. A side
// that ends its stream has its end passed on, and the other direction goes on until
// it ends too: a client may send its last message and its FIN and still read the
// answers. An error in either direction, an idle timeout among them, ends both.
func join(client net.Conn, fromClient io.Reader, up net.Conn, fromUp io.Reader) {
	errs := make(chan error, 2)
	go func() { errs <- pass(up, fromClient) }()
	go func() { errs <- pass(client, fromUp) }()
	broken := false
	for range 2 {
		if err := <-errs; err != nil && !broken {
			broken = true
			_ = socket(client).Close()
			_ = socket(up).Close()
		}
	}
}

// pass copies src to dst until src ends, then shuts dst's write side down so that
// its peer reads the end of the stream too, while dst may still be read.
func pass(dst net.Conn, src io.Reader) error {
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	if cw, ok := socket(dst).(interface{ CloseWrite() error }); ok { // *net.TCPConn, *tls.Conn
		return cw.CloseWrite()
	}
	return socket(dst).Close()
}

// socket returns the connection under c's wrappers (idle deadlines, the gate): only
// the socket can be half-closed.
func socket(c net.Conn) net.Conn {
	for {
		switch v := c.(type) {
		case *backend.IdleConn:
			c = v.Conn
		case *gate:
			c = v.Conn
		case *answerGate:
			c = v.Conn
		default:
			return c
		}
	}
}
