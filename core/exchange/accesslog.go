package exchange

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// AccessLog writes one line per request: logfmt, or JSON. A line is formatted on the
// request's goroutine into a pooled buffer, then appended to a shared batch under a
// mutex held for that copy only; a writer goroutine writes the batch every
// FlushEvery, or at once when it grows past batchSize. So a request makes no system
// call and wakes no goroutine for its line (one write per request, or one wake-up,
// cost a third of the throughput here), and the log trails requests by FlushEvery
// at most.
//
// SetWriter moves the log to another writer between two batches, so that a rotation
// (logrotate, then SIGUSR1) neither loses nor tears a line.
//
// AccessLog is safe for use by multiple goroutines.
type AccessLog struct {
	json bool
	w    io.Writer // used by the writer goroutine alone

	mu    sync.Mutex // guards batch
	batch []byte

	full    chan struct{}     // the batch passed batchSize
	writers chan writerChange // SetWriter's
	closed  chan struct{}
	done    chan struct{}
}

// writerChange asks the writer goroutine to write to w from the next batch, and to
// close done once it does.
type writerChange struct {
	w    io.Writer
	done chan struct{}
}

// FlushEvery is how long an access log line may wait before it is written.
const FlushEvery = 100 * time.Millisecond

// batchSize is the batch that is written without waiting for the next tick.
const batchSize = 64 << 10

// NewAccessLog returns an access log writing to w, as JSON lines when asJSON. Close
// writes what waits and stops it.
func NewAccessLog(w io.Writer, asJSON bool) *AccessLog {
	l := &AccessLog{json: asJSON, w: w, batch: make([]byte, 0, batchSize),
		full: make(chan struct{}, 1), writers: make(chan writerChange), closed: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// run writes the batch every FlushEvery, when it is full, before a change of writer,
// and at Close.
func (l *AccessLog) run() {
	defer close(l.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	spare := make([]byte, 0, batchSize)
	for {
		select {
		case <-t.C:
		case <-l.full:
		case c := <-l.writers:
			spare = l.flush(spare) // what came before, to the writer it came to
			l.w = c.w
			close(c.done) // the caller may close the previous writer
			continue
		case <-l.closed:
			spare = l.flush(spare)
			return
		}
		spare = l.flush(spare)
	}
}

// SetWriter makes the log write to w from now on, as nginx's reopen of its logs on
// USR1: the lines of requests that ended before the call are written to the previous
// writer first, in whole batches, and no later line goes there, so the caller may
// close it once SetWriter returns. It reports false, and w is not used, when the log
// is closed.
func (l *AccessLog) SetWriter(w io.Writer) bool {
	c := writerChange{w: w, done: make(chan struct{})}
	select {
	case l.writers <- c:
		<-c.done
		return true
	case <-l.done:
		return false
	}
}

// flush swaps the batch for spare, writes it, and returns it emptied as the next
// spare.
func (l *AccessLog) flush(spare []byte) []byte {
	l.mu.Lock()
	b := l.batch
	l.batch = spare
	l.mu.Unlock()
	if len(b) > 0 {
		_, _ = l.w.Write(b)
	}
	if cap(b) > 4*batchSize { // a burst grew it: do not keep it
		b = make([]byte, 0, batchSize)
	}
	return b[:0]
}

// Close writes what waits and stops the writer. Lines sent later are dropped.
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
	proto    string
	status   int
	backend  string // "" when no backend answered
	pool     string // "" when the proxy answered itself
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
		b = append(b, `,"protocol":`...)
		b = appendQuoted(b, []byte(e.proto))
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(e.status), 10)
		b = append(b, `,"backend":`...)
		b = appendQuoted(b, []byte(e.backend))
		b = append(b, `,"pool":`...)
		b = appendQuoted(b, []byte(e.pool))
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
		b = append(b, " protocol="...)
		if e.proto == "" { // a head refused before it was read whole
			b = append(b, '-')
		} else {
			b = append(b, e.proto...)
		}
		b = append(b, " status="...)
		b = strconv.AppendInt(b, int64(e.status), 10)
		b = append(b, " backend="...)
		if e.backend == "" {
			b = append(b, '-')
		} else {
			b = append(b, e.backend...)
		}
		b = append(b, " pool="...)
		if e.pool == "" {
			b = append(b, '-')
		} else {
			b = append(b, e.pool...)
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
	case <-l.closed: // too late: nothing writes it any more
		lineBufs.Put(bp)
		return
	default:
	}
	l.mu.Lock()
	l.batch = append(l.batch, b...)
	full := len(l.batch) >= batchSize
	l.mu.Unlock()
	lineBufs.Put(bp)
	if full {
		select {
		case l.full <- struct{}{}:
		default: // the writer knows already
		}
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

// Entry is one request's access-log line.
type Entry struct {
	Start                time.Time
	Client, Method, Path []byte
	Proto                string // the client's protocol: "HTTP/1.1", "HTTP/2.0"
	Status               int
	Backend              string // "" when the proxy answered itself
	Pool                 string // the route's pool, "" when a route (or none) had the proxy answer
	In, Out              int64  // body bytes received from the client, sent to it
	Duration             time.Duration
	Attempts             int
}

// Record writes e's line; it takes no lock on the request path.
func (l *AccessLog) Record(e *Entry) {
	l.write(&entry{start: e.Start, client: e.Client, method: e.Method, path: e.Path, proto: e.Proto, status: e.Status,
		backend: e.Backend, pool: e.Pool, in: e.In, out: e.Out, duration: e.Duration, attempts: e.Attempts})
}
