package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Listener is a client listener beside load_balancer_port's (DESIGN section 4.2):
// plaintext HTTP/1.1, TLS (HTTP/2 and HTTP/1.1 by ALPN), plaintext that also speaks
// HTTP/2 by prior knowledge (h2c), or plaintext that redirects every request to https.
// Every listener serves the same routes.
type Listener struct {
	// Addr is host:port (":8443" for every interface).
	Addr string `json:"addr"`
	// TLS makes the listener terminate TLS with these certificates.
	TLS *ListenerTLS `json:"tls"`
	// RedirectHTTPS answers every request with 308 to the same host and URI on https.
	RedirectHTTPS bool `json:"redirect_https"`
	// H2C also speaks HTTP/2 without TLS, to clients that know it does (prior
	// knowledge), as gRPC clients inside a cluster do.
	H2C bool `json:"h2c"`
	// HTTP2 offers h2 by ALPN on a TLS listener (default true).
	HTTP2 bool `json:"http2"`
}

// listenerFields has Listener's fields without its unmarshaler.
type listenerFields Listener

// UnmarshalJSONFrom reads a listener, with http2 on unless it says otherwise.
func (l *Listener) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	f := listenerFields{HTTP2: true}
	if err := json.UnmarshalDecode(dec, &f); err != nil {
		return err
	}
	*l = Listener(f)
	return nil
}

// ListenerTLS is a listener's TLS: its certificates, from files or from an ACME CA,
// and the oldest version it takes. It has either Certificates or ACME.
type ListenerTLS struct {
	// Certificates are PEM pairs; SNI chooses among them by their names (exact,
	// then wildcard), and a client without SNI or with an unknown name gets the
	// first.
	Certificates []CertificateFiles `json:"certificates"`
	// ACME obtains the certificates from an ACME CA and renews them, instead of
	// reading them from files.
	ACME *ACME `json:"acme"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion string `json:"min_version"`
}

// listenerTLSFields has ListenerTLS's fields without its unmarshaler.
type listenerTLSFields ListenerTLS

// UnmarshalJSONFrom reads a listener's TLS, with min_version 1.2 unless given.
func (t *ListenerTLS) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	f := listenerTLSFields{MinVersion: "1.2"}
	if err := json.UnmarshalDecode(dec, &f); err != nil {
		return err
	}
	*t = ListenerTLS(f)
	return nil
}

// ACME is a TLS listener's certificates obtained and renewed automatically from an
// ACME certificate authority (RFC 8555), such as Let's Encrypt: one certificate per
// domain, kept in Storage across restarts.
type ACME struct {
	// Domains are the names to obtain certificates for; SNI chooses among them, and
	// a client without SNI or with a name not listed gets the first's.
	Domains []string `json:"domains"`
	// Email is the ACME account's contact, for the CA's notices (default none).
	Email string `json:"email"`
	// Directory is the CA's ACME directory URL (default LetsEncrypt, Let's
	// Encrypt's production CA).
	Directory string `json:"directory"`
	// CARoots is a PEM file of the roots to verify the CA's own HTTPS certificate
	// against, for a private CA, resolved against the config file's directory
	// (default "": the system's roots).
	CARoots string `json:"ca_roots"`
	// Storage is the directory that keeps the ACME account and the certificates
	// across restarts, resolved against the config file's directory (default
	// "acme/").
	Storage string `json:"storage"`
	// Challenges are the ways offered to prove control of a domain (default both):
	// "tls-alpn-01", answered by the listener itself, and "http-01", answered by the
	// plaintext listeners of listeners (the CA asks on ports 443 and 80).
	Challenges []string `json:"challenges"`
}

// LetsEncrypt is Let's Encrypt's production ACME directory, the default CA.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// The ACME challenges a listener can answer (RFC 8737, RFC 8555 section 8.3).
const (
	ChallengeTLSALPN = "tls-alpn-01"
	ChallengeHTTP    = "http-01"
)

// acmeFields has ACME's fields without its unmarshaler.
type acmeFields ACME

// UnmarshalJSONFrom reads a listener's ACME settings and fills in the defaults of
// those left out or empty.
func (a *ACME) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var f acmeFields
	if err := json.UnmarshalDecode(dec, &f); err != nil {
		return err
	}
	if f.Directory == "" {
		f.Directory = LetsEncrypt
	}
	if f.Storage == "" {
		f.Storage = "acme/"
	}
	if f.Challenges == nil {
		f.Challenges = []string{ChallengeTLSALPN, ChallengeHTTP}
	}
	*a = ACME(f)
	return nil
}

// Offers reports whether a lists the challenge ch.
func (a *ACME) Offers(ch string) bool { return slices.Contains(a.Challenges, ch) }

// CertificateFiles names a certificate chain and its key, PEM files resolved against
// the config file's directory.
type CertificateFiles struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// TLSVersion is the crypto/tls version of min_version.
func (t *ListenerTLS) TLSVersion() uint16 {
	if t.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// Resolve is path resolved against the config file's directory when it is relative.
func (c *Config) Resolve(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(c.Path), path)
}

// listeners checks the listeners: addresses, one kind each, readable certificates.
func (v *validator) listeners(c *Config) {
	seen := map[string]int{}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		_, port, err := net.SplitHostPort(l.Addr)
		v.check(err == nil && port != "", key+".addr", "must be host:port (\":8443\" for every interface), got %q", l.Addr)
		if j, dup := seen[l.Addr]; dup && l.Addr != "" {
			v.check(false, key+".addr", "%q is listeners[%d]'s too", l.Addr, j)
		}
		seen[l.Addr] = i
		kinds := 0
		for _, on := range []bool{l.TLS != nil, l.RedirectHTTPS, l.H2C} {
			if on {
				kinds++
			}
		}
		v.check(kinds <= 1, key, "takes one of tls, redirect_https and h2c: a TLS listener offers HTTP/2 by ALPN, and a redirecting one serves nothing")
		if l.TLS == nil {
			continue
		}
		t := l.TLS
		v.check(t.MinVersion == "1.2" || t.MinVersion == "1.3", key+".tls.min_version", `must be "1.2" or "1.3", got %q`, t.MinVersion)
		switch {
		case t.ACME != nil && len(t.Certificates) > 0:
			v.check(false, key+".tls", "takes certificates or acme, not both: a listener's certificates come from files or from an ACME CA")
			continue
		case t.ACME != nil:
			v.acme(c, key+".tls.acme", t.ACME)
			continue
		}
		v.check(len(t.Certificates) > 0, key+".tls", "needs certificates (at least one {\"cert\", \"key\"} pair of PEM files) or acme (certificates obtained from an ACME CA)")
		for j, cf := range t.Certificates {
			ck := fmt.Sprintf("%s.tls.certificates[%d]", key, j)
			if cf.Cert == "" || cf.Key == "" {
				v.check(false, ck, "needs both cert and key (PEM files)")
				continue
			}
			_, err := tls.LoadX509KeyPair(c.Resolve(cf.Cert), c.Resolve(cf.Key))
			v.check(err == nil, ck, "cannot be loaded: %v", err)
		}
	}
}

// acme checks a listener's ACME settings, under key.
func (v *validator) acme(c *Config, key string, a *ACME) {
	v.check(len(a.Domains) > 0, key+".domains", "lists no domain: give the names to obtain a certificate for")
	seen := map[string]int{}
	for i, d := range a.Domains {
		dk := fmt.Sprintf("%s.domains[%d]", key, i)
		name := strings.ToLower(d)
		if j, dup := seen[name]; dup {
			v.check(false, dk, "%q is domains[%d] too", d, j)
		} else {
			seen[name] = i
		}
		switch {
		case strings.HasPrefix(d, "*."):
			v.check(false, dk, "%q is a wildcard, which only the dns-01 challenge can prove, and switchyard answers tls-alpn-01 and http-01: list each name", d)
		case net.ParseIP(d) == nil && !isDNSName(d):
			v.check(false, dk, "must be a DNS name such as \"lb.example.com\" (no scheme, port or path), got %q", d)
		}
	}
	if a.Email != "" {
		m, err := mail.ParseAddress(a.Email)
		v.check(err == nil && m.Address == a.Email, key+".email", "must be an email address (ops@example.com), got %q", a.Email)
	}
	u, err := url.Parse(a.Directory)
	v.check(err == nil && u.Scheme == "https" && u.Host != "", key+".directory", "must be the https:// URL of the CA's ACME directory (default %s), got %q", LetsEncrypt, a.Directory)
	if a.CARoots != "" {
		pem, err := os.ReadFile(c.Resolve(a.CARoots))
		switch {
		case err != nil:
			v.check(false, key+".ca_roots", "cannot be read: %v", err)
		default:
			v.check(x509.NewCertPool().AppendCertsFromPEM(pem), key+".ca_roots", "%s holds no PEM certificate", a.CARoots)
		}
	}
	v.check(len(a.Challenges) > 0, key+".challenges", "lists no challenge: give %q, %q or both", ChallengeTLSALPN, ChallengeHTTP)
	for i, ch := range a.Challenges {
		v.check(ch == ChallengeTLSALPN || ch == ChallengeHTTP, fmt.Sprintf("%s.challenges[%d]", key, i), "must be %q or %q, got %q", ChallengeTLSALPN, ChallengeHTTP, ch)
	}
	if len(a.Challenges) > 0 && !a.Offers(ChallengeTLSALPN) && c.ChallengeListener() < 0 {
		v.check(false, key+".challenges", "offers only %q, which a plaintext listener of listeners answers, and there is none: add one (such as {\"addr\": \":80\", \"redirect_https\": true}) or offer %q", ChallengeHTTP, ChallengeTLSALPN)
	}
}

// ChallengeListener is the index in c.Listeners of the first plaintext listener,
// the one that answers ACME http-01 challenges on its port; -1 when there is none.
func (c *Config) ChallengeListener() int {
	for i, l := range c.Listeners {
		if l.TLS == nil {
			return i
		}
	}
	return -1
}

// isDNSName reports whether s reads as a DNS name: dot-separated labels of
// letters, digits and hyphens, none empty or longer than 63 bytes.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
