//go:build linux || darwin || freebsd || netbsd || openbsd

package plane

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/plane/wire"
)

// outcomes is a data-plane process's passive check: failures in a row are counted in
// the shared segment, so the threshold holds across processes; the process that sees
// it crossed asks the control plane to eject the backend.
type outcomes struct {
	conn      *wire.Conn
	threshold atomic.Int64 // the top level's, for a pool the control plane has not described
	// pools holds each pool's threshold (health_check.passive.consecutive_failures,
	// with a pool's own over the top level's), by name.
	pools atomic.Pointer[map[string]int64]
	keys  int // the most backends remembered in reported: the segment's slots

	errors chan *wire.Message // failures to tell of, in order, by one goroutine

	mu       sync.Mutex
	reported map[string]errorReport // the last error told of each backend, by key
}

// newOutcomes counts failures in a row up to threshold and tells conn's control plane;
// it remembers what it told of keys backends at most.
func newOutcomes(conn *wire.Conn, threshold, keys int) *outcomes {
	o := &outcomes{conn: conn, keys: keys, errors: make(chan *wire.Message, 256)}
	o.threshold.Store(int64(threshold))
	go func() {
		for m := range o.errors {
			_ = o.conn.Send(m)
		}
	}()
	return o
}

// errorReport is a backend's last error told to the control plane, and when.
type errorReport struct {
	err string
	at  time.Time
}

// How often a data-plane process tells the control plane of one backend's failures,
// for its last_error: at most every reportChanged when the error's text changes, and
// every reportEvery while it does not.
const (
	reportChanged = 50 * time.Millisecond
	reportEvery   = time.Second
)

// Observe records one request's result on b. The control plane, which shows each
// backend's last_error, hears of a failure when its text differs from the last one
// told, and once a second while the same one repeats; an ejection always, after the
// failures told before it.
func (o *outcomes) Observe(b *backend.Backend, failed bool, errMsg string) {
	if !failed {
		b.AddSuccess()
		return
	}
	t := o.threshold.Load()
	if m := o.pools.Load(); m != nil {
		if pt, ok := (*m)[b.Pool]; ok {
			t = pt
		}
	}
	key := backend.SlotKey(b.Pool, b.Key)
	if int64(b.AddFailure("")) == t && t > 0 {
		m := &wire.Message{Kind: wire.KindEject, Pool: b.Pool, Key: b.Key, Error: errMsg}
		go func() { o.errors <- m }() // never dropped; behind the failures queued before
		o.report(key, errMsg, true)
		return
	}
	if errMsg != "" && o.report(key, errMsg, false) {
		select {
		case o.errors <- &wire.Message{Kind: wire.KindError, Pool: b.Pool, Key: b.Key, Error: errMsg}:
		default: // the control plane is behind: last_error can wait for the next one
		}
	}
}

// setPools records each pool's threshold.
func (o *outcomes) setPools(list []wire.Pool) {
	m := make(map[string]int64, len(list))
	for _, p := range list {
		m[p.Name] = int64(p.Passive)
	}
	o.pools.Store(&m)
}

// report decides whether the control plane is told of errMsg on the backend with
// key (its slot key) now (always when told is true), and records it when so.
func (o *outcomes) report(key, errMsg string, told bool) bool {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	last, ok := o.reported[key]
	since := now.Sub(last.at)
	if !told && ok && (last.err == errMsg || since < reportChanged) && since < reportEvery {
		return false
	}
	if o.reported == nil || len(o.reported) >= o.keys { // backends gone since
		o.reported = map[string]errorReport{}
	}
	o.reported[key] = errorReport{err: errMsg, at: now}
	return true
}

// Interface guards
var _ exchange.OutcomeObserver = (*outcomes)(nil)
