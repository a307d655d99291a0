package sdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard-lb/switchyard/sdk/wire"
)

// keeper remembers every path it is asked about, and panics on /panic.
type keeper struct{ paths []string }

func (k *keeper) Pick(req *Request, _ []Backend) (int, error) {
	if req.Path == "/panic" {
		panic("boom at " + req.Path)
	}
	k.paths = append(k.paths, req.Path)
	return 0, nil
}

// feed hands the session messages as the pick channel delivers them: each read
// into one reused buffer.
func feed(t *testing.T, ss *session, msgs []byte) {
	t.Helper()
	r := bytes.NewReader(msgs)
	var scratch []byte
	for r.Len() > 0 {
		kind, payload, grown, err := wire.ReadMessage(r, scratch)
		if err != nil {
			t.Fatal(err)
		}
		scratch = grown
		if err := ss.handle(kind, payload); err != nil {
			t.Fatal(err)
		}
	}
}

// appendTable encodes table version 1: one backend, http://a:1.
func appendTable(buf []byte) []byte {
	buf, at := wire.Begin(buf, wire.KindTable)
	buf = binary.LittleEndian.AppendUint32(buf, 1)
	buf = binary.LittleEndian.AppendUint16(buf, 1)
	buf = wire.AppendString(buf, "http://a:1")
	buf = binary.LittleEndian.AppendUint32(buf, 1)
	buf = wire.AppendFigures(buf, wire.Figures{})
	return wire.End(buf, at)
}

func appendPick(buf []byte, id uint32, path string) []byte {
	buf, at := wire.Begin(buf, wire.KindPick)
	buf = binary.LittleEndian.AppendUint32(buf, id)
	buf = binary.LittleEndian.AppendUint32(buf, 1) // table version
	buf = append(buf, 0)                           // nothing excluded
	for _, s := range []string{"GET", "example.com", path, "127.0.0.1"} {
		buf = wire.AppendString(buf, s)
	}
	buf = append(buf, 0) // no headers
	return wire.End(buf, at)
}

func TestRequestStringsAreTheStrategysToKeep(t *testing.T) {
	k := &keeper{}
	ss := newSession(k, new(sync.Mutex), "")
	msgs := appendTable(nil)
	var want []string
	for i := range 50 {
		path := fmt.Sprintf("/path/%d", i%7) // some repeat, as real paths do
		want = append(want, path)
		msgs = appendPick(msgs, uint32(i), path)
	}
	feed(t, ss, msgs)
	if got := strings.Join(k.paths, " "); got != strings.Join(want, " ") {
		t.Errorf("paths kept by the strategy = %s\nwant %s", got, strings.Join(want, " "))
	}
}

func TestPanickingPickIsReportedWithItsMessage(t *testing.T) {
	ss := newSession(&keeper{}, new(sync.Mutex), "")
	msgs := appendTable(nil)
	feed(t, ss, appendPick(msgs, 7, "/panic"))
	_, payload, _, err := wire.ReadMessage(bytes.NewReader(ss.out), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(payload)
	id, index, msg := r.Uint32(), int32(r.Uint32()), string(r.Bytes())
	if id != 7 || index != -2 || msg != "strategy: Pick panicked: boom at /panic" {
		t.Errorf("answer = id %d, index %d, %q; want 7, -2 (a bad answer) and the panic's message", id, index, msg)
	}
}

// planner answers Schedule with its fields, or panics when told to.
type planner struct {
	keeper
	sched Schedule
	err   error
	boom  bool
}

func (p *planner) Schedule(bs []Backend) (Schedule, error) {
	if p.boom {
		panic(fmt.Sprintf("no plan for %d backends", len(bs)))
	}
	return p.sched, p.err
}

func TestScheduleAnswers(t *testing.T) {
	tests := []struct {
		name string
		s    Strategy
		want wire.Scheduled
	}{
		{"schedule", &planner{sched: Schedule{Order: []int{0, 0}, Least: true}},
			wire.Scheduled{Result: wire.ScheduleOK, Least: true, Order: []int{0, 0}}},
		{"every backend in turn", &planner{}, wire.Scheduled{Result: wire.ScheduleOK}},
		{"declined", &planner{err: errors.New("not today")},
			wire.Scheduled{Result: wire.ScheduleDeclined, Err: "not today"}},
		{"too long", &planner{sched: Schedule{Order: make([]int, MaxOrder+1)}},
			wire.Scheduled{Result: wire.ScheduleDeclined, Err: "strategy: Schedule returned 262145 entries, more than 262144"}},
		{"index out of range", &planner{sched: Schedule{Order: []int{0, 1}}},
			wire.Scheduled{Result: wire.ScheduleBad, Err: "strategy: Schedule returned index 1 for 1 backends"}},
		{"panic", &planner{boom: true},
			wire.Scheduled{Result: wire.ScheduleBad, Err: "strategy: Schedule panicked: no plan for 1 backends"}},
		{"not a Scheduler", &keeper{},
			wire.Scheduled{Result: wire.ScheduleDeclined, Err: "strategy: not an sdk.Scheduler"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := newSession(tt.s, new(sync.Mutex), "")
			feed(t, ss, wire.AppendSchedule(appendTable(nil), 1))
			kind, payload, _, err := wire.ReadMessage(bytes.NewReader(ss.out), nil)
			if err != nil || kind != wire.KindScheduled {
				t.Fatalf("answer = kind %d, %v; want a Scheduled message", kind, err)
			}
			r := wire.NewReader(payload)
			got := r.Scheduled()
			tt.want.Version = 1
			if r.Err() != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("answer = %+v (%v)\nwant %+v", got, r.Err(), tt.want)
			}
		})
	}
}

func TestScheduleOfAnUnknownTable(t *testing.T) {
	ss := newSession(&planner{}, new(sync.Mutex), "")
	feed(t, ss, wire.AppendSchedule(nil, 3))
	_, payload, _, err := wire.ReadMessage(bytes.NewReader(ss.out), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := wire.NewReader(payload).Scheduled(); got.Result != wire.ScheduleBad || got.Err != "strategy: unknown backend table version 3" {
		t.Errorf("answer = %+v, want a bad answer naming version 3", got)
	}
}

// pools remembers the pool of every request it is asked about, then scribbles on
// it: the next pick must not see that.
type pools struct{ seen []string }

func (p *pools) Pick(req *Request, _ []Backend) (int, error) {
	p.seen = append(p.seen, req.Pool)
	req.Pool = "scribbled"
	return 0, nil
}

func TestPickSeesThePoolNamedAtStart(t *testing.T) {
	tests := []struct {
		name, pool string
	}{
		{"a pool of config.json", "api"},
		{"the default pool", "default"},
		{"a core older than pools", ""}, // its Start says no pool, its picks are as ever
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pools{}
			first := newSession(p, new(sync.Mutex), tt.pool)
			// The core's channel and a data-plane process's, to the one process.
			for _, ss := range []*session{first, first.another()} {
				feed(t, ss, appendPick(appendPick(appendTable(nil), 1, "/a"), 2, "/b"))
			}
			want := strings.Repeat(tt.pool+",", 4)
			if got := strings.Join(p.seen, ",") + ","; got != want {
				t.Errorf("Request.Pool of 4 picks on 2 channels = %q, want %q each", p.seen, tt.pool)
			}
		})
	}
}
