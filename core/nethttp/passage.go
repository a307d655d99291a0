package nethttp

import "github.com/switchyard-lb/switchyard/core/h1"

// passage is what a gate (gate, answerGate) has judged and its reader has not read
// yet, and the body it is passing through: a Content-Length one, or a chunked one as
// h1.Chunked.Forward passes it on.
type passage struct {
	out   []byte // judged bytes, read from pos on
	pos   int
	left  int64 // Content-Length body bytes still to come
	chunk h1.Chunked
}

// waiting reports whether judged bytes wait to be read.
func (q *passage) waiting() bool { return q.pos < len(q.out) }

// drain copies judged bytes into p.
func (q *passage) drain(p []byte) int {
	n := copy(p, q.out[q.pos:])
	q.pos += n
	if q.pos == len(q.out) {
		q.out, q.pos = q.out[:0], 0 // drained: the storage serves the next bytes
	}
	return n
}

// length passes on the part of b that belongs to a Content-Length body; it returns
// what follows, and whether the body ended.
func (q *passage) length(b []byte) (rest []byte, done bool) {
	n := int(min(int64(len(b)), q.left))
	q.out = append(q.out, b[:n]...)
	q.left -= int64(n)
	return b[n:], q.left == 0
}

// chunked passes on the part of b that belongs to a chunked body; it returns what
// follows, whether the body ended, and h1's error for a body framed wrong.
func (q *passage) chunked(b []byte) (rest []byte, done bool, err error) {
	out, n, done, err := q.chunk.Forward(nil, b)
	q.out = append(q.out, out...)
	return b[n:], done, err
}
