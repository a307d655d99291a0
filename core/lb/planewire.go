package lb

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/switchyard-lb/switchyard/core/strategy"
)

// The control channel between the control plane and a data-plane process: a stream
// socket of messages, each a 4-byte big-endian length and a JSON object. Messages are
// rare (a start, a reload, a change of a backend's state, a status request, a log
// rotation), so JSON costs nothing that matters and keeps the channel readable in a
// trace.

// Kinds of planeMsg.
const (
	// control plane to data plane
	msgStart    = "start"    // Index, Ledger, Config, Path, Addr, Shm, Backends, Plugin, Log
	msgConfig   = "config"   // Config, Path: apply between two loop passes
	msgBackends = "backends" // Backends: the set and who takes new requests
	msgPlugin   = "plugin"   // Plugin: where the strategy answers now
	msgStop     = "stop"     // GraceMS: drain, then exit
	msgAnswer   = "answer"   // ID, Body: the status JSON asked for
	msgReopen   = "reopen"   // open the access log's file anew (log rotation)
	// data plane to control plane
	msgReady  = "ready"  // Addr: serving
	msgFailed = "failed" // Error: could not start or apply; the process exits
	msgEject  = "eject"  // Key, Error: the passive check's threshold was crossed
	msgError  = "error"  // Key, Error: a request to the backend failed so
	msgStatus = "status" // ID: the status JSON, please
)

// maxPlaneMsg bounds one message (a start with thousands of discovered backends fits).
const maxPlaneMsg = 64 << 20

// planeMsg is one message of the control channel.
type planeMsg struct {
	Kind     string          `json:"kind"`
	Config   json.RawMessage `json:"config,omitempty"`
	Path     string          `json:"path,omitempty"`
	Addr     string          `json:"addr,omitempty"`
	Shm      string          `json:"shm,omitempty"`
	Backends []planeBackend  `json:"backends,omitempty"`
	Plugin   *planePlugin    `json:"plugin,omitempty"`
	Log      *planeLog       `json:"log,omitempty"`
	Index    int             `json:"index,omitempty"`
	Ledger   int             `json:"ledger"` // start: the process's ledger in the segment
	ID       uint64          `json:"id,omitempty"`
	Body     []byte          `json:"body,omitempty"`
	Key      string          `json:"key,omitempty"`
	Error    string          `json:"error,omitempty"`
	GraceMS  int64           `json:"grace_ms,omitempty"`
}

// planeBackend is one backend as the control plane sees it: its slot in the shared
// segment and whether it takes new requests.
type planeBackend struct {
	URL       string `json:"url"`
	Key       string `json:"key"`
	Weight    int    `json:"weight"`
	Priority  int    `json:"priority,omitempty"` // see config.Backend.Priority
	Source    string `json:"source"`
	Slot      int    `json:"slot"`
	Epoch     uint64 `json:"epoch"`
	Candidate bool   `json:"candidate"`
}

// planePlugin says how a data-plane process picks: over its own pick channel to the
// plugin at Endpoint, or with the bundled strategy Local in its own memory.
type planePlugin struct {
	Name     string             `json:"name"`
	Local    bool               `json:"local,omitempty"`
	Endpoint *strategy.Endpoint `json:"endpoint,omitempty"`
}

// planeLog is the control plane's logging, for the data plane's lines to match.
type planeLog struct {
	Level string `json:"level"`
	JSON  bool   `json:"json"`
}

// planeConn is one end of a control channel. Send is safe for use by multiple
// goroutines; Receive is for one reader.
type planeConn struct {
	conn net.Conn
	wmu  sync.Mutex
	hdr  [4]byte
}

func (c *planeConn) send(m *planeMsg) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, err := c.conn.Write(append(hdr[:], body...)); err != nil {
		return fmt.Errorf("control channel: %w", err)
	}
	return nil
}

func (c *planeConn) receive() (*planeMsg, error) {
	if _, err := io.ReadFull(c.conn, c.hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(c.hdr[:])
	if n > maxPlaneMsg {
		return nil, fmt.Errorf("control channel: a message of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.conn, body); err != nil {
		return nil, errors.Join(errors.New("control channel: message cut short"), err)
	}
	m := new(planeMsg)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("control channel: %w", err)
	}
	return m, nil
}
