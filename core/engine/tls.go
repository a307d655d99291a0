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

// An https backend is reached through a TLS bridge: the loop's end of the upstream
// connection is one end of a socket pair, and a goroutine carries the other end over
// TLS to the backend. The loop then speaks HTTP/1.1 to it as to any backend, with
// the same framing, pooling and checks; crypto/tls does the rest. The connection
// counts as connecting until the TLS handshake is done, so a backend that cannot be
// reached, or whose certificate fails, has got no byte of the request, and the
// request may go to another backend whatever its method.

// bridgeProcs gives the bridges a processor of their own, once (see dialTLS).
var bridgeProcs sync.Once

// bridge is the goroutine side of one TLS upstream connection.
type bridge struct {
	// tunnel is set when the connection carries an upgraded exchange: the end of
	// the loop's side is then passed on as a half-close (close_notify), not as the
	// end of the connection.
	tunnel atomic.Bool

	mu      sync.Mutex
	local   net.Conn // the socket pair's far end
	tc      *tls.Conn
	aborted bool // abort ran: whatever comes is closed at once
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
	if br.tc != nil {
		br.tc.Close()
	}
}

// closeFD closes the connection's loop side; an https backend's bridge goes with it,
// whatever it was waiting for (a backend that says nothing, or takes nothing).
func (u *upstream) closeFD() {
	u.sock.closeFD()
	if u.tls != nil {
		u.tls.abort()
	}
}

// dialTLS opens a connection to the https backend b at ap; it completes when
// handshaken runs on the loop.
func (l *loop) dialTLS(b *backend.Backend, ap netip.AddrPort) (*upstream, error) {
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
	f := os.NewFile(uintptr(fds[1]), "tls-bridge")
	far, err := net.FileConn(f)
	f.Close() // FileConn holds a copy; the File closes its own, once
	if err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	u := &upstream{sock: sock{l: l, fd: fds[0]}, b: b, connecting: true, tls: new(bridge)}
	u.addr = ap
	u.timer = l.ev.NewTimer(u.idleExpired)
	if err := l.ev.Add(fds[0], evloop.Readable|evloop.Writable, u); err != nil {
		unix.Close(fds[0])
		far.Close()
		return nil, err
	}
	_, hostport, _ := strings.Cut(b.Key, "://")
	cfg := l.e.cfg.Proxy.Settings().TLSFor(hostport, l.e.sessions)
	go u.tls.run(far.(*net.UnixConn), ap, cfg, l.e.cfg.Timeouts.Connect, func(err error) {
		l.ev.Execute(func() { u.handshaken(err) })
	})
	return u, nil
}

// handshaken learns, on the loop, whether the bridge reached the backend.
func (u *upstream) handshaken(err error) {
	if u.fd < 0 || u.tls == nil || !u.connecting {
		return // given up meanwhile (a timeout, the client gone)
	}
	if err != nil {
		if c := u.c; c != nil {
			u.l.e.cfg.Log.Debug("backend TLS handshake failed", "backend", u.b.URL, "error", err)
			c.failed(exchange.ErrTLS)
			return
		}
		u.closeFD()
		return
	}
	u.tlsUp = true
	u.OnEvents(evloop.Writable)
}

// run dials ap, shakes hands, reports how that went with done, then carries bytes
// both ways until the connection ends.
func (br *bridge) run(local *net.UnixConn, ap netip.AddrPort, cfg *tls.Config, timeout time.Duration, done func(error)) {
	br.mu.Lock()
	br.local = local
	br.mu.Unlock()
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
	br.mu.Lock()
	br.tc = tc
	aborted := br.aborted
	br.mu.Unlock()
	if aborted { // the loop gave up meanwhile
		tc.Close()
		done(errors.New("connection abandoned during the TLS handshake"))
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
