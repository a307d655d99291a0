package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	f := Figures{Inflight: 3, QueueLength: -1, LatencyUs: 1500, ErrorPPM: 250000}
	buf, at := Begin(nil, KindTable)
	buf = binary.LittleEndian.AppendUint32(buf, 7)
	buf = AppendString(buf, "http://a:1")
	buf = AppendFigures(buf, f)
	buf = End(buf, at)
	buf, at = Begin(buf, KindPicked)
	buf = AppendString(buf, []byte("second"))
	buf = End(buf, at)

	r := bytes.NewReader(buf)
	kind, payload, _, err := ReadMessage(r, nil)
	if err != nil || kind != KindTable {
		t.Fatalf("ReadMessage = %d, %v, want a table", kind, err)
	}
	d := NewReader(payload)
	if v, s, got := d.Uint32(), string(d.Bytes()), d.Figures(); v != 7 || s != "http://a:1" || got != f || d.Err() != nil {
		t.Errorf("decoded %d %q %+v (%v), want 7 http://a:1 %+v", v, s, got, d.Err(), f)
	}
	kind, payload, _, err = ReadMessage(r, nil)
	if err != nil || kind != KindPicked || string(NewReader(payload).Bytes()) != "second" {
		t.Errorf("second message = %d %q %v", kind, payload, err)
	}
	if _, _, _, err := ReadMessage(r, nil); err != io.EOF {
		t.Errorf("after the last message: %v, want io.EOF", err)
	}
}

func TestCorrupt(t *testing.T) {
	huge := binary.LittleEndian.AppendUint32(nil, MaxMessage+1)
	if _, _, _, err := ReadMessage(bytes.NewReader(huge), nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("oversized length: %v, want ErrCorrupt", err)
	}
	d := NewReader([]byte{1, 2})
	if d.Uint32() != 0 || !errors.Is(d.Err(), ErrCorrupt) || d.Uint8() != 0 {
		t.Errorf("short payload: want zero values and ErrCorrupt, got %v", d.Err())
	}
}

func TestScheduledRoundTrip(t *testing.T) {
	for _, want := range []Scheduled{
		{Version: 9, Result: ScheduleOK, Least: true, Order: []int{2, 0, 65535}},
		{Version: 10, Result: ScheduleOK}, // empty: every backend in turn
		{Version: 11, Result: ScheduleDeclined, Err: "no schedule today"},
	} {
		buf := AppendSchedule(nil, want.Version)
		buf = AppendScheduled(buf, want)
		r := bytes.NewReader(buf)
		kind, payload, _, err := ReadMessage(r, nil)
		if err != nil || kind != KindSchedule || NewReader(payload).Uint32() != want.Version {
			t.Fatalf("Schedule message = %d %v, want version %d", kind, err, want.Version)
		}
		kind, payload, _, err = ReadMessage(r, nil)
		if err != nil || kind != KindScheduled {
			t.Fatalf("Scheduled message = %d, %v", kind, err)
		}
		d := NewReader(payload)
		got := d.Scheduled()
		if d.Err() != nil || got.Version != want.Version || got.Result != want.Result || got.Least != want.Least ||
			fmt.Sprint(got.Order) != fmt.Sprint(want.Order) || got.Err != want.Err {
			t.Errorf("decoded %+v (%v), want %+v", got, d.Err(), want)
		}
	}
}

func TestScheduledCorruptCount(t *testing.T) {
	buf := AppendScheduled(nil, Scheduled{Order: []int{1, 2}})
	binary.LittleEndian.PutUint32(buf[4+1+4+2:], 1<<30) // n far beyond the payload
	_, payload, _, err := ReadMessage(bytes.NewReader(buf), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := NewReader(payload)
	if got := d.Scheduled(); !errors.Is(d.Err(), ErrCorrupt) || got.Order != nil {
		t.Errorf("Scheduled with a count of 2^30 = %+v, %v; want ErrCorrupt and nothing allocated", got, d.Err())
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var b bytes.Buffer
	for _, p := range []string{`{"kind":"start"}`, ""} {
		if err := WriteFrame(&b, []byte(p)); err != nil {
			t.Fatalf("WriteFrame(%q) = %v", p, err)
		}
	}
	if got, want := b.Bytes()[:4], []byte{16, 0, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("header of a 16-byte frame = %v, want %v (little-endian)", got, want)
	}
	r := bytes.NewReader(b.Bytes())
	scratch := make([]byte, 0, 64)
	for _, want := range []string{`{"kind":"start"}`, ""} {
		got, err := ReadFrame(r, scratch, 1024)
		if err != nil || string(got) != want {
			t.Errorf("ReadFrame = %q, %v, want %q", got, err, want)
		}
	}
	if _, err := ReadFrame(r, nil, 1024); err != io.EOF {
		t.Errorf("ReadFrame after the last frame = %v, want io.EOF", err)
	}
}

func TestFrameBounds(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFrame(&b, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFrame(bytes.NewReader(b.Bytes()), nil, 99); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadFrame(100 bytes, max 99) = %v, want ErrCorrupt", err)
	}
	if _, err := ReadFrame(bytes.NewReader(b.Bytes()[:50]), nil, 100); err != io.ErrUnexpectedEOF {
		t.Errorf("ReadFrame(frame cut short) = %v, want io.ErrUnexpectedEOF", err)
	}
	// A message is a frame: what WriteFrame writes, ReadMessage reads.
	b.Reset()
	if err := WriteFrame(&b, []byte{KindPicked, 'x'}); err != nil {
		t.Fatal(err)
	}
	if kind, payload, _, err := ReadMessage(&b, nil); err != nil || kind != KindPicked || string(payload) != "x" {
		t.Errorf("ReadMessage(WriteFrame(picked x)) = %d %q %v", kind, payload, err)
	}
	if _, _, _, err := ReadMessage(bytes.NewReader([]byte{0, 0, 0, 0}), nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadMessage(empty frame) = %v, want ErrCorrupt", err)
	}
}
