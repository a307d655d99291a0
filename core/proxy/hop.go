package proxy

import (
	"bufio"
	"bytes"
	"slices"
	"sync"

	"github.com/valyala/fasthttp"
)

// hopHeaders are the hop-by-hop headers: they describe one connection and are not
// forwarded (RFC 9110 section 7.6.1). fasthttp keeps Connection, Transfer-Encoding and
// Content-Length out of its header list and writes them itself for each side.
var hopHeaders = []string{
	"Connection",
	"Keep-Alive",
	"Proxy-Connection", // non-standard, sent by old clients as Connection
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",      // canonicalized form of "TE"
	"Trailer", // not Trailers, as in RFC 7230 section 4.4
	"Upgrade",
}

// forwardedHeaders are set by the proxy; a client's own values are dropped, so a
// backend can trust them.
var forwardedHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"}

// prepareRequest turns the client's request into the one sent upstream: hop-by-hop
// headers removed, X-Forwarded-* set, Host kept.
func prepareRequest(ctx *fasthttp.RequestCtx, h *fasthttp.RequestHeader) {
	// One pass finds which of the headers to drop are there; most requests carry
	// none or one, and each Del is a pass of its own.
	var found [16]bool // by index into hopHeaders, then forwardedHeaders
	some := false
	for k := range h.All() {
		if i := dropIndex(k); i >= 0 {
			found[i], some = true, true
		}
	}
	if some {
		if found[0] { // Connection: first the headers it names
			removeConnectionHeaders(h.PeekAll("Connection"), h.Del)
		}
		for i, k := range hopHeaders {
			if found[i] {
				h.Del(k)
			}
		}
		for i, k := range forwardedHeaders {
			if found[len(hopHeaders)+i] {
				h.Del(k)
			}
		}
	}
	var buf [64]byte
	ip, _ := ctx.RemoteIP().AppendText(buf[:0])
	h.SetBytesV("X-Forwarded-For", ip)
	if ctx.IsTLS() {
		h.Set("X-Forwarded-Proto", "https")
	} else {
		h.Set("X-Forwarded-Proto", "http")
	}
	// For an absolute-form target the target's host is the request's host
	// (RFC 9112 section 3.2.2): the Host sent on and X-Forwarded-Host both carry it.
	host := ctx.Request.URI().Host()
	h.SetHostBytes(host)
	h.SetBytesV("X-Forwarded-Host", host)
}

// dropIndex is the index of key in hopHeaders, or len(hopHeaders) plus its index in
// forwardedHeaders, or -1 when the proxy keeps it.
func dropIndex(key []byte) int {
	for i, k := range hopHeaders {
		if len(k) == len(key) && bytes.EqualFold(key, []byte(k)) {
			return i
		}
	}
	for i, k := range forwardedHeaders {
		if len(k) == len(key) && bytes.EqualFold(key, []byte(k)) {
			return len(hopHeaders) + i
		}
	}
	return -1
}

// responseHopHeaders are the hop-by-hop headers removed from a backend's answer: all
// of hopHeaders but Trailer, since the trailers it announces are passed on after the
// body (see copyTrailers), as httputil re-announces them.
var responseHopHeaders = slices.DeleteFunc(slices.Clone(hopHeaders), func(k string) bool { return k == "Trailer" })

// prepareResponse removes the hop-by-hop headers of the backend's answer.
func prepareResponse(h *fasthttp.ResponseHeader) {
	removeConnectionHeaders(h.PeekAll("Connection"), h.Del)
	for _, k := range responseHopHeaders {
		h.Del(k)
	}
}

// dropBodyFraming removes Content-Length and Transfer-Encoding from h, the client's
// header of an answer with status, when status is 204 or 304: such an answer has no
// body, and a length or coding it announces is for a body that does not follow
// (DESIGN section 11). fasthttp itself keeps both on a 304 (RFC 9110 section 8.6
// lets a 304 describe the 200 it stands for), and a client that reads them as this
// answer's framing would wait for a body or take the next answer for one.
func dropBodyFraming(h *fasthttp.ResponseHeader, status int) {
	if status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		h.Del(fasthttp.HeaderContentLength)
		h.Del(fasthttp.HeaderTransferEncoding)
	}
}

// copyTrailers gives dst, whose header announced them, the trailers src received.
func copyTrailers(dst, src *fasthttp.ResponseHeader) {
	for k := range src.Trailers() {
		key := string(k)
		for _, v := range src.PeekAll(key) {
			dst.Add(key, string(v))
		}
	}
}

// removeConnectionHeaders deletes the headers that Connection names
// (RFC 9110 section 7.6.1); "close" and "keep-alive" name none. Connection may name
// only hop-by-hop extensions: a name that frames the message or that the proxy
// itself sets is never removed through it (DESIGN section 11), or a client could
// strip a body's length or the forwarded headers.
func removeConnectionHeaders(values [][]byte, del func(string)) {
	for _, v := range values {
		for f := range bytes.SplitSeq(v, []byte{','}) {
			f = bytes.TrimSpace(f)
			if len(f) == 0 || bytes.EqualFold(f, []byte("close")) || bytes.EqualFold(f, []byte("keep-alive")) || kept(f) {
				continue
			}
			del(string(f))
		}
	}
}

// keptHeaders are never removed on behalf of Connection: the message's framing, its
// Host, and the headers the proxy sets.
var keptHeaders = []string{"Content-Length", "Transfer-Encoding", "Host",
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"}

// kept reports whether name is one of keptHeaders.
func kept(name []byte) bool {
	for _, k := range keptHeaders {
		if bytes.EqualFold(name, []byte(k)) {
			return true
		}
	}
	return false
}

// hasUserinfo reports whether the request's target names user information
// (http://user:pass@host/), or its Host field does, which fasthttp reads the same
// way. RFC 9110 section 4.2.4 has a recipient treat it as an error: it hides the
// authority the request is for, and fasthttp's client would turn it into an
// Authorization header of its own. Only a target that is not origin-form has an
// authority to look into: an origin-form request costs three comparisons.
func hasUserinfo(req *fasthttp.Request) bool {
	if u := req.URI(); len(u.Username()) > 0 || len(u.Password()) > 0 {
		return true
	}
	target := req.Header.RequestURI()
	if len(target) == 0 || target[0] == '/' {
		return false
	}
	_, authority, ok := bytes.Cut(target, []byte("://"))
	if !ok {
		return false
	}
	if end := bytes.IndexAny(authority, "/?#"); end >= 0 {
		authority = authority[:end]
	}
	return bytes.IndexByte(authority, '@') >= 0 // an empty user, as in http://@host/
}

// isUpgrade reports whether the request asks to switch protocols (WebSocket).
func isUpgrade(h *fasthttp.RequestHeader) bool {
	return len(h.Peek("Upgrade")) > 0 && h.ConnectionUpgrade()
}

// copyResponseHeader makes dst, the client's response header, the backend's src.
// fasthttp's CopyTo would also copy src's "add a default Date and Content-Type"
// settings, which a client-side response has; parsing src's bytes into dst keeps
// dst's (the server's: add none), so the client gets only what the backend sent
// (DESIGN section 11). src must not add a default Content-Type either (see
// ServeHTTP).
func copyResponseHeader(dst, src *fasthttp.ResponseHeader) error {
	sc := headerScratch.Get().(*headerCopy)
	defer headerScratch.Put(sc)
	// src writes its own Date line, with the current date, in place of the
	// backend's: put the backend's back, or leave the line out.
	raw := src.AppendBytes(sc.raw[:0])
	sc.raw = raw
	if i := bytes.Index(raw, []byte("\r\nDate: ")); i >= 0 {
		if j := bytes.Index(raw[i+2:], []byte("\r\n")); j >= 0 {
			end := i + 2 + j + 2
			out := append(sc.out[:0], raw[:i+2]...)
			if date := src.Peek("Date"); len(date) > 0 {
				out = append(append(append(out, "Date: "...), date...), "\r\n"...)
			}
			out = append(out, raw[end:]...)
			sc.out, raw = out, out
		}
	}
	sc.rd.Reset(raw)
	sc.br.Reset(&sc.rd)
	return dst.Read(sc.br)
}

// headerCopy is copyResponseHeader's scratch, pooled.
type headerCopy struct {
	raw, out []byte
	rd       bytes.Reader
	br       *bufio.Reader // larger than the backend client's 16 KiB header buffer
}

var headerScratch = sync.Pool{New: func() any { return &headerCopy{br: bufio.NewReaderSize(nil, 20<<10)} }}
