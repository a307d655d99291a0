// Package wire is the pick channel between the core and a strategy plugin: binary,
// length-prefixed messages over one Unix socket, many to a write. The core and the
// sdk use it; plugin authors never do.
//
// Every message is a frame (a little-endian uint32 length, then that many bytes: see
// WriteFrame and ReadFrame) holding a one-byte kind and the kind's payload. Strings
// are a uint16 length and the bytes. The core frames its control channel to its
// data-plane processes the same way, with WriteFrame and ReadFrame.
//
// Core to plugin:
//   - Table: the candidate backends of one version (identity, weight, figures).
//   - Figures: the live figures of a version's backends, sent once per batch that
//     holds picks or schedule requests.
//   - Pick: one request to place on a version's backends, minus excluded ones. It
//     does not carry the request's pool: a plugin process serves one pool, which
//     the core names once when it starts the plugin (StartRequest.pool in
//     sdk/proto), so no pick pays for it and this layout is as it was before pools.
//   - Outcome: one request's result, for strategies that observe.
//   - Schedule: a request for the schedule of a version's backends. Sent only to a
//     plugin whose start answer announced schedules (sdk.Scheduler); others never
//     see this kind.
//
// Plugin to core:
//   - Picked: the answer to one Pick: an index into the version's table, or an error.
//   - Scheduled: the answer to one Schedule.
package wire

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
)

// Message kinds.
const (
	KindTable   byte = 1
	KindFigures byte = 2
	KindPick    byte = 3
	KindOutcome byte = 4
	KindPicked  byte = 5
	// KindSchedule and KindScheduled are sent only when the plugin announced
	// schedules at start.
	KindSchedule  byte = 6
	KindScheduled byte = 7
)

// Picked indexes that are not backends.
const (
	PickDeclined int32 = -1 // the strategy declined the request: the client gets 503
	PickBad      int32 = -2 // the strategy failed (a panic, an unknown table version)
)

// Results of a Scheduled answer.
const (
	ScheduleOK       uint8 = 0 // Order and Least hold the schedule
	ScheduleDeclined uint8 = 1 // the strategy declined: ask it for each pick
	ScheduleBad      uint8 = 2 // the strategy failed or answered nonsense
)

// MaxMessage bounds one message, so a corrupt length cannot exhaust memory.
const MaxMessage = 1 << 20

// ErrCorrupt means a message could not be decoded.
var ErrCorrupt = errors.New("wire: corrupt message")

// Figures are a backend's live numbers.
type Figures struct {
	Inflight    int32
	QueueLength int32 // -1 when unknown
	LatencyUs   uint32
	ErrorPPM    uint32 // error rate in millionths
}

// Entry is one backend of a Table.
type Entry struct {
	URL    string
	Weight uint32
	Figures
}

// Scheduled is the answer to a Schedule message.
type Scheduled struct {
	Version uint32 // of the table the schedule is for
	Result  uint8  // ScheduleOK, ScheduleDeclined or ScheduleBad
	Least   bool
	Order   []int // indexes into the table, each below 65536
	Err     string
}

// Begin starts a message of kind in buf, returning where its length goes.
func Begin(buf []byte, kind byte) ([]byte, int) {
	buf, at := beginFrame(buf)
	return append(buf, kind), at
}

// End writes the length of the message begun at at.
func End(buf []byte, at int) []byte { return endFrame(buf, at) }

// AppendString appends a uint16-length-prefixed string (cut at 65535 bytes).
func AppendString[S string | []byte](buf []byte, s S) []byte {
	n := min(len(s), math.MaxUint16)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(n))
	return append(buf, s[:n]...)
}

// AppendFigures appends f.
func AppendFigures(buf []byte, f Figures) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(f.Inflight))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(f.QueueLength))
	buf = binary.LittleEndian.AppendUint32(buf, f.LatencyUs)
	return binary.LittleEndian.AppendUint32(buf, f.ErrorPPM)
}

// AppendSchedule appends a Schedule message for the table of version.
func AppendSchedule(buf []byte, version uint32) []byte {
	buf, at := Begin(buf, KindSchedule)
	buf = binary.LittleEndian.AppendUint32(buf, version)
	return End(buf, at)
}

// AppendScheduled appends a Scheduled message.
func AppendScheduled(buf []byte, s Scheduled) []byte {
	buf, at := Begin(buf, KindScheduled)
	buf = binary.LittleEndian.AppendUint32(buf, s.Version)
	least := byte(0)
	if s.Least {
		least = 1
	}
	buf = append(buf, s.Result, least)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s.Order)))
	for _, i := range s.Order {
		buf = binary.LittleEndian.AppendUint16(buf, uint16(i))
	}
	buf = AppendString(buf, s.Err)
	return End(buf, at)
}

// ReadMessage reads one message into buf (grown as needed), returning its kind and
// payload (which aliases buf).
func ReadMessage(r io.Reader, buf []byte) (kind byte, payload, grown []byte, err error) {
	frame, err := ReadFrame(r, buf, MaxMessage)
	if err != nil {
		return 0, nil, buf, err
	}
	if len(frame) < 1 { // no room for the kind
		return 0, nil, buf, ErrCorrupt
	}
	return frame[0], frame[1:], frame, nil
}

// Reader decodes a payload field by field. After a short payload every read
// returns zero values and Err reports ErrCorrupt.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads payload.
func NewReader(payload []byte) *Reader { return &Reader{b: payload} }

// Err is ErrCorrupt if any read ran past the payload.
func (r *Reader) Err() error { return r.err }

func (r *Reader) take(n int) []byte {
	if len(r.b) < n {
		r.err, r.b = ErrCorrupt, nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// Uint8 reads a byte.
func (r *Reader) Uint8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

// Uint16 reads a uint16.
func (r *Reader) Uint16() uint16 {
	if b := r.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

// Uint32 reads a uint32.
func (r *Reader) Uint32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// Bytes reads a string as bytes aliasing the payload.
func (r *Reader) Bytes() []byte { return r.take(int(r.Uint16())) }

// Figures reads a Figures.
func (r *Reader) Figures() Figures {
	return Figures{Inflight: int32(r.Uint32()), QueueLength: int32(r.Uint32()), LatencyUs: r.Uint32(), ErrorPPM: r.Uint32()}
}

// Scheduled reads a Scheduled payload; Order is newly allocated.
func (r *Reader) Scheduled() Scheduled {
	s := Scheduled{Version: r.Uint32(), Result: r.Uint8(), Least: r.Uint8() == 1}
	n := int(r.Uint32())
	if n > len(r.b)/2 { // each entry takes two bytes: a corrupt count
		r.err, r.b = ErrCorrupt, nil
		return Scheduled{}
	}
	if n > 0 {
		s.Order = make([]int, n)
		for i := range s.Order {
			s.Order[i] = int(r.Uint16())
		}
	}
	s.Err = string(r.Bytes())
	return s
}

// Layouts of the payloads (after the kind byte):
//
//	Table:     version u32, n u16, n × (url string, weight u32, Figures)
//	Figures:   version u32, n u16, n × Figures
//	Pick:      id u32, version u32, nexclude u8, nexclude × index u16,
//	           method, host, path, remote string, nheaders u8, nheaders × value string
//	Outcome:   url string, status u16, latency_us u32, err string
//	Picked:    id u32, index i32 (PickDeclined or PickBad with an error), err string
//	Schedule:  version u32
//	Scheduled: version u32, result u8, least u8, n u32, n × index u16, err string
//
// Figures are inflight i32, queue_length i32, latency_us u32, error_ppm u32.
