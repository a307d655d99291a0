package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
)

// BackendTLS is the TLS configuration of connections to c's https backends: verified
// against servers.ca when it is set, else the system's roots; servers.tls_skip_verify
// verifies nothing. It is nil when neither is set.
func BackendTLS(c *Config) (*tls.Config, error) {
	s := c.Servers
	if s.CA == "" && !s.TLSSkipVerify {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.TLSSkipVerify} //nolint:gosec // the operator's choice, documented as such
	if s.CA != "" {
		path := s.CA
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(c.Path), path)
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", path)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
