package sdk

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/switchyard-lb/switchyard/sdk/wire"
)

// session serves the pick channel in a plugin process: one goroutine reads the core's
// messages in order, calls the strategy, and writes the answers back in batches.
type session struct {
	s Strategy
	// mu serializes the strategy's calls across the sessions of one plugin process
	// (the core's and its data-plane processes'): the strategy sees one caller at a
	// time, as documented.
	mu        *sync.Mutex
	observer  Observer  // nil when s does not observe
	scheduler Scheduler // nil when s does not schedule
	headers   []string
	pool      string // Request.Pool of every pick: the core said it once, at Start

	tables  [4]table // recent versions, by version % 4
	view    []Backend
	index   []int // view[i] is table entry index[i]
	req     Request
	out     []byte
	scratch []byte
}

// table is one version of the candidate backends.
type table struct {
	version  uint32
	backends []Backend
	valid    bool
}

// newSession serves s for the pool the core named at Start ("" from a core older
// than pools).
func newSession(s Strategy, mu *sync.Mutex, pool string) *session {
	ss := &session{s: s, mu: mu, pool: pool}
	ss.observer, _ = s.(Observer)
	ss.scheduler, _ = s.(Scheduler)
	if h, ok := s.(Headerer); ok {
		ss.headers = h.Headers()
		ss.req.Headers = make(map[string]string, len(ss.headers))
	}
	return ss
}

// another returns a session of the same strategy for one more pick channel, with
// the headers it asked for once and the same pool: a plugin process serves one.
func (ss *session) another() *session {
	next := &session{s: ss.s, mu: ss.mu, observer: ss.observer, scheduler: ss.scheduler, headers: ss.headers, pool: ss.pool}
	if _, ok := ss.s.(Headerer); ok {
		next.req.Headers = make(map[string]string, len(ss.headers))
	}
	return next
}

// serve handles messages until conn fails or closes.
func (ss *session) serve(conn net.Conn) error {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		kind, payload, buf, err := wire.ReadMessage(br, ss.scratch)
		ss.scratch = buf
		if err != nil {
			return err
		}
		ss.mu.Lock()
		err = ss.handle(kind, payload)
		ss.mu.Unlock()
		if err != nil {
			return err
		}
		// Answer what is done once nothing more is waiting: picks that arrived
		// together leave together, and none waits for a batch to fill.
		if br.Buffered() == 0 && len(ss.out) > 0 {
			if _, err := conn.Write(ss.out); err != nil {
				return err
			}
			ss.out = ss.out[:0]
		}
	}
}

// handle applies one message from the core.
func (ss *session) handle(kind byte, payload []byte) error {
	r := wire.NewReader(payload)
	switch kind {
	case wire.KindTable:
		ss.readTable(r)
	case wire.KindFigures:
		ss.readFigures(r)
	case wire.KindPick:
		ss.pick(r)
	case wire.KindOutcome:
		ss.outcome(r)
	case wire.KindSchedule:
		ss.schedule(r)
	default:
		return fmt.Errorf("%w: kind %d", wire.ErrCorrupt, kind)
	}
	return r.Err()
}

func (ss *session) readTable(r *wire.Reader) {
	version := r.Uint32()
	t := &ss.tables[version%uint32(len(ss.tables))]
	t.version, t.valid = version, true
	n := int(r.Uint16())
	t.backends = t.backends[:0]
	for range n {
		url, weight, f := string(r.Bytes()), int(r.Uint32()), r.Figures()
		b := Backend{URL: url, Weight: weight}
		setFigures(&b, f)
		t.backends = append(t.backends, b)
	}
}

func (ss *session) readFigures(r *wire.Reader) {
	t := ss.table(r.Uint32())
	n := int(r.Uint16())
	for i := range n {
		f := r.Figures()
		if t != nil && i < len(t.backends) {
			setFigures(&t.backends[i], f)
		}
	}
}

func setFigures(b *Backend, f wire.Figures) {
	b.Inflight, b.QueueLength = int(f.Inflight), int(f.QueueLength)
	b.Latency = time.Duration(f.LatencyUs) * time.Microsecond
	b.ErrorRate = float64(f.ErrorPPM) / 1e6
}

// table returns the table of version, nil when it is not known.
func (ss *session) table(version uint32) *table {
	t := &ss.tables[version%uint32(len(ss.tables))]
	if !t.valid || t.version != version {
		return nil
	}
	return t
}

// pick answers one Pick message.
func (ss *session) pick(r *wire.Reader) {
	id, version := r.Uint32(), r.Uint32()
	var exclude [256]bool
	for range int(r.Uint8()) {
		if i := r.Uint16(); int(i) < len(exclude) {
			exclude[i] = true
		}
	}
	// The strings are the strategy's to keep: each is copied, unless it is the same
	// as the last request's (a method, a host, a client repeat), which costs nothing.
	reuse(&ss.req.Method, r.Bytes())
	reuse(&ss.req.Host, r.Bytes())
	reuse(&ss.req.Path, r.Bytes())
	reuse(&ss.req.RemoteAddr, r.Bytes())
	ss.req.Pool = ss.pool // not on the wire: see StartRequest.pool
	nh := int(r.Uint8())
	for i := range nh {
		v := r.Bytes()
		if i < len(ss.headers) {
			old := ss.req.Headers[ss.headers[i]]
			reuse(&old, v)
			ss.req.Headers[ss.headers[i]] = old
		}
	}
	if r.Err() != nil {
		return
	}
	t := ss.table(version)
	if t == nil {
		ss.answer(id, wire.PickBad, fmt.Sprintf("strategy: unknown backend table version %d", version))
		return
	}
	ss.view, ss.index = ss.view[:0], ss.index[:0]
	for i := range t.backends {
		if i >= len(exclude) || !exclude[i] {
			ss.view = append(ss.view, t.backends[i])
			ss.index = append(ss.index, i)
		}
	}
	if len(ss.view) == 0 {
		ss.answer(id, wire.PickDeclined, "strategy: every backend was excluded")
		return
	}
	i, err := ss.call()
	var p panicked
	var bad badPick
	switch {
	case errors.As(err, &bad):
		ss.answer(id, wire.PickBad, string(bad))
	case errors.As(err, &p):
		ss.answer(id, wire.PickBad, "strategy: Pick panicked: "+string(p))
	case err != nil:
		ss.answer(id, wire.PickDeclined, err.Error())
	case i < 0 || i >= len(ss.view):
		ss.answer(id, wire.PickBad, fmt.Sprintf("strategy: Pick returned index %d for %d backends", i, len(ss.view)))
	default:
		// Picks in one batch see the ones before them.
		t.backends[ss.index[i]].Inflight++
		ss.answer(id, int32(ss.index[i]), "")
	}
}

// panicked is the error of a Pick that panicked, with the panic's value.
type panicked string

func (p panicked) Error() string { return string(p) }

// badPick is the error of a Pick that panicked with a value saying why its answer is
// bad (see badAnswer): reported in those words, not as a panic.
type badPick string

func (b badPick) Error() string { return string(b) }

// badAnswer is a panic value that explains a bad answer itself, as a script
// strategy's does for a pick that returned no valid index.
type badAnswer interface{ BadAnswer() string }

// call runs the strategy's Pick; a panic becomes a bad answer (the core takes its
// built-in pick for that request and logs why), not a dead plugin.
func (ss *session) call() (i int, err error) {
	defer func() {
		if p := recover(); p != nil {
			if b, ok := p.(badAnswer); ok {
				i, err = -2, badPick(b.BadAnswer())
				return
			}
			i, err = -2, panicked(fmt.Sprint(p))
		}
	}()
	return ss.s.Pick(&ss.req, ss.view)
}

// schedule answers one Schedule message.
func (ss *session) schedule(r *wire.Reader) {
	version := r.Uint32()
	if r.Err() != nil {
		return
	}
	ans := wire.Scheduled{Version: version, Result: wire.ScheduleBad}
	t := ss.table(version)
	switch {
	case ss.scheduler == nil: // a core that read the start answer never asks
		ans.Result, ans.Err = wire.ScheduleDeclined, "strategy: not an sdk.Scheduler"
	case t == nil:
		ans.Err = fmt.Sprintf("strategy: unknown backend table version %d", version)
	default:
		ss.view = append(ss.view[:0], t.backends...) // the strategy's to scribble on
		sc, err := ss.callSchedule()
		ans.Result, ans.Err = checkSchedule(sc, len(t.backends), err)
		if ans.Result == wire.ScheduleOK {
			ans.Least, ans.Order = sc.Least, sc.Order
		}
	}
	ss.out = wire.AppendScheduled(ss.out, ans)
}

// checkSchedule judges the strategy's answer to Schedule over n backends.
func checkSchedule(sc Schedule, n int, err error) (result uint8, errMsg string) {
	var p panicked
	switch {
	case errors.As(err, &p):
		return wire.ScheduleBad, "strategy: Schedule panicked: " + string(p)
	case err != nil:
		return wire.ScheduleDeclined, err.Error()
	case len(sc.Order) > MaxOrder:
		return wire.ScheduleDeclined, fmt.Sprintf("strategy: Schedule returned %d entries, more than %d", len(sc.Order), MaxOrder)
	}
	for _, i := range sc.Order {
		if i < 0 || i >= n {
			return wire.ScheduleBad, fmt.Sprintf("strategy: Schedule returned index %d for %d backends", i, n)
		}
	}
	return wire.ScheduleOK, ""
}

// callSchedule runs the strategy's Schedule over ss.view; a panic becomes a bad
// answer, as in call.
func (ss *session) callSchedule() (sc Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicked(fmt.Sprint(p))
		}
	}()
	return ss.scheduler.Schedule(ss.view)
}

// reuse sets *s to b's content: kept when it is the same, copied when not.
func reuse(s *string, b []byte) {
	if *s != string(b) { // compiled without allocating
		*s = string(b)
	}
}

func (ss *session) answer(id uint32, index int32, errMsg string) {
	buf, at := wire.Begin(ss.out, wire.KindPicked)
	buf = append(buf, byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
	buf = append(buf, byte(index), byte(index>>8), byte(index>>16), byte(index>>24))
	buf = wire.AppendString(buf, errMsg)
	ss.out = wire.End(buf, at)
}

// outcome hands one request's result to an observing strategy.
func (ss *session) outcome(r *wire.Reader) {
	o := Outcome{URL: string(r.Bytes()), Status: int(r.Uint16())}
	o.Latency = time.Duration(r.Uint32()) * time.Microsecond
	o.Err = string(r.Bytes())
	if ss.observer != nil && r.Err() == nil {
		ss.observer.Observe(o)
	}
}
