//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/evloop"
	"github.com/switchyard-lb/switchyard/core/exchange"
)

// bufSize is the size of a connection's read buffer while it has bytes to hold (more
// when limits allow larger heads). Idle
// connections hold none, so ten thousand of them cost little.
const bufSize = 32 << 10

// loop is one event loop with its listener, its connections and its pool of idle
// backend connections. Everything in it runs on the loop's goroutine.
type loop struct {
	e    *Engine
	ev   *evloop.Loop
	lfd  int // listening socket, -1 once closed
	addr *net.TCPAddr

	clients  atomic.Int64 // open client connections, read by Shutdown
	conns    map[*client]struct{}
	idle     map[*backend.Backend][]*upstream
	bufs     [][]byte // free read buffers
	scratch  []byte   // heads being built; copied by a write that cannot send them whole
	rewrite  []byte   // chunked framing rewritten (see rewriteBuf)
	draining bool
}

func (e *Engine) newLoop(addr string) (*loop, error) {
	ev, err := evloop.New()
	if err != nil {
		return nil, err
	}
	fd, bound, err := evloop.Listen(addr, true)
	if err != nil {
		ev.Close()
		return nil, fmt.Errorf("listening for clients: %w", err)
	}
	l := &loop{e: e, ev: ev, lfd: fd, addr: bound, conns: map[*client]struct{}{}, idle: map[*backend.Backend][]*upstream{}}
	if err := ev.Add(fd, evloop.Readable, acceptor{l}); err != nil {
		unix.Close(fd)
		ev.Close()
		return nil, err
	}
	return l, nil
}

// acceptor takes the listener's new connections.
type acceptor struct{ l *loop }

func (a acceptor) OnEvents(evloop.Events) {
	l := a.l
	for l.lfd >= 0 {
		fd, remote, err := evloop.Accept(l.lfd)
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.ECONNABORTED) && !errors.Is(err, unix.EINTR) {
				l.e.cfg.Log.Warn("accept failed", "error", err)
			}
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
				return // the next readiness event tries again
			}
			if errors.Is(err, unix.EAGAIN) {
				return
			}
			continue
		}
		l.open(fd, remote)
	}
}

// getBuf returns a read buffer.
func (l *loop) getBuf() []byte {
	if n := len(l.bufs); n > 0 {
		b := l.bufs[n-1]
		l.bufs = l.bufs[:n-1]
		return b
	}
	return make([]byte, max(bufSize, l.e.cfg.Limits.MaxHeaderBytes+4<<10))
}

// rewriteBuf is where a chunked body piece whose framing is rewritten is built,
// large enough for a whole read buffer's worth. Like scratch, it is free again once
// the write that sends it returns.
func (l *loop) rewriteBuf() []byte {
	if l.rewrite == nil {
		l.rewrite = make([]byte, 0, max(bufSize, l.e.cfg.Limits.MaxHeaderBytes+4<<10))
	}
	return l.rewrite[:0]
}

// putBuf keeps b for another connection; a few are kept, the rest go to the collector.
func (l *loop) putBuf(b []byte) {
	if len(l.bufs) < 64 {
		l.bufs = append(l.bufs, b[:cap(b)])
	}
}

// drain stops accepting and closes idle client connections; busy ones close after
// their answer.
func (l *loop) drain() {
	l.draining = true
	l.closeListener()
	for c := range l.conns {
		switch {
		case c.st != stIdle || c.r < c.w: // busy: closes after its answer
		case len(c.out) > 0: // its last answer is on its way
			c.keep, c.closing = false, true
		default:
			c.close()
		}
	}
}

func (l *loop) closeListener() {
	if l.lfd >= 0 {
		_ = l.ev.Remove(l.lfd)
		unix.Close(l.lfd)
		l.lfd = -1
	}
}

// closeAll closes every connection; the loop has stopped.
func (l *loop) closeAll() {
	l.closeListener()
	for c := range l.conns {
		c.close()
	}
	for _, us := range l.idle {
		for _, u := range us {
			u.closeIdle()
		}
	}
	clear(l.idle)
}

// takeIdle returns a pooled connection to b, or nil. An https one made under TLS
// settings other than tls, its pool's now, is closed instead.
func (l *loop) takeIdle(b *backend.Backend, tls *exchange.BackendTLS) *upstream {
	us := l.idle[b]
	if len(us) == 0 {
		return nil
	}
	// The loop closes a pooled connection as soon as it hears of bytes or a close
	// on it; what came since its last poll is asked of the socket, without reading.
	u := us[len(us)-1]
	l.idle[b] = us[:len(us)-1]
	u.timer.Stop()
	if u.tls != nil && u.tls != tls {
		u.closeIdle()
		return l.takeIdle(b, tls)
	}
	if !u.sound() {
		u.closeIdle()
		u.b.CountStale()
		return l.takeIdle(b, tls)
	}
	return u
}

// putIdle pools u for the next request to its backend.
func (l *loop) putIdle(u *upstream) {
	if l.draining {
		u.closeIdle()
		return
	}
	us := l.idle[u.b]
	if len(us) == maxIdle {
		// Full: this one goes, at once and while it is hot, as HAProxy lets a
		// server connection go when its idle list is full.
		u.closeIdle()
		return
	}
	u.releaseBuf()
	u.resume()
	l.idle[u.b] = append(us, u)
	u.timer.Reset(l.e.cfg.Timeouts.Idle)
}

// maxIdle bounds a loop's idle connections to one backend. Under "safe" reuse a
// client that opens a connection per request never takes an idle one, so without a
// bound its load would pool a connection per request until the idle timeout; with
// it, such a load closes each request's connection once the pool is full.
const maxIdle = 256

// dropIdle forgets u, which was pooled.
func (l *loop) dropIdle(u *upstream) {
	us := l.idle[u.b]
	for i, x := range us {
		if x == u {
			l.idle[u.b] = append(us[:i], us[i+1:]...)
			break
		}
	}
}

// resolveEvery is how long a backend's resolved name is used before it is looked up
// again.
const resolveEvery = 10 * time.Second

// dialAddr is where b is dialled: a literal address for good, a name resolved again
// in the background once its answer is older than resolveEvery. The answer is kept
// on the backend (backend.DialAddr), so it goes when the backend does.
func dialAddr(b *backend.Backend) (netip.AddrPort, error) {
	if r := b.DialAddr(); r != nil {
		if r.Name != "" && time.Since(r.At) > resolveEvery && r.Refreshing.CompareAndSwap(false, true) {
			go func() {
				if ap, err := resolve(r.Name); err == nil {
					b.SetDialAddr(&backend.DialAddr{Addr: ap, Name: r.Name, At: time.Now()})
				} else {
					r.Refreshing.Store(false) // keep the last answer; try again later
				}
			}()
		}
		return r.Addr, nil
	}
	// The key has the port, whatever the URL leaves out (config.NormalizeURL).
	_, hostPort, _ := strings.Cut(b.Key, "://")
	var err error
	r := &backend.DialAddr{At: time.Now()}
	if r.Addr, err = netip.ParseAddrPort(hostPort); err != nil {
		// A name: the first request to the backend waits for its lookup; later ones
		// use the last answer while a new one is looked up.
		r.Name = hostPort
		if r.Addr, err = resolve(hostPort); err != nil {
			return netip.AddrPort{}, err
		}
	}
	r.Addr = netip.AddrPortFrom(r.Addr.Addr().Unmap(), r.Addr.Port())
	b.SetDialAddr(r)
	return r.Addr, nil
}

func resolve(hostPort string) (netip.AddrPort, error) {
	ta, err := net.ResolveTCPAddr("tcp", hostPort)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
