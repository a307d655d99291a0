package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// BackendTLS is the TLS configuration of connections to the https backends of the
// pool ep of c: verified against the pool's ca when it is set, else the system's
// roots; tls_skip_verify verifies nothing. It is nil when neither is set. key is the
// same for two pools (or two loads) whose settings are the same, CA file content
// included, and differs otherwise.
func BackendTLS(c *Config, ep EffectivePool) (cfg *tls.Config, key string, err error) {
	if ep.CA == "" && !ep.TLSSkipVerify {
		return nil, "", nil
	}
	cfg = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: ep.TLSSkipVerify} //nolint:gosec // the operator's choice, documented as such
	key = fmt.Sprintf("skip=%t", ep.TLSSkipVerify)
	if ep.CA != "" {
		path := ep.CA
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(c.Path), path)
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("reading the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("%s holds no PEM certificate", path)
		}
		cfg.RootCAs = pool
		sum := sha256.Sum256(pem)
		key += " ca=" + hex.EncodeToString(sum[:])
	}
	return cfg, key, nil
}
