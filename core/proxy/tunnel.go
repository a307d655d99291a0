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
// joins the two connections byte for byte until either side closes. The worker is
// released once the tunnel is up: an open WebSocket holds a backend slot, not a worker.
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
		done := make(chan struct{}, 2)
		go func() { pipe(upstream, client); done <- struct{}{} }()
		go func() { pipe(client, br); done <- struct{}{} }()
		<-done
	})
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

// pipe copies src to dst, then closes dst's write side so the peer sees the end.
func pipe(dst net.Conn, src io.Reader) {
	_, _ = io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
}
