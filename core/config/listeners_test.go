package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestACMEDefaults(t *testing.T) {
	for _, src := range []string{
		`{"listeners": [{"addr": ":443", "tls": {"acme": {"domains": ["lb.example.com"]}}}]}`,
		`{"listeners": [{"addr": ":443", "tls": {"acme": {"domains": ["lb.example.com"], "directory": "", "ca_roots": "", "storage": ""}}}]}`,
	} {
		c, err := parseValid(src)
		if err != nil {
			t.Fatalf("parseValid(%s): %v", src, err)
		}
		a := c.Listeners[0].TLS.ACME
		if a.Directory != LetsEncrypt || a.Storage != "acme/" || !slices.Equal(a.Challenges, []string{"tls-alpn-01", "http-01"}) || a.CARoots != "" {
			t.Errorf("parseValid(%s).listeners[0].tls.acme = %+v, want Let's Encrypt, acme/ and both challenges", src, a)
		}
		if c.Listeners[0].TLS.MinVersion != "1.2" || !c.Listeners[0].HTTP2 {
			t.Errorf("parseValid(%s): min_version %q, http2 %v; want 1.2 and true", src, c.Listeners[0].TLS.MinVersion, c.Listeners[0].HTTP2)
		}
	}
}

func TestACMEKeysRefused(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "roots.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	acme := func(fields string) string {
		return `{"listeners": [{"addr": ":443", "tls": {"acme": {` + fields + `}}}]}`
	}
	tests := []struct {
		name    string
		input   string
		wantErr []string // substrings of the error
	}{
		{"both sources", `{"listeners": [{"addr": ":443", "tls": {"certificates": [{"cert": "a.pem", "key": "a.key"}], "acme": {"domains": ["a.test"]}}}]}`,
			[]string{"listeners[0].tls:", "certificates or acme, not both"}},
		{"neither source", `{"listeners": [{"addr": ":443", "tls": {"min_version": "1.3"}}]}`,
			[]string{"listeners[0].tls:", "needs certificates", "or acme"}},
		{"no domain", acme(`"domains": []`), []string{"listeners[0].tls.acme.domains", "lists no domain"}},
		{"domains left out", acme(`"email": "ops@example.com"`), []string{"listeners[0].tls.acme.domains", "lists no domain"}},
		{"wildcard", acme(`"domains": ["*.example.com"]`), []string{"listeners[0].tls.acme.domains[0]", "wildcard", "dns-01"}},
		{"url as domain", acme(`"domains": ["a.test", "https://lb.example.com/"]`), []string{"listeners[0].tls.acme.domains[1]", "DNS name", `"https://lb.example.com/"`}},
		{"domain with port", acme(`"domains": ["lb.example.com:443"]`), []string{"listeners[0].tls.acme.domains[0]", "no scheme, port or path"}},
		{"duplicate domain", acme(`"domains": ["a.test", "A.test"]`), []string{"listeners[0].tls.acme.domains[1]", "domains[0] too"}},
		{"email", acme(`"domains": ["a.test"], "email": "ops at example.com"`), []string{"listeners[0].tls.acme.email", "email address"}},
		{"http directory", acme(`"domains": ["a.test"], "directory": "http://ca.internal/dir"`), []string{"listeners[0].tls.acme.directory", "https://"}},
		{"ca_roots missing", acme(`"domains": ["a.test"], "ca_roots": "no-such-roots.pem"`), []string{"listeners[0].tls.acme.ca_roots", "cannot be read"}},
		{"ca_roots not PEM", acme(`"domains": ["a.test"], "ca_roots": "` + notPEM + `"`), []string{"listeners[0].tls.acme.ca_roots", "holds no PEM certificate"}},
		{"no challenge", acme(`"domains": ["a.test"], "challenges": []`), []string{"listeners[0].tls.acme.challenges", "lists no challenge"}},
		{"unknown challenge", acme(`"domains": ["a.test"], "challenges": ["dns-01"]`), []string{"listeners[0].tls.acme.challenges[0]", `"tls-alpn-01" or "http-01"`, `"dns-01"`}},
		{"http-01 without a plaintext listener", acme(`"domains": ["a.test"], "challenges": ["http-01"]`),
			[]string{"listeners[0].tls.acme.challenges", "plaintext listener", "redirect_https"}},
		{"unknown key", acme(`"domains": ["a.test"], "domain": "b.test"`), []string{"listeners[0].tls.acme.domain", "unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRefused(t, tt.input, tt.wantErr) })
	}
}

func TestACMEAccepted(t *testing.T) {
	for _, src := range []string{
		// http-01 alone, answered on the redirecting listener.
		`{"listeners": [{"addr": ":443", "tls": {"acme": {"domains": ["lb.example.com", "www.example.com"], "email": "ops@example.com",
			"challenges": ["http-01"]}}}, {"addr": ":80", "redirect_https": true}]}`,
		// tls-alpn-01 alone needs no other listener; an IP address is a name too.
		`{"listeners": [{"addr": ":443", "tls": {"acme": {"domains": ["192.0.2.1"], "challenges": ["tls-alpn-01"],
			"directory": "https://ca.internal:14000/dir", "storage": "/var/lib/switchyard/acme"}}}]}`,
	} {
		if _, err := parseValid(src); err != nil {
			t.Errorf("parseValid(%s) = %v, want nil", src, err)
		}
	}
}

func TestChallengeListener(t *testing.T) {
	c, err := parseValid(`{"listeners": [{"addr": ":443", "tls": {"acme": {"domains": ["a.test"]}}},
		{"addr": ":8080", "h2c": true}, {"addr": ":80", "redirect_https": true}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ChallengeListener(); got != 1 {
		t.Errorf("ChallengeListener() = %d, want 1, the first plaintext listener", got)
	}
	c.Listeners = c.Listeners[:1]
	if got := c.ChallengeListener(); got != -1 {
		t.Errorf("ChallengeListener() without a plaintext listener = %d, want -1", got)
	}
}
