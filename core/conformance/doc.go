// Package conformance is the project's conformance check: one table of raw-byte
// cases (requests and backend answers: framing, smuggling shapes, 1xx, bare LF,
// Connection tokens, Upgrade, HEAD, trailers, absolute form) that runs against every
// front, the event loop (package engine) and the net/http server (package nethttp),
// which must give the same answer to the same bytes (DESIGN section 10.3). It has
// no code of its own: the table is its test.
package conformance
