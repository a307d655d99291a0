package exchange

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/switchyard-lb/switchyard/core/strategy"
)

func TestErrorBodyIsJSONWhateverTheMessage(t *testing.T) {
	for _, msg := range []string{
		"no healthy backend available",
		"tenant \"a\" has no backend",
		"control \x01\x1f bytes and a tab\t",
		"invalid UTF-8 \xff\xfe",
		"a line\nbreak and a </script>",
	} {
		body := ErrorBody(CodeNoBackend, msg)
		var got struct{ Error, Code string }
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("ErrorBody(%q) = %s, not JSON: %v", msg, body, err)
			continue
		}
		if got.Code != CodeNoBackend || body[len(body)-1] != '\n' {
			t.Errorf("ErrorBody(%q) = %s, want code %s and a final newline", msg, body, CodeNoBackend)
		}
		if msg[:5] != "inval" && got.Error != msg {
			t.Errorf("ErrorBody(%q) decodes to %q, want the message", msg, got.Error)
		}
	}
}

func TestNoBackendCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{strategy.ErrNoBackend, CodeNoBackend},
		{fmt.Errorf("%w: tenant", strategy.ErrNoBackend), CodeNoBackend},
		{fmt.Errorf("%w: plugin down", strategy.ErrStrategyFailed), CodeStrategyFailed},
		{errors.New("other"), CodeNoBackend},
	} {
		if got := NoBackendCode(tc.err); got != tc.want {
			t.Errorf("NoBackendCode(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestHeaderRules(t *testing.T) {
	for _, tc := range []struct {
		name                                          string
		hopReq, hopResp, forwarded, protected, length bool
	}{
		{"Connection", true, true, false, false, false},
		{"keep-alive", true, true, false, false, false},
		{"TE", true, true, false, false, false},
		{"Trailer", true, false, false, false, false},
		{"Upgrade", true, true, false, false, false},
		{"Proxy-Connection", true, true, false, false, false},
		{"Proxy-Authenticate", true, true, false, false, false},
		{"Proxy-Authorization", true, true, false, false, false},
		{"X-Forwarded-For", false, false, true, true, false},
		{"x-forwarded-host", false, false, true, true, false},
		{"X-Forwarded-Proto", false, false, true, true, false},
		{"Forwarded", false, false, true, true, false},
		{"Host", false, false, false, true, false},
		{"Content-Length", false, false, false, true, true},
		{"Transfer-Encoding", false, false, false, true, false},
		{"Content-Type", false, false, false, false, false},
		{"X-Trailer", false, false, false, false, false},
	} {
		n := []byte(tc.name)
		if got := HopByHop(n, true); got != tc.hopReq {
			t.Errorf("HopByHop(%s, request) = %v, want %v", tc.name, got, tc.hopReq)
		}
		if got := HopByHop(n, false); got != tc.hopResp {
			t.Errorf("HopByHop(%s, answer) = %v, want %v", tc.name, got, tc.hopResp)
		}
		if got := Forwarded(n); got != tc.forwarded {
			t.Errorf("Forwarded(%s) = %v, want %v", tc.name, got, tc.forwarded)
		}
		if got := Protected(n); got != tc.protected {
			t.Errorf("Protected(%s) = %v, want %v", tc.name, got, tc.protected)
		}
		if got := ContentLength(n); got != tc.length {
			t.Errorf("ContentLength(%s) = %v, want %v", tc.name, got, tc.length)
		}
	}
}

func TestIdempotent(t *testing.T) {
	for m, want := range map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true,
		"POST": false, "PATCH": false, "CONNECT": false, "get": false} {
		if got := Idempotent([]byte(m)); got != want {
			t.Errorf("Idempotent(%s) = %v, want %v", m, got, want)
		}
	}
}
