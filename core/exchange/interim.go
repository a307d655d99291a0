package exchange

import "errors"

// MaxInterims bounds the informational (1xx) answers a backend may send before its
// final one; every front ends the request with ErrTooManyInterims past it.
const MaxInterims = 16

// ErrTooManyInterims ends a request whose backend sends 1xx answers without end.
var ErrTooManyInterims = errors.New("more than 16 informational (1xx) answers to one request")
