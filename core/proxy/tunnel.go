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
func (h *Handler) tunnel(ctx *fasthttp.RequestCtx, b *backend.Backend, proto []byte, s *Settings) {
	defer h.pool.Release()
	b.Start()
	start := time.Now()
	bc, err := net.DialTimeout("tcp", b.Client().Addr, s.ConnectTimeout)
	if err != nil {
		b.Finish(time.Since(start), true)
		h.outcomes.Observe(b, true, err.Error())
		writeUpstreamError(ctx, err)
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
	var resp fasthttp.Response
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		resp.SkipBody = true
		err = resp.Header.Read(br)
	}
	if err != nil {
		bc.Close()
		b.Finish(time.Since(start), true)
		writeUpstreamError(ctx, err)
		return
	}
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		// Refused upgrade: pass the answer on and close; its body, if any, is dropped.
		bc.Close()
		b.Finish(time.Since(start), resp.StatusCode() >= 500)
		resp.Header.CopyTo(&ctx.Response.Header)
		ctx.Response.Header.SetContentLength(0)
		ctx.SetConnectionClose()
		return
	}
	head := append([]byte(nil), resp.Header.Header()...)
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

// pipe copies src to dst, then closes dst's write side so the peer sees the end.
func pipe(dst net.Conn, src io.Reader) {
	_, _ = io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
}
