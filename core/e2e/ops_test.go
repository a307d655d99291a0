//go:build unix

package e2e

// What operators use on day one: runtime control, metrics, the access log and the
// command line (DESIGN section 8).

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange"
)

// setState posts body ({"url": url, "state": state}) to /backends/state on the admin
// address.
func (l *lbInstance) setState(t *testing.T, body string) (int, string) {
	t.Helper()
	return l.adminPost(t, "/backends/state", body)
}

// setWeight posts body ({"url": url, "weight": n}) to /backends/weight on the admin
// address.
func (l *lbInstance) setWeight(t *testing.T, body string) (int, string) {
	t.Helper()
	return l.adminPost(t, "/backends/weight", body)
}

// adminPost posts body to path on the admin address and returns the answer.
func (l *lbInstance) adminPost(t *testing.T, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(l.admin+path, "application/json", strings.NewReader(body))
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

func TestWeightAtRunTime(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b), "load_balancer": map[string]any{"strategy": "weighted"}})
	// share is b's share of 400 sequential requests: one connection, so one
	// data-plane process, whose smooth weighted round robin gives shares within a
	// few picks of the weights'.
	share := func() float64 {
		t.Helper()
		return float64(countBy(t, postMany(lb.url+"/requests", 400, 1))[hostOf(b)]) / 400
	}
	weight := func() int {
		t.Helper()
		for _, e := range lb.status(t).Backends {
			if e.URL == b {
				return e.Weight
			}
		}
		t.Fatalf("no backend %s in status", b)
		return 0
	}
	if s := share(); s < 0.45 || s > 0.55 {
		t.Fatalf("b's share at weights 1:1 = %.3f, want 0.5", s)
	}

	code, body := lb.setWeight(t, `{"url": "`+b+`", "weight": 3}`)
	var entry struct {
		URL, State string
		Weight     int
	}
	if err := json.Unmarshal([]byte(body), &entry); code != 200 || err != nil || entry.URL != b || entry.Weight != 3 || entry.State != "up" {
		t.Fatalf("weight 3 = %d %s, want 200 with the backend's JSON at weight 3", code, body)
	}
	if s := share(); s < 0.68 || s > 0.82 {
		t.Errorf("b's share at weights 1:3 = %.3f, want 0.75 (strategy %+v)", s, lb.status(t).Strategy)
	}

	// A reload of another key keeps the weight set at run time.
	cfg := lb.cfg
	section(cfg, "load_balancer")["retries"] = 1
	lb.applied(t, lb.save(t, cfg))
	if w := weight(); w != 3 {
		t.Errorf("weight after a reload of another key = %d, want 3 still", w)
	}
	if s := share(); s < 0.68 || s > 0.82 {
		t.Errorf("b's share after the reload = %.3f, want 0.75 still (strategy %+v)", s, lb.status(t).Strategy)
	}

	// Weight 0 takes no new requests, as HAProxy's; the one pool may be named.
	if code, body := lb.setWeight(t, `{"url": "`+b+`", "weight": 0, "pool": "default"}`); code != 200 || !strings.Contains(body, `"weight":0`) {
		t.Fatalf("weight 0 = %d %s, want 200 and weight 0", code, body)
	}
	if counts := countBy(t, postMany(lb.url+"/requests", 60, 4)); counts[hostOf(b)] != 0 {
		t.Errorf("the backend of weight 0 served %d of 60", counts[hostOf(b)])
	}
	// As HAProxy shows it: a backend of weight 0 is drained (DESIGN 9: healthy exactly
	// when up).
	if state, reason, _, _ := lb.backendStatus(t, b); state != "drain" || !strings.Contains(reason, "weight set to 0") {
		t.Errorf("a backend of weight 0 is %s (%q), want drain, for its weight", state, reason)
	}

	// An edit of the backend's weight in the file replaces the one set at run time.
	servers := backendsConfig(a, b)
	servers["backends"].([]map[string]any)[1]["weight"] = 2
	cfg["servers"] = servers
	lb.applied(t, lb.save(t, cfg))
	if w := weight(); w != 2 {
		t.Errorf("weight after an edit of the file's weight = %d, want the file's 2", w)
	}
	if s := share(); s < 0.6 || s > 0.72 {
		t.Errorf("b's share at the file's weights 1:2 = %.3f, want 0.67 (strategy %+v)", s, lb.status(t).Strategy)
	}
	if !strings.Contains(lb.Log(), "backend weight set at run time: backend="+b+" weight=3") {
		t.Errorf("the log does not tell of the weight set")
	}

	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"url": "http://127.0.0.1:1", "weight": 1}`, 404},
		{`{"url": "` + b + `", "weight": 1, "pool": "other"}`, 404},
		{`{"url": "` + b + `", "weight": 257}`, 400},
		{`{"url": "` + b + `", "weight": -1}`, 400},
		{`{"url": "` + b + `", "weight": 1.5}`, 400},
		{`{"url": "` + b + `", "weight": "1"}`, 400},
		{`{"url": "` + b + `"}`, 400},
		{`{"url": "` + b + `", "weight": 1, "state": "drain"}`, 400},
		{`not json`, 400},
	} {
		if code, body := lb.setWeight(t, tc.body); code != tc.want || !strings.Contains(body, `"error"`) {
			t.Errorf("POST %s = %d %s, want %d with a JSON error", tc.body, code, body, tc.want)
		}
	}
	if w := weight(); w != 2 {
		t.Errorf("weight after refused requests = %d, want 2 unchanged", w)
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
		`lb_request_duration_seconds_bucket{backend="` + a + `",pool="default",le="0.5"}`,
		`lb_request_duration_seconds_count{backend="` + a + `",pool="default"}`,
		`lb_requests_total{backend="` + a + `",code="200",pool="default"} ` + itoa(ok),
		`lb_requests_total{backend="",code="503",pool=""} ` + itoa(shed),
		`lb_config_reloads_total{result="applied"} 1`,
		`lb_config_reloads_total{result="refused"} 1`,
		`lb_backend_ejections_total{backend="` + a + `",pool="default"} 0`,
		`lb_backend_state{backend="` + a + `",pool="default",state="up"} 1`,
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
			if !strings.Contains(l, `method="GET" path="/echo-headers?x=1" protocol=HTTP/1.1 status=200`) {
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

// logLine is an access log line in logfmt, as the README shows it.
var logLine = regexp.MustCompile(`^time=\S+ client=\S+ method="[^"]*" path="[^"]*" protocol=HTTP/1\.[01] status=\d+ backend=\S+ pool=\S+ bytes_in=\d+ bytes_out=\d+ duration=\d+\.\d{3}ms attempts=\d+$`)

// logLines counts the lines of the access log at path (none when it does not exist),
// failing the test on one that does not parse.
func logLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		if !strings.HasSuffix(line, "\n") {
			// The last line of a batch whose write is still under way: a reader
			// of a regular file may see part of a write (each batch is whole
			// lines, in one write).
			break
		}
		if !logLine.MatchString(strings.TrimSuffix(line, "\n")) {
			t.Fatalf("%s: malformed line %q", filepath.Base(path), line)
		}
		n++
	}
	return n
}

func TestAccessLogRotatedOnSIGUSR1(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	logPath := filepath.Join(t.TempDir(), "access.log")
	rotated := logPath + ".1"
	lb := startCore(t, map[string]any{"servers": backendsConfig(a), "load_balancer": map[string]any{"access_log": logPath}})

	stop := make(chan struct{})
	sent, failures := loadUntil(t, lb.url+"/requests", stop)
	waitUntil(t, "lines in the access log", func() bool { return logLines(t, logPath) > 100 })
	// As logrotate does: rename, then signal.
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := lb.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "lines in the new access log", func() bool { return logLines(t, logPath) > 0 })
	// Every process writes to the new file: the renamed one stops growing.
	at := sent.Load()
	waitUntil(t, "more requests", func() bool { return sent.Load() > at+300 })
	time.Sleep(2 * exchange.FlushEvery)
	old := logLines(t, rotated)
	at = sent.Load()
	waitUntil(t, "more requests", func() bool { return sent.Load() > at+300 })
	close(stop)
	if bad := failures(); len(bad) > 0 {
		t.Fatalf("%d requests failed during the rotation, first: %d %v", len(bad), bad[0].status, bad[0].err)
	}
	answered := int(sent.Load())
	var total int
	waitUntil(t, "a line for each request", func() bool {
		total = logLines(t, rotated) + logLines(t, logPath)
		return total >= answered
	})
	time.Sleep(2 * exchange.FlushEvery) // any line too many would show
	if total = logLines(t, rotated) + logLines(t, logPath); total != answered {
		t.Errorf("%d lines in the renamed and the new access log, want one per request: %d", total, answered)
	}
	if n := logLines(t, rotated); n != old {
		t.Errorf("the renamed access log grew from %d to %d lines after every process reopened", old, n)
	}
	if !strings.Contains(lb.Log(), "SIGUSR1: reopening the access log") {
		t.Errorf("the log does not tell of the reopen")
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
