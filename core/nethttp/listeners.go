package nethttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// h2Preface is what an HTTP/2 client sends first (RFC 9113 section 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// acceptor turns the listener's connections into what the server reads: for TLS, it
// completes each handshake on a goroutine of its own; a connection that chose h2 by
// ALPN, or (h2c) began with HTTP/2's preface, is served by the HTTP/2 server, the
// others go to the HTTP/1.1 server through a gate. Accept returns only the latter.
type acceptor struct {
	net.Listener
	f     *Front
	conns chan net.Conn
	errc  chan error
	once  sync.Once
}

// newAcceptor starts accepting on f's listener.
func newAcceptor(f *Front) *acceptor {
	a := &acceptor{Listener: f.cfg.Listener, f: f, conns: make(chan net.Conn), errc: make(chan error, 1)}
	go a.run()
	return a
}

func (a *acceptor) run() {
	for {
		c, err := a.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			a.errc <- err
			return
		}
		if a.f.cfg.TLS == nil && !a.f.cfg.H2C {
			a.hand(&gate{Conn: c, f: a.f})
			continue
		}
		go a.open(c)
	}
}

// hand gives the HTTP/1.1 server c, or closes it once the server stops accepting.
func (a *acceptor) hand(c net.Conn) {
	select {
	case a.conns <- c:
	case <-a.f.done:
		_ = c.Close()
	}
}

// open completes c's TLS handshake, or reads enough of a plaintext one to tell
// HTTP/2 from HTTP/1.1, within read_header.
func (a *acceptor) open(c net.Conn) {
	f := a.f
	deadline := time.Now().Add(max(f.cfg.Timeouts.ReadHeader, time.Second))
	if f.cfg.TLS != nil {
		tc := tls.Server(c, f.cfg.TLS)
		_ = tc.SetDeadline(deadline)
		if err := tc.HandshakeContext(context.Background()); err != nil {
			f.handshake(false)
			f.cfg.Log.Debug("TLS handshake failed", "client", c.RemoteAddr().String(), "error", err)
			_ = c.Close()
			return
		}
		f.handshake(true)
		_ = tc.SetDeadline(time.Time{})
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			f.serveH2(tc)
			return
		}
		a.hand(&gate{Conn: tc, f: f, tls: true})
		return
	}
	// h2c: HTTP/2 by prior knowledge, or HTTP/1.1.
	_ = c.SetReadDeadline(deadline)
	buf := make([]byte, len(h2Preface))
	n, err := io.ReadAtLeast(c, buf, 1)
	for err == nil && n < len(buf) && bytes.HasPrefix([]byte(h2Preface), buf[:n]) {
		var m int
		m, err = c.Read(buf[n:])
		n += m
	}
	_ = c.SetReadDeadline(time.Time{})
	if n == 0 {
		_ = c.Close()
		return
	}
	pc := &prefixed{Conn: c, head: buf[:n]}
	if string(buf[:n]) == h2Preface {
		f.serveH2(pc)
		return
	}
	a.hand(&gate{Conn: pc, f: f})
}

// Accept returns the next HTTP/1.1 connection.
func (a *acceptor) Accept() (net.Conn, error) {
	select {
	case c := <-a.conns:
		return c, nil
	case err := <-a.errc:
		return nil, err
	}
}

// prefixed is a connection whose first bytes were read already: they are read again
// first.
type prefixed struct {
	net.Conn
	head []byte
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// serveH2 serves c, which speaks HTTP/2, until it ends; Shutdown sends it GOAWAY and
// waits for its streams.
func (f *Front) serveH2(c net.Conn) {
	f.h2mu.Lock()
	if f.h2closing {
		// Its handshake ended after Shutdown began: it would get no GOAWAY.
		f.h2mu.Unlock()
		_ = c.Close()
		return
	}
	f.h2conns.Add(1)
	f.h2open[c] = struct{}{}
	f.h2mu.Unlock()
	defer f.h2conns.Done()
	defer func() {
		f.h2mu.Lock()
		delete(f.h2open, c)
		f.h2mu.Unlock()
	}()
	st := &conn{tls: f.cfg.TLS != nil}
	st.ip = clientIP(c)
	ctx := context.WithValue(context.Background(), connKey{}, st)
	f.h2.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: f.server, Handler: f})
}

// h2Server is the HTTP/2 server of f's listener, with the limits HTTP/2 needs:
// streams per connection, header list size, and an idle timeout; it sends GOAWAY
// when f.server shuts down.
func (f *Front) h2Server() *http2.Server {
	s := &http2.Server{
		MaxConcurrentStreams:         maxStreams,
		MaxDecoderHeaderTableSize:    4096,
		MaxEncoderHeaderTableSize:    4096,
		IdleTimeout:                  f.cfg.Timeouts.Idle,
		MaxUploadBufferPerConnection: 1 << 20,
		MaxUploadBufferPerStream:     1 << 20,
	}
	_ = http2.ConfigureServer(f.server, s)
	return s
}

// maxStreams bounds the streams a client may have open at once on one HTTP/2
// connection (SETTINGS_MAX_CONCURRENT_STREAMS), as HAProxy's default does.
const maxStreams = 100
