//go:build unix

package e2e

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An https backend behind a plaintext listener: served by this run's front (the event
// loop too, through its TLS bridge), verified against servers.ca, checked by health
// checks the same way.
func TestHTTPSBackendVerifiedAgainstServersCA(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls "+r.Header.Get("X-Forwarded-Proto")+" "+r.URL.Path)
	}))
	t.Cleanup(s.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "backend-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	// Without servers.ca the certificate is refused: 502 in the proxy's words (503
	// once health checks, which verify it the same way, take the backend down).
	servers := backendsConfig(s.URL)
	lb := startCore(t, map[string]any{"servers": servers, "health_check": fastChecks(nil)})
	resp, err := http.Get(lb.url + "/p")
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); !(resp.StatusCode == 502 && strings.Contains(body, "TLS handshake failed") || resp.StatusCode == 503) {
		t.Errorf("without servers.ca: %d %q, want 502 naming the TLS handshake, or 503", resp.StatusCode, body)
	}

	// An edit that adds servers.ca: the backend comes up and serves.
	servers["ca"] = ca
	writeJSON(t, lb.path, lb.cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(lb.url + "/p")
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode == 200 && body == "tls http /p" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with servers.ca: %d %q, want 200 %q", resp.StatusCode, body, "tls http /p")
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := lb.status(t)
	if len(st.Backends) != 1 || st.Backends[0].State != "up" {
		t.Errorf("backends %+v, want the https backend up by its health checks", st.Backends)
	}
	if len(st.Listeners) != 1 || st.Listeners[0].Front != front() {
		t.Errorf("listeners %+v, want one served by %s", st.Listeners, front())
	}
}
