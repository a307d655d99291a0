//go:build unix

package main

// What operators use on day one: runtime control, metrics, the access log and the
// command line (DESIGN section 8).

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// setState posts {"url": url, "state": state} to the admin address.
func (l *lbInstance) setState(t *testing.T, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(l.admin+"/backends/state", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readBody(t, resp)
}

func TestDrainAndReadyAtRunTime(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b), "health_check": fastChecks(nil)})

	code, body := lb.setState(t, `{"url": "`+b+`", "state": "drain"}`)
	var entry struct{ State, Reason string }
	if err := json.Unmarshal([]byte(body), &entry); code != 200 || err != nil || entry.State != "drain" {
		t.Fatalf("drain = %d %s, want 200 with the backend's JSON in state drain", code, body)
	}
	if counts := countBy(t, postMany(lb.url+"/requests", 60, 4)); counts[hostOf(b)] != 0 {
		t.Errorf("the drained backend served %d of 60", counts[hostOf(b)])
	}
	// A reload that keeps the backend keeps its state.
	cfg := lb.cfg
	section(cfg, "load_balancer")["retries"] = 1
	lb.applied(t, lb.save(t, cfg))
	if state, reason, _, _ := lb.backendStatus(t, b); state != "drain" || !strings.Contains(reason, "drain") {
		t.Errorf("after a reload: %s %q, want still drain", state, reason)
	}
	if counts := countBy(t, postMany(lb.url+"/requests", 60, 4)); counts[hostOf(b)] != 0 {
		t.Errorf("after a reload the drained backend served %d of 60", counts[hostOf(b)])
	}
	if code, body := lb.setState(t, `{"url": "`+b+`", "state": "ready"}`); code != 200 || !strings.Contains(body, `"state":"up"`) {
		t.Errorf("ready = %d %s, want 200 and state up", code, body)
	}
	if counts := countBy(t, postMany(lb.url+"/requests", 60, 4)); counts[hostOf(b)] == 0 {
		t.Errorf("the backend made ready served none of 60")
	}
	if !strings.Contains(lb.Log(), "backend drain: backend="+b) {
		t.Errorf("the log does not tell of the drain")
	}
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"url": "http://127.0.0.1:1", "state": "drain"}`, 404},
		{`{"url": "` + b + `", "state": "sleep"}`, 400},
		{`{"url": "` + b + `"`, 400},
		{`not json`, 400},
	} {
		if code, body := lb.setState(t, tc.body); code != tc.want || !strings.Contains(body, `"error"`) {
			t.Errorf("POST %s = %d %s, want %d with a JSON error", tc.body, code, body, tc.want)
		}
	}
}

func TestMetricsAfterShedAndEdits(t *testing.T) {
	_, a := startBackend(t, "-work", "300ms", "-workers", "64")
	lb := startCore(t, map[string]any{
		"servers":    backendsConfig(a),
		"threadpool": map[string]any{"min_workers": 1, "max_workers": 1, "queue_capacity": 1, "queue_timeout": "30s"},
	})
	answers := postMany(lb.url+"/requests", 8, 8)
	var ok, shed int
	for _, a := range answers {
		switch a.status {
		case 200:
			ok++
		case 503:
			shed++
		}
	}
	if ok == 0 || shed == 0 {
		t.Fatalf("%d served, %d shed: want both", ok, shed)
	}
	// One refused edit, one applied.
	writeFile(t, lb.path, "{ broken", 0o644)
	waitUntil(t, "the refused edit", func() bool { _, e := lb.generation(t); return e != "" })
	cfg := lb.cfg
	section(cfg, "load_balancer")["retries"] = 1
	lb.applied(t, lb.save(t, cfg))

	resp, err := http.Get(lb.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text := readBody(t, resp)
	for _, want := range []string{
		`lb_request_duration_seconds_bucket{backend="` + a + `",le="0.5"}`,
		`lb_request_duration_seconds_count{backend="` + a + `"}`,
		`lb_requests_total{backend="` + a + `",code="200"} ` + itoa(ok),
		`lb_requests_total{backend="",code="503"} ` + itoa(shed),
		`lb_config_reloads_total{result="applied"} 1`,
		`lb_config_reloads_total{result="refused"} 1`,
		`lb_backend_ejections_total{backend="` + a + `"} 0`,
		`lb_backend_state{backend="` + a + `",state="up"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestAccessLogOneLinePerRequest(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a),
		"load_balancer": map[string]any{"access_log": logPath}})
	countBy(t, postMany(lb.url+"/requests", 20, 4))
	resp, err := http.Get(lb.url + "/echo-headers?x=1")
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)

	var lines []string
	waitUntil(t, "21 access log lines", func() bool {
		data, _ := os.ReadFile(logPath)
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		return len(lines) >= 21
	})
	if len(lines) != 21 {
		t.Fatalf("%d access log lines for 21 requests:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	// Data-plane processes each write their own lines, so lines of requests made
	// within FlushEvery of each other may come in another order.
	gets := 0
	for _, l := range lines {
		if strings.Contains(l, `method="GET"`) {
			gets++
			if !strings.Contains(l, `method="GET" path="/echo-headers?x=1" status=200`) {
				t.Errorf("line %q, want the GET with its query", l)
			}
			continue
		}
		for _, want := range []string{`method="POST"`, `path="/requests"`, "status=200", "backend=" + a, "client=127.0.0.1", "attempts=1", "bytes_out="} {
			if !strings.Contains(l, want) {
				t.Errorf("access log line %q lacks %s", l, want)
			}
		}
	}
	if gets != 1 {
		t.Errorf("%d lines of the GET, want 1", gets)
	}
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	good, broken := filepath.Join(dir, "good.json"), filepath.Join(dir, "broken.json")
	writeFile(t, good, `{"load_balancer": {"retries": 1}}`, 0o644)
	writeFile(t, broken, "{\n  \"threadpool\": {\"max_workers\": 5,}\n}", 0o644)
	run := func(args ...string) (string, int) {
		out, err := exec.Command(coreBin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-check", "-config", good}, 0, []string{"good.json: ok"}},
		{[]string{"-check", "-config", broken}, 1, []string{"broken.json:2:", "syntax error"}},
		{[]string{"-version"}, 0, []string{"switchyard "}},
		{[]string{"-h"}, 0, []string{"-check", "-config", "-version", "-log-level", "reloads it on every edit"}},
		{[]string{"-no-such-flag"}, 2, []string{"flag provided but not defined"}},
		{[]string{"-config", good, "stray"}, 2, []string{`unexpected argument "stray"`}},
	} {
		out, code := run(tc.args...)
		if code != tc.code {
			t.Errorf("core %v exited %d, want %d:\n%s", tc.args, code, tc.code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("core %v printed %q, want it to contain %q", tc.args, out, w)
			}
		}
	}
}

func TestStartLogAndGroupSIGTERM(t *testing.T) {
	_, a := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(a)})
	sc := bufio.NewScanner(strings.NewReader(lb.Log()))
	var start string
	for sc.Scan() {
		if strings.Contains(sc.Text(), "starting: version=") {
			start = sc.Text()
		}
	}
	if !strings.Contains(start, "pid="+itoa(lb.cmd.Process.Pid)) || !strings.Contains(start, "config=") {
		t.Errorf("start-up line %q, want the version, the PID and the config path", start)
	}
	if p := lb.status(t).Process; p.PID != lb.cmd.Process.Pid || p.Version == "" {
		t.Errorf("status process = %+v, want the core's PID %d and its version", p, lb.cmd.Process.Pid)
	}
	// timeout(1) and systemd signal the whole process group: a normal stop.
	if code := lb.stopGroup(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM to the process group, want 0", code)
	}
	if log := lb.Log(); strings.Contains(log, "[ERROR]") {
		t.Errorf("a stop by the process group logged an error:\n%s", log)
	}
}

// stopGroup sends SIGTERM to p's process group, as timeout(1) and systemd do, and
// returns p's exit code.
func (p *proc) stopGroup(t *testing.T) int {
	t.Helper()
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("still running 60s after SIGTERM to its group")
	}
	return p.cmd.ProcessState.ExitCode()
}
