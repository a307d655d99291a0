package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/switchyard-lb/switchyard/core/strategy"
	sdkwire "github.com/switchyard-lb/switchyard/sdk/wire"
)

func TestRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	want := []*Message{
		{Kind: KindStart, Index: 1, Ledger: 2, Config: json.RawMessage(`{"load_balancer":{}}`), Path: "/etc/config.json", Gen: 9,
			Backends: []Backend{{Pool: "api", URL: "http://a:1", Key: "http://a:1", Weight: 3, Slot: 4, Epoch: 5, Candidate: true}},
			Pools: []Pool{{Name: "api", Retries: 1, Counters: 6,
				Plugin: &Plugin{Name: "leastconn", Endpoint: &strategy.Endpoint{Socket: "/run/s.sock", Pool: "api"}}}},
			Log: &Log{Level: "debug", JSON: true}},
		{Kind: KindAnswer, ID: 7, Body: []byte(`{"ok": true}`)},
		{Kind: KindStop, GraceMS: 1500},
	}
	go func() {
		c := NewConn(a)
		for _, m := range want {
			if err := c.Send(m); err != nil {
				t.Errorf("Send(%s) = %v", m.Kind, err)
			}
		}
		a.Close()
	}()
	c := NewConn(b)
	for _, w := range want {
		got, err := c.Receive()
		if err != nil {
			t.Fatalf("Receive = %v, want %s", err, w.Kind)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(w)
		if !bytes.Equal(gj, wj) {
			t.Errorf("Receive = %s, want %s", gj, wj)
		}
	}
	if _, err := c.Receive(); err != io.EOF {
		t.Errorf("Receive after the other end closed = %v, want io.EOF", err)
	}
}

// TestFraming checks that a message is one frame of the pick channel's framing:
// a little-endian length, then the JSON object.
func TestFraming(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go func() { _ = NewConn(a).Send(&Message{Kind: KindReopen}) }()
	body, err := sdkwire.ReadFrame(b, nil, MaxMessage)
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil || m.Kind != KindReopen {
		t.Errorf("frame %q = %+v, %v, want a reopen message", body, m, err)
	}
}

func TestRefusesOversizedMessage(t *testing.T) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go func() { _, _ = a.Write(binary.LittleEndian.AppendUint32(nil, MaxMessage+1)) }()
	if _, err := NewConn(b).Receive(); !errors.Is(err, sdkwire.ErrCorrupt) {
		t.Errorf("Receive(length %d) = %v, want ErrCorrupt", MaxMessage+1, err)
	}
}
