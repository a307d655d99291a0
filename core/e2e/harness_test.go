//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/status"
)

// Programs built once for the whole package: the core, the test backend, and a
// strategy plugin built from its own module (testdata/testplugin).
var coreBin, serverBin, pluginBin string

// goroutineFront is the engine of the goroutine-per-connection front, the suite's
// second run (the event loop is the first, where it runs).
const goroutineFront = config.EngineNetHTTP

// The suite runs once per front: on the event loop (where this system has one) in
// this process, then in a child process with SWITCHYARD_TEST_ENGINE=goroutineFront,
// which startCore writes into every config it starts a core on. Setting
// SWITCHYARD_TEST_ENGINE yourself runs the suite on that front alone.
const engineEnv, binEnv = "SWITCHYARD_TEST_ENGINE", "SWITCHYARD_TEST_BIN"

// processesEnv sets load_balancer.processes in the event loop's run (default 2,
// whatever the number of CPUs); SWITCHYARD_TEST_PROCESSES=1 runs the suite with the
// event loop in the core's own process.
const processesEnv = "SWITCHYARD_TEST_PROCESSES"

func TestMain(m *testing.M) {
	if dir := os.Getenv(binEnv); dir != "" { // a later run: the programs are built
		coreBin, serverBin, pluginBin = filepath.Join(dir, "core"), filepath.Join(dir, "server"), filepath.Join(dir, "testplugin")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "lb-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	coreBin, serverBin, pluginBin = filepath.Join(dir, "core"), filepath.Join(dir, "server"), filepath.Join(dir, "testplugin")
	for _, b := range []struct{ out, dir, pkg string }{{coreBin, "..", "."}, {serverBin, "..", "../server/server.go"}, {pluginBin, "testdata/testplugin", "."}} {
		args := append(append([]string{"build"}, raceFlag...), "-o", b.out, b.pkg)
		cmd := exec.Command("go", args...)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	started := time.Now()
	code := m.Run()
	if os.Getenv(engineEnv) == "" && eventLoopEngine {
		fmt.Printf("=== the event loop's run took %v\n", time.Since(started).Round(time.Second))
		fmt.Printf("=== the same tests on the goroutine-per-connection front (%s)\n", goroutineFront)
		started = time.Now()
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = append(os.Environ(), engineEnv+"="+goroutineFront, binEnv+"="+dir)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "the %s front's run: %v\n", goroutineFront, err)
			code = max(code, 1)
		}
		fmt.Printf("=== the %s front's run took %v\n", goroutineFront, time.Since(started).Round(time.Second))
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// front is the engine this run's cores serve on: SWITCHYARD_TEST_ENGINE's, else the
// event loop where it runs.
func front() string {
	if e := os.Getenv(engineEnv); e != "" {
		return e
	}
	if eventLoopEngine {
		return config.EngineEventLoop
	}
	return goroutineFront
}

// onEventLoop reports whether this run's cores serve on the event loop.
func onEventLoop() bool { return front() == config.EngineEventLoop }

// onNetHTTP reports whether this run's cores serve on the goroutine-per-connection
// front, nethttp.
func onNetHTTP() bool { return !onEventLoop() }

// proc is a program started by a test; it is killed when the test ends.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	log    bytes.Buffer // stderr, then stdout after the first line
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// Log returns what the program wrote so far.
func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.log.Write(b)
}

// start runs bin and waits until a line of its output matches ready; it returns the
// first submatch of ready.
func start(t *testing.T, ready *regexp.Regexp, bin string, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	// Each program leads a process group of its own, as under a service manager, so
	// that a test can signal the group without signalling itself.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("output of %s %v:\n%s", filepath.Base(bin), args, p.Log())
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		sent := false
		for sc.Scan() {
			lockedWriter{p}.Write(append(sc.Bytes(), '\n'))
			if m := ready.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case s := <-found:
		return p, s
	case <-p.exited:
		t.Fatalf("%s exited before it was ready: %v\n%s", bin, p.err, p.Log())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60s:\n%s", bin, p.Log())
	}
	return nil, ""
}

var (
	serverReady = regexp.MustCompile(`^listening on (\S+)`)
	coreReady   = regexp.MustCompile(`listening: addr=(\S+)`)
	adminAddrRe = regexp.MustCompile(`admin=(\S+)`)
)

// startBackend runs the test backend on a free port and returns its base URL.
func startBackend(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	return startBackendOn(t, "0", args...)
}

// startBackendOn runs the test backend on port and returns its base URL.
func startBackendOn(t *testing.T, port string, args ...string) (*proc, string) {
	t.Helper()
	p, addr := start(t, serverReady, serverBin, append(args, port)...)
	return p, "http://" + addr
}

// lbInstance is a running core.
type lbInstance struct {
	*proc
	url, admin string
	path       string         // the config file it watches
	cfg        map[string]any // what path holds
}

// startCore writes cfg (a config.json whose load_balancer section gets a free loopback
// port and admin address unless it sets them) and runs the core on it.
func startCore(t *testing.T, cfg map[string]any) *lbInstance {
	t.Helper()
	lbSection, _ := cfg["load_balancer"].(map[string]any)
	if lbSection == nil {
		lbSection = map[string]any{}
		cfg["load_balancer"] = lbSection
	}
	defaults := map[string]any{"host": "127.0.0.1", "load_balancer_port": 0, "admin_addr": "127.0.0.1:0", "engine": front()}
	if onEventLoop() {
		defaults["processes"] = 2
		if n, err := strconv.Atoi(os.Getenv(processesEnv)); err == nil {
			defaults["processes"] = n
		}
	}
	for k, v := range defaults {
		if _, ok := lbSection[k]; !ok {
			lbSection[k] = v
		}
	}
	path := filepath.Join(t.TempDir(), "config.json")
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p, addr := start(t, coreReady, coreBin, "-config", path, "-log-level", "debug")
	inst := &lbInstance{proc: p, url: "http://" + addr, path: path, cfg: cfg}
	if m := adminAddrRe.FindStringSubmatch(p.Log()); m != nil {
		inst.admin = "http://" + m[1]
	}
	return inst
}

// backendsConfig is a servers section listing urls with weight 1.
func backendsConfig(urls ...string) map[string]any {
	list := make([]map[string]any, len(urls))
	for i, u := range urls {
		list[i] = map[string]any{"url": u, "weight": 1}
	}
	return map[string]any{"backends": list}
}

// status reads the core's status JSON from the admin address (or the client port
// when there is none).
func (l *lbInstance) status(t *testing.T) status.Status {
	t.Helper()
	url := l.url + "/queue/status"
	if l.admin != "" {
		url = l.admin + "/status"
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET status: %v", err)
	}
	defer resp.Body.Close()
	var st status.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding status: %v", err)
	}
	return st
}

// signal sends sig to the core and waits for it to exit, returning its exit code.
func (p *proc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60s after %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

// served is one answer through the proxy.
type served struct {
	status int
	server string // the backend named in the body, "" when none
	body   []byte
	header http.Header
	err    error
}

// post sends POST url and reads the whole answer.
func post(client *http.Client, url string) served {
	resp, err := client.Post(url, "application/json", nil)
	if err != nil {
		return served{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	var named struct {
		Server string `json:"server"`
	}
	_ = json.Unmarshal(body, &named)
	return served{status: resp.StatusCode, server: named.Server, body: body, header: resp.Header, err: err}
}

// postMany sends n POSTs to url from c goroutines and returns every answer.
func postMany(url string, n, c int) []served {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c}}
	out := make([]served, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for i := range next {
				out[i] = post(client, url)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// countBy counts answers by backend, failing the test on any transport error or non-200.
func countBy(t *testing.T, answers []served) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, a := range answers {
		if a.err != nil || a.status != 200 {
			t.Fatalf("answer = %d %s, err %v; want 200", a.status, a.body, a.err)
		}
		counts[a.server]++
	}
	return counts
}

// hostOf strips the scheme from a backend URL, as the backend names itself.
func hostOf(url string) string { return strings.TrimPrefix(url, "http://") }

// readBody reads and closes resp's body.
func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readServer returns the backend named in resp's JSON body.
func readServer(t *testing.T, resp *http.Response) string {
	t.Helper()
	var named struct {
		Server string `json:"server"`
	}
	if err := json.Unmarshal([]byte(readBody(t, resp)), &named); err != nil {
		t.Fatal(err)
	}
	return named.Server
}

// writeJSON writes v as JSON to path.
func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runCoreOnce runs the core on the config at path and returns its output once it
// exits (within a minute).
func runCoreOnce(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, coreBin, "-config", path).CombinedOutput()
	return string(out), err
}

func itoa(n int) string { return strconv.Itoa(n) }

const sighup = syscall.SIGHUP

// alive reports whether process pid exists.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// loadUntil sends requests from 8 goroutines until stop is closed and returns the
// answers that were not 200.
func loadUntil(t *testing.T, url string, stop <-chan struct{}) (sent *atomic.Int64, failures func() []served) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	var mu sync.Mutex
	var bad []served
	var wg sync.WaitGroup
	sent = &atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := post(client, url)
				sent.Add(1)
				if a.err != nil || a.status != 200 {
					mu.Lock()
					bad = append(bad, a)
					mu.Unlock()
				}
			}
		})
	}
	return sent, func() []served { wg.Wait(); return bad }
}

const sigterm = syscall.SIGTERM

// writeFile writes content to path with mode perm.
func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

// processesWith lists the command lines of this machine's processes that contain
// marker: from /proc where there is one, else from ps.
func processesWith(marker string) []string {
	var found []string
	if dirs, err := filepath.Glob("/proc/[0-9]*/cmdline"); err == nil && len(dirs) > 0 {
		for _, f := range dirs {
			b, err := os.ReadFile(f)
			if line := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})); err == nil && strings.Contains(line, marker) {
				found = append(found, line)
			}
		}
		return found
	}
	out, _ := exec.Command("ps", "-axo", "command").Output()
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, marker) {
			found = append(found, line)
		}
	}
	return found
}
