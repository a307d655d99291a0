package strategy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/sdk"
	"github.com/switchyard-lb/switchyard/sdk/wire"
)

// errChannelDown means the pick channel is closed: the plugin crashed or was stopped.
var errChannelDown = errors.New("strategy: pick channel closed")

// channel is the core's end of one plugin process's pick channel. Callers append
// their messages to a shared buffer and wait; one writer sends whatever has gathered
// in one write; one reader hands each answer to its caller.
//
// Batches are clocked by answers: while picks sent are unanswered, new ones gather
// rather than go out one by one. A lone pick goes at once (nothing is waiting on
// the plugin); under load, a batch holds every pick that arrived while the plugin
// worked on the previous one. No timer holds a batch back to fill it.
//
// A plugin that schedules (sdk.Scheduler) is asked for a schedule once per candidate
// set, on the same channel; picks walk it without a message (see schedule).
//
// channel is safe for use by multiple goroutines.
type channel struct {
	conn      net.Conn
	sock      string   // the plugin's socket, where more channels may connect
	headers   []string // request headers the strategy wants, in order
	observes  bool
	schedules bool
	plans     schedules // changed under mu

	mu      sync.Mutex
	out     []byte // messages not yet sent; guarded by mu
	spare   []byte // the writer's other buffer; guarded by mu
	calls   map[uint32]*call
	nextID  uint32
	version uint32             // of the table last sent
	cands   []*backend.Backend // that table
	weights []int              // the weights it gave
	queued  int                // picks and schedule requests in out
	waiting int                // picks and schedule requests sent and not yet answered
	picks   uint64             // Pick messages sent

	tick     uint32        // sweeps so far; guarded by mu
	kick     chan struct{} // wakes the writer; capacity 1
	dead     chan struct{} // closed when the channel fails
	deadOnce sync.Once
	err      error // why it failed, once dead is closed

	lastAnswer atomic.Int64 // unix nanoseconds
}

// call is one pick waiting for its answer.
type call struct {
	id   uint32
	tick uint32      // the channel's tick when it was sent
	ch   chan answer // capacity 1
	// done, when set, takes the answer instead of ch: the caller does not wait.
	done func(answer)
}

// deliver hands a its call's caller. c.mu must not be held: done may take locks.
func (cl *call) deliver(a answer) {
	if cl.done != nil {
		cl.done(a)
		return
	}
	cl.ch <- a
}

// answer is the plugin's reply to one pick.
type answer struct {
	index int32 // into the table, wire.PickDeclined, wire.PickBad, or answerLate
	err   string
}

// answerLate is the answer of a pick that got none in time; answerDead, of one whose
// channel failed before its answer came.
const (
	answerLate = -3
	answerDead = -4
)

// maxUnsent bounds the outcomes waiting to be sent. A plugin whose picks are all
// walked from its schedule is never found hung by a late pick, so outcomes for it
// must not gather without end.
const maxUnsent = 4 << 20

// ticksPerTimeout is how many sweeps make PickTimeout: a pick is answered late
// after between 4/5 and all of PickTimeout.
const ticksPerTimeout = 5

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan answer, 1)} }}

func newChannel(conn net.Conn, headers []string, observes, schedules bool) *channel {
	c := &channel{
		conn: conn, headers: headers, observes: observes, schedules: schedules,
		calls: map[uint32]*call{}, kick: make(chan struct{}, 1), dead: make(chan struct{}),
	}
	c.lastAnswer.Store(time.Now().UnixNano())
	go c.writeLoop()
	go c.readLoop()
	go c.sweepLoop()
	return c
}

// sweepLoop answers picks that waited PickTimeout "late", so that a caller waits on
// one channel and no pick needs a timer of its own.
func (c *channel) sweepLoop() {
	t := time.NewTicker(PickTimeout / ticksPerTimeout)
	defer t.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-t.C:
		}
		var late []*call
		c.mu.Lock()
		c.tick++
		for id, cl := range c.calls {
			if c.tick-cl.tick >= ticksPerTimeout {
				delete(c.calls, id)
				late = append(late, cl)
			}
		}
		c.mu.Unlock()
		for _, cl := range late {
			cl.deliver(answer{index: answerLate})
		}
	}
}

// die closes the channel for err; waiting picks see dead closed, and the plugin's
// schedule serves no more picks.
func (c *channel) die(err error) {
	c.deadOnce.Do(func() {
		c.err = err
		close(c.dead)
		_ = c.conn.Close()
		var waiting []*call
		c.mu.Lock()
		for _, cl := range c.calls {
			if cl.done != nil { // the others wait on dead
				waiting = append(waiting, cl)
			}
		}
		clear(c.calls)
		c.plans.cur.Store(nil)
		c.mu.Unlock()
		for _, cl := range waiting {
			cl.done(answer{index: answerDead})
		}
	})
}

// send queues a pick for req among cands, minus exclude. It returns the call to wait
// on, or nil when the channel is down. With done set, the answer goes to done, from
// another goroutine, and nobody waits on the call.
func (c *channel) send(req *Request, cands, exclude []*backend.Backend, done func(answer)) *call {
	var cl *call
	if done != nil {
		cl = &call{done: done}
	} else {
		cl = callPool.Get().(*call)
	}
	c.mu.Lock()
	select {
	case <-c.dead:
		c.mu.Unlock()
		if done == nil {
			callPool.Put(cl)
		}
		return nil
	default:
	}
	c.useTable(cands)
	c.nextID++
	cl.id, cl.tick = c.nextID, c.tick
	c.calls[cl.id] = cl
	c.out = c.appendPick(c.out, cl.id, req, cands, exclude)
	c.queued++
	c.picks++
	c.mu.Unlock()
	c.wake()
	return cl
}

// useTable makes cands the table of the messages that follow, sending it when it
// changed. c.mu must be held.
func (c *channel) useTable(cands []*backend.Backend) {
	if sameSet(cands, c.cands) {
		return
	}
	c.version++
	c.cands = cands
	c.weights = make([]int, len(cands))
	c.out = appendTable(c.out, c.version, cands, c.weights)
}

// schedule returns the plugin's schedule for cands when the one in force was not
// made for them (see schedules.miss), nil when the plugin does not schedule or has
// not answered for cands yet; then it asks, once per set.
func (c *channel) schedule(cands []*backend.Backend) *schedule {
	if !c.schedules {
		return nil
	}
	c.mu.Lock()
	select {
	case <-c.dead:
		c.mu.Unlock()
		return nil
	default:
	}
	s, ask := c.plans.miss(cands)
	if ask {
		c.useTable(cands)
		c.plans.seen.add(seenSet{cands: cands, asked: true, weights: c.weights, version: c.version})
		c.out = wire.AppendSchedule(c.out, c.version)
		c.queued++
	}
	c.mu.Unlock()
	if ask {
		c.wake()
	}
	return s
}

// observe queues an outcome for an observing strategy.
func (c *channel) observe(o sdk.Outcome) {
	if !c.observes {
		return
	}
	c.mu.Lock()
	if len(c.out) > maxUnsent { // the plugin stopped reading: drop, rather than hoard
		c.mu.Unlock()
		return
	}
	buf, at := wire.Begin(c.out, wire.KindOutcome)
	buf = wire.AppendString(buf, o.URL)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(o.Status))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(o.Latency/time.Microsecond))
	buf = wire.AppendString(buf, o.Err)
	c.out = wire.End(buf, at)
	c.mu.Unlock()
	c.wake()
}

func (c *channel) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// writeLoop sends what has gathered, preceded by the table's live figures, until the
// channel dies.
func (c *channel) writeLoop() {
	var figures []byte
	for {
		select {
		case <-c.kick:
		case <-c.dead:
			return
		}
		c.mu.Lock()
		if len(c.out) == 0 || c.waiting > 0 { // the reader wakes us when answers are in
			c.mu.Unlock()
			continue
		}
		batch, questions := c.out, c.queued
		c.out, c.spare = c.spare[:0], nil
		c.waiting, c.queued = c.queued, 0
		version, cands := c.version, c.cands
		c.mu.Unlock()
		figures = figures[:0]
		if questions > 0 { // outcomes alone need no figures
			figures = appendFigures(figures, version, cands)
		}
		bufs := net.Buffers{figures, batch}
		_, err := bufs.WriteTo(c.conn)
		c.mu.Lock()
		c.spare = batch[:0]
		c.mu.Unlock()
		if err != nil {
			c.die(err)
			return
		}
	}
}

// readLoop hands each answer to its waiting call, and installs each schedule, until
// the channel dies.
func (c *channel) readLoop() {
	br := bufio.NewReaderSize(c.conn, 64<<10)
	var buf []byte
	for {
		kind, payload, grown, err := wire.ReadMessage(br, buf)
		buf = grown
		if err != nil {
			c.die(err)
			return
		}
		switch kind {
		case wire.KindPicked:
			err = c.picked(wire.NewReader(payload))
		case wire.KindScheduled:
			err = c.scheduled(wire.NewReader(payload))
		default:
			err = wire.ErrCorrupt
		}
		if err != nil {
			c.die(err)
			return
		}
	}
}

// picked hands the answer to one pick to its caller.
func (c *channel) picked(r *wire.Reader) error {
	id, index, msg := r.Uint32(), int32(r.Uint32()), r.Bytes()
	if r.Err() != nil {
		return r.Err()
	}
	c.lastAnswer.Store(time.Now().UnixNano())
	c.mu.Lock()
	cl := c.calls[id]
	delete(c.calls, id)
	next := c.answered()
	c.mu.Unlock()
	if cl != nil {
		cl.deliver(answer{index: index, err: string(msg)})
	}
	if next {
		c.wake()
	}
	return nil
}

// scheduled installs the plugin's schedule for the set it was asked about.
func (c *channel) scheduled(r *wire.Reader) error {
	a := r.Scheduled()
	if r.Err() != nil {
		return r.Err()
	}
	c.lastAnswer.Store(time.Now().UnixNano())
	c.mu.Lock()
	next := c.answered()
	select {
	case <-c.dead: // die has cleared the schedule: keep it clear
	default:
		if set, ok := c.plans.awaited(a.Version); ok {
			c.plans.install(set.cands, planOf(set.weights, a))
		}
	}
	c.mu.Unlock()
	if next {
		c.wake()
	}
	return nil
}

// answered counts one answer in, reporting whether the writer may send what has
// gathered. c.mu must be held.
func (c *channel) answered() bool {
	c.waiting--
	return c.waiting == 0 && len(c.out) > 0
}

// planOf turns the plugin's answer into a plan for candidates with weights.
func planOf(weights []int, a wire.Scheduled) *plan {
	switch a.Result {
	case wire.ScheduleOK:
		return newPlan(weights, a.Order, a.Least, nil)
	case wire.ScheduleDeclined:
		return newPlan(weights, nil, false, errors.New(a.Err))
	}
	return &plan{kind: planInvalid, err: errors.New(a.Err), weights: weights}
}

// sameSet reports whether a and b are the same snapshot slice.
func sameSet(a, b []*backend.Backend) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func figuresOf(b *backend.Backend) wire.Figures {
	return wire.Figures{
		Inflight:    int32(b.Inflight()),
		QueueLength: int32(b.QueueLength()),
		LatencyUs:   uint32(b.Latency() / time.Microsecond),
		ErrorPPM:    uint32(b.ErrorRate() * 1e6),
	}
}

// appendTable encodes the table of cands, noting in weights the weights it gives.
func appendTable(buf []byte, version uint32, cands []*backend.Backend, weights []int) []byte {
	buf, at := wire.Begin(buf, wire.KindTable)
	buf = binary.LittleEndian.AppendUint32(buf, version)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(cands)))
	for i, b := range cands {
		weights[i] = b.Weight()
		buf = wire.AppendString(buf, b.URL)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(weights[i]))
		buf = wire.AppendFigures(buf, figuresOf(b))
	}
	return wire.End(buf, at)
}

func appendFigures(buf []byte, version uint32, cands []*backend.Backend) []byte {
	if version == 0 {
		return buf
	}
	buf, at := wire.Begin(buf, wire.KindFigures)
	buf = binary.LittleEndian.AppendUint32(buf, version)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(cands)))
	for _, b := range cands {
		buf = wire.AppendFigures(buf, figuresOf(b))
	}
	return wire.End(buf, at)
}

// appendPick encodes one pick. c.mu must be held.
func (c *channel) appendPick(buf []byte, id uint32, req *Request, cands, exclude []*backend.Backend) []byte {
	buf, at := wire.Begin(buf, wire.KindPick)
	buf = binary.LittleEndian.AppendUint32(buf, id)
	buf = binary.LittleEndian.AppendUint32(buf, c.version)
	n := 0
	nAt := len(buf)
	buf = append(buf, 0)
	for i, b := range cands {
		if n < 255 && contains(exclude, b) {
			buf = binary.LittleEndian.AppendUint16(buf, uint16(i))
			n++
		}
	}
	buf[nAt] = byte(n)
	buf = wire.AppendString(buf, req.Method)
	buf = wire.AppendString(buf, req.Host)
	buf = wire.AppendString(buf, req.Path)
	buf = wire.AppendString(buf, req.RemoteAddr)
	buf = append(buf, byte(len(c.headers)))
	for _, h := range c.headers {
		var v []byte
		if req.Header != nil {
			v = req.Header.Peek(h)
		}
		buf = wire.AppendString(buf, v)
	}
	return wire.End(buf, at)
}
