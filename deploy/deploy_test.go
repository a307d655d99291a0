package deploy

// What can be checked of the deployment files without Docker or systemd: the
// Dockerfile's stages, user, build flags and copied config; that the container's
// config is one the core accepts and reaches its admin port from outside; the systemd
// unit's start, reload and stop; the logrotate snippet's file and signal.

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/lb"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY...
	args string
}

// stage is one FROM and the instructions after it.
type stage struct {
	from, name string
	body       []instruction
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before the first FROM", path, in.cmd)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue // comments (and parser directives) may sit inside continuations
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

func (s stage) all(cmd string) []string {
	var args []string
	for _, in := range s.body {
		if in.cmd == cmd {
			args = append(args, in.args)
		}
	}
	return args
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, run := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:") || build.name == "" {
		t.Errorf("first stage FROM %s AS %q, want a named golang build stage", build.from, build.name)
	}

	var built bool
	for _, r := range build.all("RUN") {
		if strings.Contains(r, "go build") {
			built = true
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./core"} {
				if !strings.Contains(r, want) {
					t.Errorf("build command %q lacks %s", r, want)
				}
			}
		}
	}
	if !built {
		t.Error("the build stage runs no go build")
	}

	// The runtime stage takes the binary from the build stage, and config.json from
	// a file of the repository (the build context is its root).
	var binary, cfg bool
	for _, c := range run.all("COPY") {
		f := strings.Fields(c)
		if len(f) < 2 {
			t.Errorf("COPY %s: want a source and a destination", c)
			continue
		}
		src, dst := f[len(f)-2], f[len(f)-1]
		switch {
		case slices.Contains(f, "--from="+build.name) && dst == "/usr/local/bin/switchyard":
			binary = true
		case dst == "/etc/switchyard/config.json":
			cfg = true
			if _, err := os.Stat(filepath.Join("..", filepath.FromSlash(src))); err != nil {
				t.Errorf("COPY %s: the config is not in the repository: %v", c, err)
			}
		}
	}
	if !binary {
		t.Error("the runtime stage does not copy the binary from the build stage to /usr/local/bin/switchyard")
	}
	if !cfg {
		t.Error("the runtime stage copies no config to /etc/switchyard/config.json")
	}

	// A non-root user: an explicit USER, or the distroless :nonroot image's default.
	users := run.all("USER")
	if len(users) == 0 {
		if !strings.HasSuffix(run.from, ":nonroot") {
			t.Errorf("runtime stage FROM %s sets no USER", run.from)
		}
	} else if u, _, _ := strings.Cut(users[len(users)-1], ":"); u == "root" || u == "0" {
		t.Errorf("runtime stage runs as USER %s", users[len(users)-1])
	}

	ep := run.all("ENTRYPOINT")
	if len(ep) != 1 {
		t.Fatalf("runtime stage has %d ENTRYPOINTs, want 1", len(ep))
	}
	var argv []string
	if err := json.Unmarshal([]byte(ep[0]), &argv); err != nil {
		t.Fatalf("ENTRYPOINT %s is not the exec (JSON) form: %v", ep[0], err)
	}
	if want := []string{"/usr/local/bin/switchyard", "-config", "/etc/switchyard/config.json"}; !slices.Equal(argv, want) {
		t.Errorf("ENTRYPOINT %q, want %q", argv, want)
	}

	// The ports of the bundled container config are exposed.
	var exposed []string
	for _, e := range run.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(e)...)
	}
	c := containerConfig(t)
	_, adminPort, _ := net.SplitHostPort(c.LoadBalancer.AdminAddr)
	for _, p := range []string{strconv.Itoa(int(c.LoadBalancer.Port)), adminPort} {
		if !slices.Contains(exposed, p) && !slices.Contains(exposed, p+"/tcp") {
			t.Errorf("port %s is not exposed (EXPOSE %v)", p, exposed)
		}
	}
}

// containerConfig reads config.container.json as the core does.
func containerConfig(t *testing.T) *config.Config {
	t.Helper()
	data, err := os.ReadFile("config.container.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(data, "config.container.json")
	if err == nil {
		err = lb.Validate(c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestContainerConfig(t *testing.T) {
	data, err := os.ReadFile("config.container.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		LoadBalancer struct {
			AdminAddr *string `json:"admin_addr"`
		} `json:"load_balancer"`
		Servers struct {
			Backends []json.RawMessage `json:"backends"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("config.container.json: %v", err)
	}
	if raw.LoadBalancer.AdminAddr == nil {
		t.Fatal("config.container.json sets no admin_addr: the default 127.0.0.1:8001 is unreachable from outside the container")
	}
	if len(raw.Servers.Backends) == 0 {
		t.Error("config.container.json gives no example backends")
	}

	c := containerConfig(t) // strict, with defaults and validation
	host, _, err := net.SplitHostPort(c.LoadBalancer.AdminAddr)
	if err != nil {
		t.Fatalf("admin_addr %q: %v", c.LoadBalancer.AdminAddr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		t.Errorf("admin_addr %q is a loopback address: unreachable from outside the container", c.LoadBalancer.AdminAddr)
	}
	if c.LoadBalancer.Host != "" {
		if ip := net.ParseIP(c.LoadBalancer.Host); c.LoadBalancer.Host == "localhost" || ip != nil && ip.IsLoopback() {
			t.Errorf("host %q is a loopback address: clients outside the container cannot connect", c.LoadBalancer.Host)
		}
	}
}

// unit reads a systemd unit file: each section's keys with their values, in order
// (a key may repeat).
func unit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string][]string{}
	var cur map[string][]string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = map[string][]string{}
			sections[line[1:len(line)-1]] = cur
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil {
				t.Fatalf("%s:%d: %q is not key=value in a section", path, n+1, line)
			}
			cur[strings.TrimSpace(k)] = append(cur[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return sections
}

func TestSystemdUnit(t *testing.T) {
	u := unit(t, "switchyard.service")
	svc := u["Service"]
	if svc == nil {
		t.Fatal("no [Service] section")
	}
	last := func(k string) string {
		if v := svc[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}

	start := strings.Fields(last("ExecStart"))
	if len(start) < 3 || !filepath.IsAbs(start[0]) {
		t.Fatalf("ExecStart=%s, want an absolute path and -config FILE", last("ExecStart"))
	}
	if i := slices.Index(start, "-config"); i < 0 || i+1 >= len(start) || !filepath.IsAbs(start[i+1]) {
		t.Errorf("ExecStart=%s, want -config with an absolute path", last("ExecStart"))
	}

	reload := last("ExecReload")
	if !strings.Contains(reload, "kill") || !strings.Contains(reload, "-HUP") || !strings.Contains(reload, "$MAINPID") {
		t.Errorf("ExecReload=%s, want kill -HUP $MAINPID", reload)
	}

	if last("DynamicUser") != "yes" && last("User") == "" {
		t.Error("the unit runs as root: want DynamicUser=yes or User=")
	}
	if u := last("User"); u == "root" || u == "0" {
		t.Errorf("User=%s", u)
	}

	if s := last("KillSignal"); s != "" && s != "SIGTERM" {
		t.Errorf("KillSignal=%s, want SIGTERM (the core drains on it)", s)
	}
	// The stop timeout must outlast the drain.
	ts := last("TimeoutStopSec")
	if _, err := strconv.Atoi(ts); err == nil {
		ts += "s"
	}
	stop, err := time.ParseDuration(strings.ReplaceAll(ts, " ", ""))
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v", last("TimeoutStopSec"), err)
	}
	if drain := config.Default().LoadBalancer.Timeouts.Shutdown.D(); stop <= drain {
		t.Errorf("TimeoutStopSec=%s, want more than the default drain of %s", last("TimeoutStopSec"), drain)
	}
	if last("Restart") == "" {
		t.Error("no Restart=")
	}
}

// logrotateEntry is one entry of a logrotate configuration: its paths, directives and
// postrotate script.
type logrotateEntry struct {
	paths      []string
	directives []string
	postrotate string
}

func parseLogrotate(t *testing.T, path string) []logrotateEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries []logrotateEntry
	var cur *logrotateEntry
	var script *strings.Builder
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case script != nil && line == "endscript":
			cur.postrotate, script = script.String(), nil
		case script != nil:
			script.WriteString(line + "\n")
		case line == "" || strings.HasPrefix(line, "#"):
		case cur == nil && strings.HasSuffix(line, "{"):
			entries = append(entries, logrotateEntry{paths: strings.Fields(strings.TrimSuffix(line, "{"))})
			cur = &entries[len(entries)-1]
		case cur != nil && line == "}":
			cur = nil
		case cur != nil && line == "postrotate":
			script = &strings.Builder{}
		case cur != nil:
			cur.directives = append(cur.directives, strings.Fields(line)[0])
		default:
			t.Fatalf("%s:%d: %q outside an entry", path, n+1, line)
		}
	}
	if cur != nil || script != nil {
		t.Fatalf("%s: an entry or a script is not closed", path)
	}
	return entries
}

func TestLogrotate(t *testing.T) {
	entries := parseLogrotate(t, filepath.Join("logrotate", "switchyard"))
	if len(entries) != 1 || len(entries[0].paths) != 1 {
		t.Fatalf("%d entries, want one, for the access log", len(entries))
	}
	e := entries[0]
	logs := unit(t, "switchyard.service")["Service"]["LogsDirectory"]
	if path := e.paths[0]; len(logs) == 0 || filepath.Dir(path) != "/var/log/"+logs[len(logs)-1] {
		t.Errorf("rotates %s, want a file in the unit's LogsDirectory %v, under /var/log", path, logs)
	}
	has := func(d string) bool { return slices.Contains(e.directives, d) }
	// Rename, then signal: copytruncate loses the lines written between the copy and
	// the truncation; create would make the new file as root, before the core does.
	if has("copytruncate") || has("create") {
		t.Errorf("directives %v: want neither copytruncate nor create", e.directives)
	}
	if has("compress") && !has("delaycompress") {
		t.Error("compress without delaycompress: the renamed file takes lines until the core reopens")
	}
	script := e.postrotate
	if !strings.Contains(script, "USR1") || !(strings.Contains(script, "--kill-who=main") || strings.Contains(script, "--kill-whom=main") || strings.Contains(script, "MainPID")) {
		t.Errorf("postrotate %q, want SIGUSR1 to the core's main process", script)
	}

	// The path is one the core accepts as load_balancer.access_log.
	raw := `{"load_balancer": {"access_log": "` + e.paths[0] + `"}}`
	c, err := config.Parse([]byte(raw), "/etc/switchyard/config.json")
	if err == nil {
		err = lb.Validate(c)
	}
	if err != nil {
		t.Errorf("%s: %v", raw, err)
	}
}
