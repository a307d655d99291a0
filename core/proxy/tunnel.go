package proxy

import (
	"bufio"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-lb/switchyard/core/backend"
)

// tunnel passes an Upgrade (WebSocket) request to b and, when b switches protocols,
// joins the two connections byte for byte until both sides have closed (see join).
// The worker is released once the tunnel is up: an open WebSocket holds a backend slot, not a worker.
func (h *Handler) tunnel(ctx *fasthttp.RequestCtx, b *backend.Backend, proto []byte, s *Settings, body *clientBody) {
	defer h.pool.Release()
	b.Start()
	start := time.Now()
	bc, err := net.DialTimeout("tcp", b.Client().Addr, s.ConnectTimeout)
	if err != nil {
		b.Finish(time.Since(start), true)
		h.outcomes.Observe(b, true, err.Error())
		writeUpstreamError(ctx, err)
		h.finish(ctx, b.Answers, b.URL, int64(len(ctx.Response.Body())), 1, 0)
		return
	}
	upstream := &backend.IdleConn{Conn: bc, ReadIdle: s.Idle, WriteIdle: s.Idle}
	// Forward the handshake with its Upgrade and Connection headers, which
	// prepareRequest removed as hop-by-hop: here they are the point.
	req := &ctx.Request
	req.Header.Set("Connection", "Upgrade")
	req.Header.SetBytesV("Upgrade", proto)
	br := bufio.NewReader(upstream)
	bw := bufio.NewWriter(upstream)
	resp := fasthttp.AcquireResponse()
	resp.Header.SetNoDefaultContentType(true)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		resp.SkipBody = true
		err = resp.Header.Read(br)
	}
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		bc.Close()
		if cerr := clientFault(err, body); cerr != nil {
			b.Abandon()
			writeClientFault(ctx, cerr)
			h.finishOwn(ctx, 1)
			return
		}
		b.Finish(time.Since(start), true)
		h.outcomes.Observe(b, true, err.Error())
		writeUpstreamError(ctx, err)
		h.finish(ctx, b.Answers, b.URL, int64(len(ctx.Response.Body())), 1, 0)
		return
	}
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		// The backend did not take the upgrade: this is an ordinary answer, passed
		// on whole, its body streamed (DESIGN section 11). The connection was
		// dialled for this request alone and closes after it.
		failed := resp.StatusCode() >= 500
		b.Finish(time.Since(start), failed)
		h.outcomes.Observe(b, failed, "")
		prepareResponse(&resp.Header)
		if err := copyResponseHeader(&ctx.Response.Header, &resp.Header); err != nil {
			resp.Header.CopyTo(&ctx.Response.Header) // unreachable: fasthttp wrote it
		}
		ctx.Response.Header.ResetConnectionClose()
		h.finish(ctx, b.Answers, b.URL, int64(max(resp.Header.ContentLength(), 0)), 1, 0)
		if code := resp.StatusCode(); code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified || req.Header.IsHead() {
			dropBodyFraming(&ctx.Response.Header, code)
			ctx.Response.SkipBody = true
			fasthttp.ReleaseResponse(resp)
			bc.Close()
			return
		}
		resp.SkipBody, resp.StreamBody = false, true
		if err := resp.ReadBody(br, 0); err != nil { // StreamBody: only sets the stream up
			fasthttp.ReleaseResponse(resp)
			bc.Close()
			writeUpstreamError(ctx, err)
			return
		}
		size := resp.Header.ContentLength()
		if size >= 0 {
			ctx.Response.ImmediateHeaderFlush = true // streams through clientConn.ReadFrom
		} else {
			size = -1
		}
		ctx.Response.SetBodyStream(&dedicatedBody{resp: resp, conn: bc}, size)
		return
	}
	head := append([]byte(nil), resp.Header.Header()...)
	fasthttp.ReleaseResponse(resp)
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols) // what the client gets, for the count
	h.finish(ctx, b.Answers, b.URL, 0, 1, 0)
	// What the client sends from now on is the tunnel's, not a request: no header
	// scan may read it as header lines (a blank line in a frame would end the
	// connection as a bare-LF header).
	if c, ok := ctx.Conn().(*clientConn); ok {
		c.headerEnd.stop()
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		defer func() { b.Finish(time.Since(start), false) }()
		defer bc.Close()
		// The server's header deadline may still be set: from now on both sides
		// time out only when the connection goes quiet for s.Idle.
		_ = client.SetDeadline(time.Time{})
		client = &backend.IdleConn{Conn: client, ReadIdle: s.Idle, WriteIdle: s.Idle}
		if _, err := client.Write(head); err != nil {
			return
		}
		join(client, upstream, br)
	})
}

// join passes bytes both ways between client and upstream (whose reads go through
// fromUpstream) until both directions have ended. A side that ends its stream has
// its end passed on, and the other direction goes on until it ends too (DESIGN
// section 11): a client may send its last message and its FIN and still read the
// answers. An error in either direction, an idle timeout among them, ends both.
func join(client, upstream net.Conn, fromUpstream io.Reader) {
	errs := make(chan error, 2)
	go func() { errs <- pass(upstream, client) }()
	go func() { errs <- pass(client, fromUpstream) }()
	broken := false
	for range 2 {
		if err := <-errs; err != nil && !broken {
			// The server's hijacked connection ignores Close (the server closes
			// it after the hijack handler): close the socket under it, so that
			// the other direction's read or write returns now.
			broken = true
			_ = socket(client).Close()
			_ = upstream.Close()
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
	// A connection that cannot be half-closed ends whole: the other direction's
	// next read or write on it then fails, and ends the tunnel.
	return socket(dst).Close()
}

// socket returns the connection under c's wrappers: idle deadlines, the server's
// hijacked connection and the client connection's own. Only the socket can be
// half-closed, and only a close of it reaches a hijacked connection.
func socket(c net.Conn) net.Conn {
	for {
		switch v := c.(type) {
		case *backend.IdleConn:
			c = v.Conn
		case *clientConn:
			c = v.Conn
		case interface{ UnsafeConn() net.Conn }: // fasthttp's hijacked connection
			c = v.UnsafeConn()
		default:
			return c
		}
	}
}

// dedicatedBody is the body of an answer read on a connection of its own: closing
// it closes the connection.
type dedicatedBody struct {
	resp *fasthttp.Response
	conn net.Conn
}

func (d *dedicatedBody) Read(p []byte) (int, error) { return d.resp.BodyStream().Read(p) }

// Close releases the answer and closes its connection.
func (d *dedicatedBody) Close() error {
	fasthttp.ReleaseResponse(d.resp)
	return d.conn.Close()
}
