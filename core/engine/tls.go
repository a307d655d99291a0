//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/evloop"
	"github.com/switchyard-lb/switchyard/core/exchange"
)

// An https or h2c backend is reached through a bridge: the loop's end of the
// upstream connection is one end of a socket pair, and a goroutine serves the other
// end. The loop then speaks HTTP/1.1 to it as to any backend, with the same framing,
// pooling and checks. For https the goroutine carries the bytes over TLS
// (crypto/tls does the rest); for h2c it sends each request on as a stream of an
// HTTP/2 connection that the backend's bridges share (h2c.go). The connection counts
// as connecting until the bridge has reached the backend (a TLS handshake done, an
// HTTP/2 connection up), so a backend that cannot be reached, or whose certificate
// fails, has got no byte of the request, and the request may go to another backend
// whatever its method.

// bridgeProcs gives the bridges a processor of their own, once (see dialBridge).
var bridgeProcs sync.Once

// bridgesOpened counts the bridges opened since the process started.
var bridgesOpened atomic.Int64

// bridge is the goroutine side of one bridged upstream connection.
type bridge struct {
	// tunnel is set when the connection carries an upgraded exchange: the end of
	// the loop's side is then passed on as a half-close (close_notify), not as the
	// end of the connection.
	tunnel atomic.Bool

	mu      sync.Mutex
	local   net.Conn  // the socket pair's far end
	far     io.Closer // the TLS connection, or what ends an h2c bridge's streams
	aborted bool      // abort ran: whatever comes is closed at once
}

// abort closes both of the bridge's connections, now or as soon as they exist: the
// loop let go of its end for good, or both directions have ended.
func (br *bridge) abort() {
	br.mu.Lock()
	defer br.mu.Unlock()
	br.aborted = true
	if br.local != nil {
		br.local.Close()
	}
	if br.far != nil {
		br.far.Close()
	}
}

// attach records far as what abort closes. When abort already ran it closes far at
// once and reports false: the loop gave up meanwhile.
func (br *bridge) attach(far io.Closer) bool {
	br.mu.Lock()
	defer br.mu.Unlock()
	if br.aborted {
		far.Close()
		return false
	}
	br.far = far
	return true
}

// errAbandoned ends a bridge whose loop side went away while it reached the
// backend.
var errAbandoned = errors.New("connection abandoned while reaching the backend")

// closeFD closes the connection's loop side; a bridge goes with it, whatever it was
// waiting for (a backend that says nothing, or takes nothing).
func (u *upstream) closeFD() {
	u.sock.closeFD()
	if u.bridge != nil {
		u.bridge.abort()
	}
}

// dialBridge opens a bridged connection to b at ap, served by run on a goroutine of
// its own; it completes when run calls done, on the loop (see bridged).
func (l *loop) dialBridge(b *backend.Backend, ap netip.AddrPort, run func(br *bridge, local *net.UnixConn, done func(error))) (*upstream, error) {
	bridgeProcs.Do(func() {
		// The bridges' goroutines run beside the loops: with no processor but the
		// one a loop holds, they would wait for the runtime's monitor to poll the
		// network for them, every 10 ms (a data-plane process runs with
		// GOMAXPROCS=1).
		if runtime.GOMAXPROCS(0) < 2 {
			runtime.GOMAXPROCS(2)
		}
	})
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	for _, fd := range fds {
		unix.CloseOnExec(fd)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, err
	}
	f := os.NewFile(uintptr(fds[1]), "bridge")
	far, err := net.FileConn(f)
	f.Close() // FileConn holds a copy; the File closes its own, once
	if err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	bridgesOpened.Add(1)
	u := &upstream{sock: sock{l: l, fd: fds[0]}, b: b, connecting: true, bridge: new(bridge)}
	u.addr = ap
	u.timer = l.ev.NewTimer(u.idleExpired)
	if err := l.ev.Add(fds[0], evloop.Readable|evloop.Writable, u); err != nil {
		unix.Close(fds[0])
		far.Close()
		return nil, err
	}
	local := far.(*net.UnixConn)
	u.bridge.mu.Lock()
	u.bridge.local = local
	u.bridge.mu.Unlock()
	go run(u.bridge, local, func(err error) {
		l.ev.Execute(func() { u.bridged(err) })
	})
	return u, nil
}

// dialTLS opens a connection to the https backend b at ap, verified as t says.
func (l *loop) dialTLS(b *backend.Backend, ap netip.AddrPort, t *exchange.BackendTLS) (*upstream, error) {
	_, hostport, _ := strings.Cut(b.Key, "://")
	cfg := t.For(hostport, false)
	timeout := l.e.cfg.Timeouts.Connect
	u, err := l.dialBridge(b, ap, func(br *bridge, local *net.UnixConn, done func(error)) {
		br.runTLS(local, ap, cfg, timeout, done)
	})
	if u != nil {
		u.tls = t
	}
	return u, err
}

// bridged learns, on the loop, whether the bridge reached the backend.
func (u *upstream) bridged(err error) {
	if u.fd < 0 || u.bridge == nil || !u.connecting {
		return // given up meanwhile (a timeout, the client gone)
	}
	if err != nil {
		if c := u.c; c != nil {
			u.l.e.cfg.Log.Debug("bridge to the backend failed", "backend", u.b.URL, "error", err)
			if strings.HasPrefix(u.b.Key, "https:") {
				c.failed(exchange.ErrTLS)
			} else {
				c.failed(exchange.ErrConnect)
			}
			return
		}
		u.closeFD()
		return
	}
	u.bridgeUp = true
	u.OnEvents(evloop.Writable)
}

// runTLS dials ap, shakes hands, reports how that went with done, then carries
// bytes both ways until the connection ends.
func (br *bridge) runTLS(local *net.UnixConn, ap netip.AddrPort, cfg *tls.Config, timeout time.Duration, done func(error)) {
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, time.Second))
	d := net.Dialer{KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", ap.String())
	var tc *tls.Conn
	if err == nil {
		tc = tls.Client(raw, cfg)
		if err = tc.HandshakeContext(ctx); err != nil {
			raw.Close()
		}
	}
	cancel()
	if err != nil {
		local.Close()
		done(err)
		return
	}
	if !br.attach(tc) {
		done(errAbandoned)
		return
	}
	done(nil)
	up := make(chan struct{})
	go func() { // the loop to the backend
		defer close(up)
		if _, err := io.Copy(tc, local); err == nil && br.tunnel.Load() {
			_ = tc.CloseWrite() // a tunnel's half-close; the other way goes on
			return
		}
		br.abort() // the loop closed its end: the connection is over
	}()
	if _, err := io.Copy(local, tc); err == nil {
		_ = local.CloseWrite() // the backend ended: the loop reads the end
	} else {
		br.abort()
	}
	<-up
	br.abort() // both ways have ended
}
