package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
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
