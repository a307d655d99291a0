package lb

import (
	"context"
	"crypto/tls"
	"fmt"
	"reflect"
	"time"

	"github.com/switchyard-lb/switchyard/core/certs"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/h1"
	"github.com/switchyard-lb/switchyard/core/nethttp"
	"github.com/switchyard-lb/switchyard/core/status"
)

// extra is a listener of config.json's listeners (DESIGN section 4.2), served by the
// nethttp front: TLS with HTTP/2 and HTTP/1.1, h2c, or a redirect to https. Every
// listener serves the same routes.
type extra struct {
	cfg   config.Listener
	f     *nethttp.Front
	store *certs.Store       // its certificates; nil without TLS
	stop  context.CancelFunc // stops following the certificate files
}

// startExtras starts cfg's listeners. An address that one of held already listens
// on is shared with it (SO_REUSEPORT) until it is drained; if one fails, those
// started are stopped and the error returned.
func (l *LB) startExtras(cfg *config.Config, held []*extra) ([]*extra, error) {
	var out []*extra
	for i, lc := range cfg.Listeners {
		exclusive := true
		for _, h := range held {
			if h.cfg.Addr == lc.Addr {
				exclusive = false
			}
		}
		x, err := l.startExtra(cfg, lc, exclusive)
		if err != nil {
			for _, o := range out {
				o.drain(time.Second, l)
			}
			return nil, fmt.Errorf("listeners[%d] (%s): %w", i, lc.Addr, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// startExtra listens as lc says and serves l's proxy there.
func (l *LB) startExtra(cfg *config.Config, lc config.Listener, exclusive bool) (*extra, error) {
	x := &extra{cfg: lc}
	var tc *tls.Config
	if lc.TLS != nil {
		pairs := make([]certs.Pair, len(lc.TLS.Certificates))
		for i, cf := range lc.TLS.Certificates {
			pairs[i] = certs.Pair{Cert: cfg.Resolve(cf.Cert), Key: cfg.Resolve(cf.Key)}
		}
		var err error
		if x.store, err = certs.Load(pairs); err != nil {
			return nil, err
		}
		tc = &tls.Config{GetCertificate: x.store.GetCertificate, MinVersion: lc.TLS.TLSVersion(), NextProtos: protocols(lc)}
	}
	ln, err := listen(lc.Addr, exclusive)
	if err != nil {
		return nil, err
	}
	lbc := cfg.LoadBalancer
	t := lbc.Timeouts
	x.f = nethttp.Serve(nethttp.Config{
		Listener: ln, Proxy: l.proxy, Status: l.source.JSON,
		Limits: h1.Limits{MaxHeaderBytes: lbc.Limits.MaxHeaderBytes, MaxHeaders: lbc.Limits.MaxHeaders},
		Timeouts: nethttp.Timeouts{Connect: t.Connect.D(), ResponseHeader: t.ResponseHeader.D(), Idle: t.Idle.D(),
			ReadHeader: t.ReadHeader.D(), BodyIdle: t.BodyIdle.D()},
		Log: l.log.Named("http").With("listener", ln.Addr().String()),
		TLS: tc, H2C: lc.H2C, RedirectHTTPS: lc.RedirectHTTPS, Handshake: l.source.CountHandshake,
	})
	var ctx context.Context
	ctx, x.stop = context.WithCancel(context.Background())
	if x.store != nil {
		addr := ln.Addr().String()
		if err := x.store.Watch(ctx, func(err error) { l.certificatesRead(addr, err) }); err != nil {
			l.log.Warn("not following the certificate files; they are read again at the next edit", "listener", addr, "error", err)
		}
	}
	return x, nil
}

// protocols are what a TLS listener offers by ALPN.
func protocols(lc config.Listener) []string {
	if lc.TLS == nil {
		return nil
	}
	if lc.HTTP2 {
		return []string{"h2", "http/1.1"}
	}
	return []string{"http/1.1"}
}

// certificatesRead reports a reading of a listener's certificate files after one
// changed: a pair that no longer loads is refused like a bad edit (log, status
// last_error, reloads refused), and the previous version serves on.
func (l *LB) certificatesRead(addr string, err error) {
	l.source.CountReload(err == nil)
	if err != nil {
		l.source.SetLastError(err.Error())
		l.log.Error("certificate refused; the previous one keeps serving", "listener", addr, "error", err)
		return
	}
	l.log.Info("certificates read again", "listener", addr)
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	l.showListeners()
}

// drain stops x accepting and lets its requests finish within timeout.
func (x *extra) drain(timeout time.Duration, l *LB) {
	x.stop()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addr := x.f.Addr().String()
	if err := x.f.Shutdown(ctx); err != nil {
		l.log.Warn("old listener: requests cut off after the drain timeout", "addr", addr, "error", err)
	}
}

// extrasChanged reports whether next needs its listeners started anew: they, their
// timeouts or limits, or the directory their files are relative to changed.
func extrasChanged(prev, next *config.Config) bool {
	pl, nl := prev.LoadBalancer, next.LoadBalancer
	return !reflect.DeepEqual(prev.Listeners, next.Listeners) || pl.Timeouts != nl.Timeouts || pl.Limits != nl.Limits || prev.Path != next.Path
}

// listenerStatus describes x for the status.
func (x *extra) status() status.Listener {
	s := status.Listener{Addr: x.f.Addr().String(), Front: "nethttp", TLS: x.store != nil, Protocols: protocols(x.cfg)}
	if x.cfg.H2C {
		s.Protocols = []string{"h2c", "http/1.1"}
	}
	if x.store != nil {
		for _, in := range x.store.Infos() {
			s.Certificates = append(s.Certificates, status.Certificate{Names: in.Names, Issuer: in.Issuer, NotAfter: in.NotAfter})
		}
	}
	return s
}
