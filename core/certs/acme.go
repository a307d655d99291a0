package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/hashicorp/go-hclog"
	"github.com/mholt/acmez/v3"
)

// ACMEConfig builds an ACME source.
type ACMEConfig struct {
	// Domains are the names to obtain certificates for, one certificate each; the
	// first's serves a client without SNI or with a name not listed.
	Domains []string
	// Email is the ACME account's contact ("" for none).
	Email string
	// Directory is the URL of the CA's ACME directory.
	Directory string
	// CARoots is a PEM file of the roots to verify the CA's HTTPS certificate
	// against ("": the system's).
	CARoots string
	// Storage is the directory that keeps the account and the certificates.
	Storage string
	// TLSALPNAddr is the host:port of the TLS listener whose GetCertificate is the
	// source's: it answers tls-alpn-01 challenges there ("": none offered).
	TLSALPNAddr string
	// HTTPAddr is the host:port of a plaintext listener that passes requests to
	// HandleHTTPChallenge: it answers http-01 challenges there ("": none offered).
	HTTPAddr string
	// Log hears certmagic's messages, info as debug (nil: none).
	Log hclog.Logger

	// renewalWindow is the part of a certificate's lifetime, counted back from its
	// expiry, in which it is renewed (0: certmagic's, a third). Tests set 1: a
	// certificate is due as soon as it is issued.
	renewalWindow float64
}

// ACME is a TLS listener's certificates obtained from an ACME CA and renewed before
// they expire, by certmagic (the library Caddy uses): one per domain, loaded from
// storage when an earlier run obtained it. Until a domain has one, its handshakes
// fail with the TLS alert internal_error and Pending says why; while its renewal
// fails, it keeps serving and Infos says why. ACME is safe for use by multiple
// goroutines.
type ACME struct {
	domains []string // lower case, in the order of the config
	dir     string
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	cache   *certmagic.Cache
	log     hclog.Logger
	changed chan struct{}
	stop    sync.Once
	done    chan struct{}  // closed by Stop
	wg      sync.WaitGroup // the goroutines of announceRenewed

	mu      sync.Mutex
	errs    map[string]error // domain → why its last attempt to obtain or renew failed, until one succeeds
	stopped bool             // no goroutine starts once Stop has begun
}

// NewACME prepares a source for cfg's domains: nothing is asked of the CA before
// Start. Stop releases it.
func NewACME(cfg ACMEConfig) (*ACME, error) {
	if len(cfg.Domains) == 0 {
		return nil, fmt.Errorf("acme: no domain")
	}
	if cfg.TLSALPNAddr == "" && cfg.HTTPAddr == "" {
		return nil, fmt.Errorf("acme: no challenge can be answered: neither a TLS listener for tls-alpn-01 nor a plaintext one for http-01")
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	a := &ACME{dir: cfg.Directory, log: cfg.Log, changed: make(chan struct{}, 1), done: make(chan struct{}), errs: map[string]error{}}
	for _, d := range cfg.Domains {
		a.domains = append(a.domains, strings.ToLower(d))
	}
	var roots *x509.CertPool
	if cfg.CARoots != "" {
		pem, err := os.ReadFile(cfg.CARoots)
		if err != nil {
			return nil, fmt.Errorf("acme: reading ca_roots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme: ca_roots %s holds no PEM certificate", cfg.CARoots)
		}
	}
	zl := zapLogger(cfg.Log)
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		Logger:           zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: cfg.Storage},
		DefaultServerName:  a.domains[0],
		FallbackServerName: a.domains[0],
		RenewalWindowRatio: cfg.renewalWindow,
		OnEvent:            a.event,
		ShouldEmitFunc:     func(event string) bool { return event != "tls_get_certificate" },
		Logger:             zl,
	})
	// The listeners answer the challenges: certmagic, finding their ports taken,
	// opens none of its own (see its robustTryListen).
	host, tlsPort := splitPort(cfg.TLSALPNAddr)
	httpHost, httpPort := splitPort(cfg.HTTPAddr)
	if cfg.TLSALPNAddr == "" {
		host = httpHost
	}
	a.issuer = certmagic.NewACMEIssuer(a.magic, certmagic.ACMEIssuer{
		CA: cfg.Directory, Email: cfg.Email, Agreed: true, TrustedRoots: roots,
		DisableTLSALPNChallenge: cfg.TLSALPNAddr == "", AltTLSALPNPort: tlsPort,
		DisableHTTPChallenge: cfg.HTTPAddr == "", AltHTTPPort: httpPort,
		ListenHost: host, Logger: zl,
	})
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

// splitPort is addr's host and port; "" and 0 when addr is "".
func splitPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// Start loads each domain's certificate from storage, or begins obtaining it (in
// the background, retrying with a growing interval), and keeps them renewed until
// ctx ends. Call it once the listeners that answer the challenges accept.
func (a *ACME) Start(ctx context.Context) error {
	return a.magic.ManageAsync(ctx, a.domains)
}

// Stop ends the renewals; call it after Start's ctx ended (or without Start). The
// certificates obtained keep serving. Calls after the first do nothing.
func (a *ACME) Stop() {
	a.stop.Do(func() {
		a.mu.Lock()
		a.stopped = true
		a.mu.Unlock()
		close(a.done)
		a.wg.Wait()
		a.cache.Stop()
	})
}

// Changed receives a value when a certificate was obtained, loaded or renewed, or
// an attempt failed: Infos and Pending may tell something new.
func (a *ACME) Changed() <-chan struct{} { return a.changed }

// signal sends on Changed unless a value waits there already.
func (a *ACME) signal() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// event follows certmagic's progress (Config.OnEvent): it must return quickly.
func (a *ACME) event(_ context.Context, name string, data map[string]any) error {
	id, _ := data["identifier"].(string)
	switch name {
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			return nil
		}
		a.mu.Lock()
		a.errs[id] = err
		a.mu.Unlock()
		// certmagic logs each failure, and when it tries again; one that leaves a
		// certificate serving toward its expiry (a renewal's) we warn of too.
		if c := a.current(id); c != nil {
			a.log.Warn("renewing a certificate failed; it serves on until a renewal succeeds or it expires",
				"domain", id, "not_after", c.Leaf.NotAfter.UTC(), "directory", a.dir, "error", err)
		}
	case "cert_obtained":
		a.mu.Lock()
		delete(a.errs, id)
		a.mu.Unlock()
		if renewal, _ := data["renewal"].(bool); renewal {
			a.log.Info("certificate renewed", "domain", id, "directory", a.dir)
			a.announceRenewed(id)
			return nil
		}
		a.log.Info("certificate obtained", "domain", id, "directory", a.dir)
	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		a.mu.Lock()
		for _, n := range sans {
			delete(a.errs, n)
		}
		a.mu.Unlock()
	default:
		return nil
	}
	a.signal()
	return nil
}

// announceRenewed signals Changed once the cache serves domain's renewed
// certificate, which certmagic puts there just after announcing it (cert_obtained):
// signalled at once, Infos could still show the old one. It gives up waiting after
// 10 seconds, and at Stop.
func (a *ACME) announceRenewed(domain string) {
	var old string
	if c := a.current(domain); c != nil {
		old = c.Hash()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	a.wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for range 1000 { // 10 s
			select {
			case <-a.done:
				return
			case <-tick.C:
			}
			if c := a.current(domain); c != nil && c.Hash() != old {
				break
			}
		}
		a.signal()
	})
}

// GetCertificate chooses the certificate for a handshake as Store's does (SNI, else
// the first domain's), and answers tls-alpn-01 challenges (RFC 8737). A listed
// domain without a certificate yet fails the handshake, saying why.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
		return a.magic.GetCertificate(hello)
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if !slices.Contains(a.domains, name) {
		name = a.domains[0]
	}
	if !a.has(name) {
		return nil, fmt.Errorf("acme: no certificate yet: %s", a.reason(name))
	}
	c, err := a.magic.GetCertificate(hello)
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	return c, nil
}

// NextProtos are the ALPN protocols the listener must offer, after its own, for
// the source's challenges: acme-tls/1 when it answers tls-alpn-01 (RFC 8737: the
// CA's validation handshake asks for it alone).
func (a *ACME) NextProtos() []string {
	if a.issuer.DisableTLSALPNChallenge {
		return nil
	}
	return []string{acmez.ACMETLS1Protocol}
}

// has reports whether domain has a certificate to serve.
func (a *ACME) has(domain string) bool {
	return len(a.cache.AllMatchingCertificates(domain)) > 0
}

// current is the certificate served for domain, with its leaf; nil while there is
// none.
func (a *ACME) current(domain string) *certmagic.Certificate {
	for _, c := range a.cache.AllMatchingCertificates(domain) {
		if c.Leaf != nil {
			return &c
		}
	}
	return nil
}

// reason says why domain has no certificate yet.
func (a *ACME) reason(domain string) string {
	a.mu.Lock()
	err := a.errs[domain]
	a.mu.Unlock()
	r := fmt.Sprintf("obtaining a certificate for %s from %s", domain, a.dir)
	if err != nil {
		r += ": " + err.Error()
	}
	return r
}

// Pending says why some domains have no certificate yet, one reason each, joined
// by "; "; "" when each has one.
func (a *ACME) Pending() string {
	var out []string
	for _, d := range a.domains {
		if !a.has(d) {
			out = append(out, a.reason(d))
		}
	}
	return strings.Join(out, "; ")
}

// Infos describes the certificates obtained, in the order of the domains; one whose
// last renewal failed says why (RenewalError) until a renewal succeeds.
func (a *ACME) Infos() []Info {
	var out []Info
	seen := map[string]bool{}
	for _, d := range a.domains {
		for _, c := range a.cache.AllMatchingCertificates(d) {
			if seen[c.Hash()] || c.Leaf == nil {
				continue
			}
			seen[c.Hash()] = true
			in := infoOf(c.Leaf, c.Names)
			in.RenewalError = a.renewalError(d)
			out = append(out, in)
			break
		}
	}
	return out
}

// renewalError says why the last attempt to renew domain's certificate failed; ""
// when none did since one succeeded.
func (a *ACME) renewalError(domain string) string {
	a.mu.Lock()
	err := a.errs[domain]
	a.mu.Unlock()
	if err == nil {
		return ""
	}
	return fmt.Sprintf("renewing the certificate for %s from %s: %v", domain, a.dir, err)
}

// HandleHTTPChallenge answers r if it is an ACME CA's http-01 challenge request
// (RFC 8555 section 8.3) for a challenge under way in this process, and reports
// whether it did.
func (a *ACME) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return a.issuer.HandleHTTPChallenge(w, r)
}

// Interface guards
var (
	_ Source = (*Store)(nil)
	_ Source = (*ACME)(nil)
)
