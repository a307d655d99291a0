package lb

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
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
	ln    net.Listener
	f     *nethttp.Front // nil until it serves
	certs certs.Source   // its certificates (*certs.Store or *certs.ACME); nil without TLS
	stop  func()         // stops following the certificate files or the ACME CA
}

// startExtras starts cfg's listeners. One that prev's held serves already, unchanged
// (its entry, and the timeouts, limits and directory it was started with), is kept
// with its connections and reported in kept; the others start anew. An address that
// one of held already listens on is shared with it (SO_REUSEPORT) until it is
// drained; if one fails, those started are stopped and the error returned. All
// listen before any serves: an ACME listener's challenges may be answered on the
// port of another (see certsOf).
func (l *LB) startExtras(prev, cfg *config.Config, held []*extra) (out []*extra, kept map[*extra]bool, err error) {
	out, kept = make([]*extra, 0, len(cfg.Listeners)), map[*extra]bool{}
	fail := func(i int, err error) ([]*extra, map[*extra]bool, error) {
		for _, x := range out {
			if !kept[x] {
				x.drain(time.Second, l)
			}
		}
		return nil, nil, fmt.Errorf("listeners[%d] (%s): %w", i, cfg.Listeners[i].Addr, err)
	}
	for i, lc := range cfg.Listeners {
		var same *extra
		exclusive := true
		for _, h := range held {
			if h.cfg.Addr == lc.Addr {
				exclusive = false
			}
			if same == nil && !kept[h] && prev != nil && !servingChanged(prev, cfg) && reflect.DeepEqual(h.cfg, lc) &&
				(lc.TLS == nil || lc.TLS.ACME == nil || challengeAddr(prev) == challengeAddr(cfg)) {
				// (An ACME listener's http-01 challenges are answered where the
				// configuration says; a change there starts it anew.)
				same = h
			}
		}
		if same != nil {
			kept[same] = true
			out = append(out, same)
			continue
		}
		ln, err := listen(lc.Addr, exclusive)
		if err != nil {
			return fail(i, err)
		}
		out = append(out, &extra{cfg: lc, ln: ln, stop: func() {}})
	}
	for i, x := range out {
		if x.cfg.TLS == nil || kept[x] {
			continue
		}
		var err error
		if x.certs, err = l.certsOf(cfg, x, out); err != nil {
			return fail(i, err)
		}
	}
	for _, x := range out {
		if !kept[x] {
			l.serveExtra(cfg, x)
		}
	}
	return out, kept, nil
}

// certsOf loads x's certificates from their files, or prepares its ACME source
// (started by follow). all are the listeners x starts with.
func (l *LB) certsOf(cfg *config.Config, x *extra, all []*extra) (certs.Source, error) {
	t := x.cfg.TLS
	if t.ACME == nil {
		pairs := make([]certs.Pair, len(t.Certificates))
		for i, cf := range t.Certificates {
			pairs[i] = certs.Pair{Cert: cfg.Resolve(cf.Cert), Key: cfg.Resolve(cf.Key)}
		}
		return certs.Load(pairs)
	}
	a := t.ACME
	ac := certs.ACMEConfig{Domains: a.Domains, Email: a.Email, Directory: a.Directory, CARoots: cfg.Resolve(a.CARoots),
		Storage: cfg.Resolve(a.Storage), Log: l.log.Named("acme").With("listener", x.ln.Addr().String())}
	if a.Offers(config.ChallengeTLSALPN) {
		ac.TLSALPNAddr = x.ln.Addr().String()
	}
	if i := cfg.ChallengeListener(); i >= 0 && a.Offers(config.ChallengeHTTP) {
		ac.HTTPAddr = all[i].ln.Addr().String()
	}
	return certs.NewACME(ac)
}

// serveExtra serves l's proxy on x, and follows its certificate files or its ACME
// CA. Plaintext listeners answer the http-01 challenges of every ACME listener.
func (l *LB) serveExtra(cfg *config.Config, x *extra) {
	lc := x.cfg
	var tc *tls.Config
	if x.certs != nil {
		tc = &tls.Config{GetCertificate: x.certs.GetCertificate, MinVersion: lc.TLS.TLSVersion(), NextProtos: protocols(lc)}
		if a, ok := x.certs.(*certs.ACME); ok {
			tc.NextProtos = append(tc.NextProtos, a.NextProtos()...)
		}
	}
	var challenge func(http.ResponseWriter, *http.Request) bool
	if lc.TLS == nil {
		challenge = l.httpChallenge
	}
	lbc := cfg.LoadBalancer
	t := lbc.Timeouts
	x.f = nethttp.Serve(nethttp.Config{
		Listener: x.ln, Proxy: l.proxy, Status: l.source.JSON,
		Limits: h1.Limits{MaxHeaderBytes: lbc.Limits.MaxHeaderBytes, MaxHeaders: lbc.Limits.MaxHeaders},
		Timeouts: nethttp.Timeouts{Connect: t.Connect.D(), ResponseHeader: t.ResponseHeader.D(), Idle: t.Idle.D(),
			ReadHeader: t.ReadHeader.D(), BodyIdle: t.BodyIdle.D()},
		Log: l.log.Named("http").With("listener", x.ln.Addr().String()),
		TLS: tc, H2C: lc.H2C, RedirectHTTPS: lc.RedirectHTTPS, Handshake: l.source.CountHandshake,
		Challenge: challenge,
	})
	l.follow(x)
}

// follow reads x's certificate files again when they change, or starts its ACME
// source and shows its progress in the status, until x.stop.
func (l *LB) follow(x *extra) {
	addr := x.ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	x.stop = cancel
	switch src := x.certs.(type) {
	case *certs.Store:
		if err := src.Watch(ctx, func(err error) { l.certificatesRead(addr, err) }); err != nil {
			l.log.Warn("not following the certificate files; they are read again at the next edit", "listener", addr, "error", err)
		}
	case *certs.ACME:
		l.acmes.Store(src, true)
		x.stop = func() { cancel(); src.Stop(); l.acmes.Delete(src) }
		if err := src.Start(ctx); err != nil {
			l.log.Error("not obtaining certificates", "listener", addr, "error", err)
		}
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-src.Changed():
					l.acmeProgressed()
				}
			}
		}()
	}
}

// httpChallenge answers r when it is an http-01 challenge of a running ACME
// listener, whichever edit started it.
func (l *LB) httpChallenge(w http.ResponseWriter, r *http.Request) bool {
	done := false
	l.acmes.Range(func(a, _ any) bool {
		done = a.(*certs.ACME).HandleHTTPChallenge(w, r)
		return !done
	})
	return done
}

// acmeProgressed shows in the status a certificate obtained or renewed, why one is
// not yet, or why its renewal failed.
func (l *LB) acmeProgressed() {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if l.front != nil { // nil until Start has shown the listeners itself
		l.showListeners()
	}
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
	if x.f == nil { // it never served
		_ = x.ln.Close()
		if a, ok := x.certs.(*certs.ACME); ok {
			a.Stop()
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addr := x.f.Addr().String()
	if err := x.f.Shutdown(ctx); err != nil {
		l.log.Warn("old listener: requests cut off after the drain timeout", "addr", addr, "error", err)
	}
}

// extrasChanged reports whether next needs listeners started anew: they, their
// timeouts or limits, or the directory their files are relative to changed.
func extrasChanged(prev, next *config.Config) bool {
	return !reflect.DeepEqual(prev.Listeners, next.Listeners) || servingChanged(prev, next)
}

// challengeAddr is the address of c's listener that answers http-01 challenges; ""
// for none.
func challengeAddr(c *config.Config) string {
	if i := c.ChallengeListener(); i >= 0 {
		return c.Listeners[i].Addr
	}
	return ""
}

// servingChanged reports whether what every listener is started with changed:
// timeouts, limits, or the directory its files are relative to.
func servingChanged(prev, next *config.Config) bool {
	pl, nl := prev.LoadBalancer, next.LoadBalancer
	return pl.Timeouts != nl.Timeouts || pl.Limits != nl.Limits || prev.Path != next.Path
}

// listenerStatus describes x for the status.
func (x *extra) status() status.Listener {
	s := status.Listener{Addr: x.f.Addr().String(), Front: "nethttp", TLS: x.certs != nil, Protocols: protocols(x.cfg)}
	if x.cfg.H2C {
		s.Protocols = []string{"h2c", "http/1.1"}
	}
	if x.certs != nil {
		for _, in := range x.certs.Infos() {
			s.Certificates = append(s.Certificates, status.Certificate{Names: in.Names, Issuer: in.Issuer, NotAfter: in.NotAfter,
				RenewalError: in.RenewalError})
		}
	}
	if a, ok := x.certs.(*certs.ACME); ok {
		s.Pending = a.Pending()
	}
	return s
}
