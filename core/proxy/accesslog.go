package proxy

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// AccessLog writes one line per request: logfmt, or JSON. A line is built in a pooled
// buffer on the request's goroutine and handed to one writer goroutine, which writes
// lines in batches: one write per batch, not one per request, so that requests do not
// queue on the file's lock in the kernel. A batch is written as soon as no more lines
// wait, so the log trails requests by a write, not by a timer.
//
// AccessLog is safe for use by multiple goroutines.
type AccessLog struct {
	json   bool
	lines  chan *[]byte
	closed chan struct{}
	done   chan struct{}
}

// NewAccessLog returns an access log writing to w, as JSON lines when asJSON. Close
// stops it.
func NewAccessLog(w io.Writer, asJSON bool) *AccessLog {
	l := &AccessLog{json: asJSON, lines: make(chan *[]byte, 4096), closed: make(chan struct{}), done: make(chan struct{})}
	go l.run(bufio.NewWriterSize(w, 64<<10))
	return l
}

// run writes lines until Close, a batch at a time.
func (l *AccessLog) run(bw *bufio.Writer) {
	defer close(l.done)
	put := func(bp *[]byte) {
		_, _ = bw.Write(*bp)
		lineBufs.Put(bp)
	}
	for {
		select {
		case bp := <-l.lines:
			put(bp)
		case <-l.closed:
			for {
				select {
				case bp := <-l.lines:
					put(bp)
				default:
					_ = bw.Flush()
					return
				}
			}
		}
		if len(l.lines) == 0 || bw.Available() < 1024 {
			_ = bw.Flush()
		}
	}
}

// Close writes what is queued and stops the writer. A line sent later is dropped.
func (l *AccessLog) Close() {
	close(l.closed)
	<-l.done
}

// entry is one request's line.
type entry struct {
	start    time.Time
	client   []byte
	method   []byte
	path     []byte
	status   int
	backend  string // "" when no backend answered
	in, out  int64
	duration time.Duration
	attempts int
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// write formats e and writes it.
func (l *AccessLog) write(e *entry) {
	bp := lineBufs.Get().(*[]byte)
	b := (*bp)[:0]
	if l.json {
		b = append(b, `{"time":"`...)
		b = e.start.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","client":`...)
		b = appendQuoted(b, e.client)
		b = append(b, `,"method":`...)
		b = appendQuoted(b, e.method)
		b = append(b, `,"path":`...)
		b = appendQuoted(b, e.path)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(e.status), 10)
		b = append(b, `,"backend":`...)
		b = appendQuoted(b, []byte(e.backend))
		b = append(b, `,"bytes_in":`...)
		b = strconv.AppendInt(b, e.in, 10)
		b = append(b, `,"bytes_out":`...)
		b = strconv.AppendInt(b, e.out, 10)
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendFloat(b, float64(e.duration.Microseconds())/1000, 'f', 3, 64)
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(e.attempts), 10)
		b = append(b, "}\n"...)
	} else {
		b = append(b, "time="...)
		b = e.start.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, " client="...)
		b = append(b, e.client...)
		b = append(b, " method="...)
		b = appendQuoted(b, e.method)
		b = append(b, " path="...)
		b = appendQuoted(b, e.path)
		b = append(b, " status="...)
		b = strconv.AppendInt(b, int64(e.status), 10)
		b = append(b, " backend="...)
		if e.backend == "" {
			b = append(b, '-')
		} else {
			b = append(b, e.backend...)
		}
		b = append(b, " bytes_in="...)
		b = strconv.AppendInt(b, e.in, 10)
		b = append(b, " bytes_out="...)
		b = strconv.AppendInt(b, e.out, 10)
		b = append(b, " duration="...)
		b = strconv.AppendFloat(b, float64(e.duration.Microseconds())/1000, 'f', 3, 64)
		b = append(b, "ms attempts="...)
		b = strconv.AppendInt(b, int64(e.attempts), 10)
		b = append(b, '\n')
	}
	*bp = b
	select {
	case l.lines <- bp:
	case <-l.closed:
		lineBufs.Put(bp)
	}
}

// appendQuoted appends s as a JSON string (also valid in logfmt): a client's method
// and path are its own bytes, so quotes, control bytes and invalid UTF-8 are escaped.
func appendQuoted(b, s []byte) []byte {
	b = append(b, '"')
	for len(s) > 0 {
		c := s[0]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			s = s[1:]
			continue
		}
		r, size := utf8.DecodeRune(s)
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...) // not UTF-8: the replacement character
		case r < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[s[0]>>4], "0123456789abcdef"[s[0]&0xf])
		default:
			b = append(b, s[:size]...)
		}
		s = s[size:]
	}
	return append(b, '"')
}

// finish records a request's answer: its status code and duration on the backend
// that served it (or on the proxy's own count when none did), and its access-log
// line. out is the body bytes sent.
func (h *Handler) finish(ctx *fasthttp.RequestCtx, b backendAnswers, url string, out int64, attempts int, in int64) {
	status := ctx.Response.StatusCode()
	d := time.Since(ctx.Time())
	b.Add(status, d)
	if l := h.settings.Load().AccessLog; l != nil {
		var addr [64]byte
		client, _ := ctx.RemoteIP().AppendText(addr[:0])
		l.write(&entry{start: ctx.Time(), client: client, method: ctx.Method(), path: ctx.RequestURI(),
			status: status, backend: url, in: in, out: out, duration: d, attempts: attempts})
	}
}

// backendAnswers is where an answer is counted (backend.Answers).
type backendAnswers interface {
	Add(code int, d time.Duration)
}
