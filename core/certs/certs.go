// Package certs holds the certificates a TLS listener serves, from one of two
// sources. A Store has PEM pairs read from files, chosen by SNI (an exact name, then
// a wildcard; the first pair for a client without SNI or with a name none has), and
// read again when a file changes on disk; a pair that no longer loads is reported and
// keeps serving as it was. An ACME source obtains its certificates from an ACME CA
// and renews them (see ACME).
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-lb/switchyard/core/config"
)

// Pair is a certificate chain file and its key file.
type Pair struct{ Cert, Key string }

// Info describes a certificate for the status.
type Info struct {
	Names    []string
	Issuer   string
	NotAfter time.Time
	// RenewalError says why the last attempt to renew the certificate failed, until
	// one succeeds ("": none failed). An ACME source's only.
	RenewalError string
}

// Source is where a TLS listener's handshakes take their certificates from: a Store
// or an ACME source. Both are safe for use by multiple goroutines.
type Source interface {
	// GetCertificate chooses the certificate for a handshake (tls.Config's).
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
	// Infos describes the certificates that may be served.
	Infos() []Info
}

// Store is the certificates of one listener. It is safe for use by multiple
// goroutines; GetCertificate takes no lock.
type Store struct {
	pairs []Pair
	set   atomic.Pointer[set]
	mu    sync.Mutex // serializes reloads
}

// set is one generation of the store's certificates, indexed by name.
type set struct {
	certs []*tls.Certificate // in the order of the pairs
	exact map[string]*tls.Certificate
	wild  map[string]*tls.Certificate // "*.example.com" → its certificate
}

// Load reads every pair; it fails, naming the pair, if one does not load.
func Load(pairs []Pair) (*Store, error) {
	s := &Store{pairs: pairs}
	certs := make([]*tls.Certificate, len(pairs))
	for i, p := range pairs {
		c, err := loadPair(p)
		if err != nil {
			return nil, err
		}
		certs[i] = c
	}
	s.set.Store(index(certs))
	return s, nil
}

// loadPair reads a pair and parses its leaf.
func loadPair(p Pair) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		return nil, fmt.Errorf("certificate %s with key %s: %w", p.Cert, p.Key, err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", p.Cert, err)
		}
	}
	return &c, nil
}

// index builds a set: each certificate under each of its DNS names (the subject's
// common name when it has none); an earlier pair wins a name two pairs share.
func index(certs []*tls.Certificate) *set {
	st := &set{certs: certs, exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for _, c := range certs {
		for _, name := range names(c) {
			m := st.exact
			if strings.HasPrefix(name, "*.") {
				m = st.wild
			}
			if _, ok := m[name]; !ok {
				m[name] = c
			}
		}
	}
	return st
}

// names are the DNS names c is for, in lower case.
func names(c *tls.Certificate) []string {
	if c.Leaf == nil {
		return nil
	}
	out := make([]string, 0, len(c.Leaf.DNSNames)+1)
	for _, n := range c.Leaf.DNSNames {
		out = append(out, strings.ToLower(n))
	}
	if len(out) == 0 && c.Leaf.Subject.CommonName != "" {
		out = append(out, strings.ToLower(c.Leaf.Subject.CommonName))
	}
	return out
}

// GetCertificate chooses the certificate for a handshake: the one named exactly by
// the client's SNI, else one whose wildcard covers it, else the first.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st := s.set.Load()
	if name := strings.ToLower(strings.TrimSuffix(hello.ServerName, ".")); name != "" {
		if c, ok := st.exact[name]; ok {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c, ok := st.wild["*"+name[i:]]; ok {
				return c, nil
			}
		}
	}
	return st.certs[0], nil
}

// Infos describes the certificates, in the order of the pairs.
func (s *Store) Infos() []Info {
	st := s.set.Load()
	out := make([]Info, 0, len(st.certs))
	for _, c := range st.certs {
		if c.Leaf != nil {
			out = append(out, infoOf(c.Leaf, names(c)))
		}
	}
	return out
}

// infoOf describes the certificate leaf, for names.
func infoOf(leaf *x509.Certificate, names []string) Info {
	issuer := leaf.Issuer.CommonName
	if issuer == "" {
		issuer = leaf.Issuer.String()
	}
	return Info{Names: names, Issuer: issuer, NotAfter: leaf.NotAfter.UTC()}
}

// Reload reads the pairs again: those that load replace their previous version,
// those that do not keep it, and their errors are returned, joined.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.set.Load()
	certs := append([]*tls.Certificate(nil), old.certs...)
	var errs []error
	changed := false
	for i, p := range s.pairs {
		c, err := loadPair(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !sameCert(c, certs[i]) {
			certs[i], changed = c, true
		}
	}
	if changed {
		s.set.Store(index(certs))
	}
	if len(errs) > 0 {
		return joinErrs(errs)
	}
	return nil
}

func sameCert(a, b *tls.Certificate) bool {
	if len(a.Certificate) != len(b.Certificate) {
		return false
	}
	for i := range a.Certificate {
		if string(a.Certificate[i]) != string(b.Certificate[i]) {
			return false
		}
	}
	return true
}

func joinErrs(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// Watch reads the pairs again each time one of their files changes on disk, until ctx
// ends; report hears each reload's result (nil: every pair loaded).
func (s *Store) Watch(ctx context.Context, report func(error)) error {
	changed := make(chan struct{}, 1)
	for _, p := range s.pairs {
		for _, path := range []string{p.Cert, p.Key} {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			w, err := config.Watch(path, data)
			if err != nil {
				return err
			}
			go w.Run(ctx)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-w.Changed:
						select {
						case changed <- struct{}{}:
						default:
						}
					case <-w.Errors:
					}
				}
			}()
		}
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				// The other file of a pair is often written just after the first.
				time.Sleep(100 * time.Millisecond)
				report(s.Reload())
			}
		}
	}()
	return nil
}
