// Package wire is the control channel between the control plane and a data-plane
// process: a stream socket of messages, each framed as the pick channel's are (a
// little-endian uint32 length, then the payload: sdk/wire's WriteFrame and ReadFrame),
// the payload a JSON object. Messages are rare (a start, a reload, a change of a
// backend's state, a status request, a log rotation), so JSON costs nothing that
// matters and keeps the channel readable in a trace.
//
// The control plane starts a data-plane process with Env set to the process's index
// and its end of the channel as file descriptor FD. The first message is a Start; the
// process answers Ready once it listens, or Failed.
package wire

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/switchyard-lb/switchyard/core/strategy"
	sdkwire "github.com/switchyard-lb/switchyard/sdk/wire"
)

// Env marks a data-plane process: its value is the process's index.
const Env = "SWITCHYARD_DATAPLANE"

// FD is the file descriptor of a data-plane process's end of the control channel.
const FD = 3

// Kinds of Message, with the fields each one uses.
const (
	// control plane to data plane
	KindStart    = "start"    // Index, Ledger, Config, Path, Gen, Addr, Shm, Backends, Pools, Log
	KindConfig   = "config"   // Config, Path, Gen: apply, and ready the routes of Gen (answered by Staged)
	KindBackends = "backends" // Backends, Pools: the pools, their backends and who takes new requests
	KindPlugin   = "plugin"   // Pools: where each pool's strategy answers now
	KindStop     = "stop"     // GraceMS: drain, then exit
	KindAnswer   = "answer"   // ID, Body: the status JSON asked for
	KindReopen   = "reopen"   // open the access log's file anew (log rotation)
	// data plane to control plane
	KindReady  = "ready"  // Addr: serving
	KindFailed = "failed" // Error: could not start or apply; the process exits
	KindStaged = "staged" // Gen: the routes of Gen are ready to take over
	KindEject  = "eject"  // Pool, Key, Error: the passive check's threshold was crossed
	KindError  = "error"  // Pool, Key, Error: a request to the backend failed so
	KindStatus = "status" // ID: the status JSON, please
)

// MaxMessage bounds one message (a start with thousands of discovered backends fits).
const MaxMessage = 64 << 20

// Message is one message of the control channel.
type Message struct {
	Kind   string          `json:"kind"`
	Config json.RawMessage `json:"config,omitempty"`
	// Routes, when given, is the configuration whose routes and pools make the
	// table of generation Gen (the one in force), where Config is newer.
	Routes   json.RawMessage `json:"routes,omitempty"`
	Path     string          `json:"path,omitempty"`
	Addr     string          `json:"addr,omitempty"`
	Shm      string          `json:"shm,omitempty"`
	Backends []Backend       `json:"backends,omitempty"`
	Pools    []Pool          `json:"pools,omitempty"`
	Gen      uint64          `json:"gen,omitempty"` // a routing table's generation
	Pool     string          `json:"pool,omitempty"`
	Log      *Log            `json:"log,omitempty"`
	Index    int             `json:"index,omitempty"`
	Ledger   int             `json:"ledger"` // start: the process's ledger in the segment
	ID       uint64          `json:"id,omitempty"`
	Body     []byte          `json:"body,omitempty"`
	Key      string          `json:"key,omitempty"`
	Error    string          `json:"error,omitempty"`
	GraceMS  int64           `json:"grace_ms,omitempty"`
}

// Backend is one backend as the control plane sees it: its slot in the shared
// segment and whether it takes new requests.
type Backend struct {
	Pool      string `json:"pool"`
	URL       string `json:"url"`
	Key       string `json:"key"`
	Weight    int    `json:"weight"`
	Priority  int    `json:"priority,omitempty"` // see config.Backend.Priority
	Source    string `json:"source"`
	Slot      int    `json:"slot"`
	Epoch     uint64 `json:"epoch"`
	Candidate bool   `json:"candidate"`
}

// Pool is one pool as a data-plane process runs it: its retries, where its
// strategy counts, and how it picks.
type Pool struct {
	Name    string `json:"name"`
	Retries int    `json:"retries"`
	// Passive is the failures in a row that eject one of its backends (0: off).
	Passive int `json:"passive"`
	// Counters is the slot whose area holds the strategy's counters, -1 for the
	// segment's own (the default pool's).
	Counters int     `json:"counters"`
	Plugin   *Plugin `json:"plugin,omitempty"`
}

// Plugin says how a data-plane process picks: over its own pick channel to the
// plugin at Endpoint, or with the bundled strategy Local in its own memory.
type Plugin struct {
	Name     string             `json:"name"`
	Local    bool               `json:"local,omitempty"`
	Endpoint *strategy.Endpoint `json:"endpoint,omitempty"`
}

// Log is the control plane's logging, for the data plane's lines to match.
type Log struct {
	Level string `json:"level"`
	JSON  bool   `json:"json"`
}

// Conn is one end of a control channel. Send is safe for use by multiple
// goroutines; Receive is for one reader.
type Conn struct {
	conn net.Conn
	wmu  sync.Mutex // one frame at a time
}

// NewConn is the control channel over c.
func NewConn(c net.Conn) *Conn { return &Conn{conn: c} }

// Send writes m as one frame.
func (c *Conn) Send(m *Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := sdkwire.WriteFrame(c.conn, body); err != nil {
		return fmt.Errorf("control channel: %w", err)
	}
	return nil
}

// Receive reads the next message. It returns io.EOF once the other end has closed
// the channel between two messages.
func (c *Conn) Receive() (*Message, error) {
	body, err := sdkwire.ReadFrame(c.conn, nil, MaxMessage)
	if err == io.EOF {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("control channel: %w", err)
	}
	m := new(Message)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("control channel: %w", err)
	}
	return m, nil
}
