package discovery

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// System names the system's resolver (servers.discovery.resolver not given) where a
// DNS server's address would be.
const System = "system"

// askTimeout bounds one question to one DNS server of a list, so that a server that
// does not answer leaves the next one time to. A lone server has the whole
// resolution's time (lookupTimeout).
const askTimeout = 2 * time.Second

// Error is a lookup that failed: what was asked, of which DNS server, and why.
type Error struct {
	// Type is the record type asked for: "SRV" or "A/AAAA".
	Type string
	// Name is the name looked up.
	Name string
	// Server is the DNS server asked, host:port: the configured one, or the one of
	// the system's that Go's resolver asked last (System when none was dialled).
	Server string
	// NotFound says the server answered that the name has no such record.
	NotFound bool
	// NoAnswer says no answer came: a timeout, or the server refused the
	// connection or could not be reached.
	NoAnswer bool
	// Err is the resolver's error. Its text may name another server than Server
	// (net.DNSError names the one of resolv.conf whichever was dialled) and an
	// ephemeral port, so Error() gives only its cause.
	Err   error
	cause string
}

// Error formats e as "resolving TYPE NAME on SERVER: CAUSE": stable from one lookup
// to the next as long as the cause is the same.
func (e *Error) Error() string {
	return "resolving " + e.Type + " " + e.Name + " on " + e.Server + ": " + e.cause
}

// Unwrap returns the resolver's error.
func (e *Error) Unwrap() error { return e.Err }

// Problems are the errors of one resolution, joined with "; " (one line for the log
// and the status).
type Problems []error

// Error joins the errors' texts with "; ".
func (p Problems) Error() string {
	s := make([]string, len(p))
	for i, err := range p {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (p Problems) Unwrap() []error { return p }

// client asks a list of DNS servers, in order, the questions of one resolution. A
// server that did not answer a question is asked after the others for the rest of
// the resolution. Not safe for concurrent use.
type client struct {
	servers  []string // "" for the system's resolver
	failed   []bool   // did not answer a question of this resolution
	answered string   // the server that answered last
	asked    string   // the server asked last
	skipped  Problems // servers that failed before another answered
}

func newClient(servers []string) *client {
	if len(servers) == 0 {
		servers = []string{""}
	}
	return &client{servers: servers, failed: make([]bool, len(servers))}
}

// ask puts a question of type typ about name to the servers until one answers: with
// the records, or that there are none (another server is not asked then). When none
// answers, the error lists each server's failure.
func (c *client) ask(ctx context.Context, typ, name string, q func(context.Context, *net.Resolver) error) error {
	var errs Problems
	for _, i := range c.order() {
		x := &exchange{fixed: c.servers[i]}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if len(c.servers) > 1 { // leave the next server time to answer
			actx, cancel = context.WithTimeout(ctx, askTimeout)
		}
		err := q(actx, x.resolver())
		cancel()
		c.asked = x.server()
		if err == nil {
			c.answered, c.skipped = c.asked, append(c.skipped, errs...)
			return nil
		}
		e := x.error(typ, name, c.asked, err)
		if e.NotFound {
			c.answered, c.skipped = c.asked, append(c.skipped, errs...)
			return e
		}
		c.failed[i] = c.failed[i] || e.NoAnswer
		errs = append(errs, e)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errs
}

// order lists the servers' indexes in the order to ask them: those that answered
// so far first.
func (c *client) order() []int {
	var ok, failed []int
	for i := range c.servers {
		if c.failed[i] {
			failed = append(failed, i)
		} else {
			ok = append(ok, i)
		}
	}
	return append(ok, failed...)
}

// exchange is one question to one DNS server: it dials the server (or, when fixed
// is "", the system's resolver's) and notes what the wire said.
type exchange struct {
	fixed string
	mu    sync.Mutex
	addr  string // the server dialled last
	err   error  // the last error on the wire, nil when none
}

var dialer net.Dialer

// resolver is Go's resolver, asking x's server.
func (x *exchange) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if x.fixed != "" {
			addr = x.fixed
		}
		c, err := dialer.DialContext(ctx, network, addr)
		x.note(addr, err)
		if err != nil {
			return nil, err
		}
		// Go's resolver frames its messages as datagrams when the connection is a
		// net.PacketConn, as a stream otherwise: keep the kind.
		if u, ok := c.(*net.UDPConn); ok {
			return &udpConn{UDPConn: u, x: x}, nil
		}
		return &streamConn{Conn: c, x: x}, nil
	}}
}

// note records the server dialled and the error met, if any.
func (x *exchange) note(addr string, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addr = addr
	if err != nil {
		x.err = err
	}
}

// server is the server asked: the one dialled last, or what x was given.
func (x *exchange) server() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.addr != "":
		return x.addr
	case x.fixed != "":
		return x.fixed
	}
	return System
}

// error describes err, the resolver's error for a question of type typ about name
// to server.
func (x *exchange) error(typ, name, server string, err error) *Error {
	x.mu.Lock()
	wire := x.err
	x.mu.Unlock()
	e := &Error{Type: typ, Name: name, Server: server, Err: err, cause: err.Error()}
	var de *net.DNSError
	if errors.As(err, &de) {
		e.NotFound, e.cause = de.IsNotFound, de.Err
		e.NoAnswer = de.IsTimeout || wire != nil && !e.NotFound
	}
	if e.NoAnswer {
		switch {
		case wire != nil:
			e.cause = innermost(wire).Error() // "connection refused", without the exchange's addresses
		case de != nil && de.IsTimeout:
			e.cause = "timed out"
		}
	}
	return e
}

// innermost is the last error in err's chain.
func innermost(err error) error {
	for next := errors.Unwrap(err); next != nil; next = errors.Unwrap(err) {
		err = next
	}
	return err
}

// udpConn and streamConn note the errors of reads and writes on a connection to a
// DNS server: Go's resolver keeps only their text, addresses included.
type (
	udpConn struct {
		*net.UDPConn
		x *exchange
	}
	streamConn struct {
		net.Conn
		x *exchange
	}
)

func (c *udpConn) Read(b []byte) (int, error) {
	n, err := c.UDPConn.Read(b)
	c.x.wire(err)
	return n, err
}

func (c *udpConn) Write(b []byte) (int, error) {
	n, err := c.UDPConn.Write(b)
	c.x.wire(err)
	return n, err
}

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.x.wire(err)
	return n, err
}

func (c *streamConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.x.wire(err)
	return n, err
}

// wire records an error of a read or write, if any.
func (x *exchange) wire(err error) {
	if err != nil {
		x.mu.Lock()
		x.err = err
		x.mu.Unlock()
	}
}

// Interface guards
var (
	_ net.PacketConn = (*udpConn)(nil)
	_ net.Conn       = (*streamConn)(nil)
)
