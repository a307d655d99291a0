//go:build unix

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// needProcesses skips a test of the data-plane processes where they do not run: on
// the goroutine-per-connection front, and in a run with SWITCHYARD_TEST_PROCESSES=1
// (the tests name their own number of processes, so that run would repeat them).
func needProcesses(t *testing.T) {
	t.Helper()
	if !onEventLoop() || os.Getenv(processesEnv) == "1" {
		t.Skip("data-plane processes belong to the event loop; tested in its run with processes")
	}
	if runtime.GOOS != "linux" {
		t.Skip("only Linux spreads the connections of one port over processes")
	}
}

var (
	planeLineRe = regexp.MustCompile(`data-plane process (?:serving|running): .*`)
	planeRe     = regexp.MustCompile(`\bplane=(\d+)`)
	pidRe       = regexp.MustCompile(`\bpid=(\d+)`)
)

// planePIDs returns the pid of each data-plane process, by index, that the log has
// announced last.
func planePIDs(log string) map[int]int {
	out := map[int]int{}
	for _, line := range planeLineRe.FindAllString(log, -1) {
		i, pid := planeRe.FindStringSubmatch(line), pidRe.FindStringSubmatch(line)
		if i != nil && pid != nil {
			n, _ := strconv.Atoi(i[1])
			out[n], _ = strconv.Atoi(pid[1])
		}
	}
	return out
}

// startHeld sends POST url on a connection of its own and returns the answer's channel.
func startHeld(url string) <-chan served {
	ch := make(chan served, 1)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() { ch <- post(client, url) }()
	return ch
}

func TestProcessesKeepLeastConnectionsExact(t *testing.T) {
	needProcesses(t)
	_, a := startBackend(t, "-work", "10s", "-workers", "64")
	_, b := startBackend(t, "-work", "10s", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b),
		"load_balancer": map[string]any{"processes": 2, "strategy": "leastconn"}})
	waitUntil(t, "two data-plane processes", func() bool { return len(planePIDs(lb.Log())) == 2 })

	// Ten requests, each on a new connection, which the kernel spreads over the two
	// processes; each starts once the one before is in flight. Counted per process,
	// least-connections would split each process's share; counted together, it
	// alternates exactly.
	var answers []<-chan served
	for i := range 10 {
		answers = append(answers, startHeld(lb.url+"/requests"))
		waitUntil(t, "the request in flight", func() bool {
			total := 0
			for _, b := range lb.status(t).Backends {
				total += b.Inflight
			}
			return total == i+1
		})
	}
	for _, b := range lb.status(t).Backends {
		if b.Inflight != 5 {
			t.Errorf("backend %s has %d requests in flight, want 5 of 10: %+v", b.URL, b.Inflight, lb.status(t).Backends)
		}
	}
	for _, ch := range answers {
		if a := <-ch; a.err != nil || a.status != 200 {
			t.Errorf("answer %d %s, %v; want 200", a.status, a.body, a.err)
		}
	}
	if st := lb.status(t); st.Pool.Admitted != 10 || st.Backends[0].Requests+st.Backends[1].Requests != 10 {
		t.Errorf("status after 10 requests: pool %+v, backends %+v; want them all counted once", st.Pool, st.Backends)
	}
}

func TestProcessesSharePoolLimits(t *testing.T) {
	needProcesses(t)
	_, u := startBackend(t, "-work", "10s", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u),
		"load_balancer": map[string]any{"processes": 2},
		"threadpool":    map[string]any{"min_workers": 1, "max_workers": 2, "queue_capacity": 0}})
	waitUntil(t, "two data-plane processes", func() bool { return len(planePIDs(lb.Log())) == 2 })
	var answers []<-chan served
	for range 2 {
		answers = append(answers, startHeld(lb.url+"/requests"))
	}
	waitUntil(t, "two requests busy", func() bool { return lb.status(t).Pool.Busy == 2 })
	// Every worker of the load balancer is busy, whichever process serves these.
	for range 6 {
		if a := <-startHeld(lb.url + "/requests"); a.status != 503 {
			t.Errorf("answer with both workers busy = %d %s, %v; want 503", a.status, a.body, a.err)
		}
	}
	for _, ch := range answers {
		if a := <-ch; a.status != 200 {
			t.Errorf("held request = %d %s, %v; want 200", a.status, a.body, a.err)
		}
	}
	if st := lb.status(t).Pool; st.ShedFull != 6 || st.Admitted != 2 {
		t.Errorf("pool status = %+v, want 2 admitted and 6 shed", st)
	}
}

func TestKilledDataPlaneProcessIsReplaced(t *testing.T) {
	needProcesses(t)
	_, u := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u), "load_balancer": map[string]any{"processes": 2}})
	waitUntil(t, "two data-plane processes", func() bool { return len(planePIDs(lb.Log())) == 2 })
	before := planePIDs(lb.Log())
	if err := syscall.Kill(before[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "process 0 replaced", func() bool {
		pid := planePIDs(lb.Log())[0]
		return pid != before[0] && alive(pid)
	})
	if !strings.Contains(lb.Log(), "data-plane process exited; starting another") {
		t.Errorf("the log does not tell of the dead process")
	}
	// New connections are served, by whichever process the kernel gives them to.
	for range 20 {
		if a := <-startHeld(lb.url + "/requests"); a.err != nil || a.status != 200 {
			t.Errorf("answer after the restart = %d %s, %v; want 200", a.status, a.body, a.err)
		}
	}
	if alive(before[1]) == false {
		t.Errorf("process 1 (pid %d) died with process 0", before[1])
	}
}

func TestProcessesFollowReloadsAndStop(t *testing.T) {
	needProcesses(t)
	_, u := startBackend(t, "-work", "0")
	cfg := map[string]any{"servers": backendsConfig(u), "load_balancer": map[string]any{"processes": 2}}
	lb := startCore(t, cfg)
	waitUntil(t, "two data-plane processes", func() bool { return len(planePIDs(lb.Log())) == 2 })
	first := planePIDs(lb.Log())

	// A live setting reaches every process: the status path moves.
	section(cfg, "load_balancer")["status_path"] = "/lb-status"
	lb.applied(t, lb.save(t, cfg))
	for range 12 {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get(lb.url + "/lb-status")
		if err != nil {
			t.Fatal(err)
		}
		if body := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(body, `"backends"`) {
			t.Errorf("GET /lb-status after the reload = %d %.80s, want the status JSON", resp.StatusCode, body)
		}
	}
	for i, pid := range first {
		if pid != planePIDs(lb.Log())[i] {
			t.Errorf("process %d changed (pid %d) for a live setting", i, pid)
		}
	}

	// Another number of processes starts a new group and drains the old one.
	section(cfg, "load_balancer")["processes"] = 3
	lb.applied(t, lb.save(t, cfg))
	waitUntil(t, "three processes, the old ones gone", func() bool {
		now := planePIDs(lb.Log())
		if len(now) != 3 {
			return false
		}
		for _, pid := range first {
			if alive(pid) {
				return false
			}
		}
		return true
	})
	third := planePIDs(lb.Log())
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if a := <-startHeld(lb.url + "/requests"); a.status != 200 {
				t.Errorf("answer with 3 processes = %d %s, %v", a.status, a.body, a.err)
			}
		})
	}
	wg.Wait()

	if code := lb.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	for i, pid := range third {
		if alive(pid) {
			t.Errorf("data-plane process %d (pid %d) outlived the core", i, pid)
		}
	}
}

func TestDeadDataPlaneProcessLeavesNoRequestInFlight(t *testing.T) {
	needProcesses(t)
	_, u := startBackend(t, "-work", "10s", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u), "load_balancer": map[string]any{"processes": 2}})
	waitUntil(t, "two data-plane processes", func() bool { return len(planePIDs(lb.Log())) == 2 })
	var answers []<-chan served
	for range 8 {
		answers = append(answers, startHeld(lb.url+"/requests"))
	}
	waitUntil(t, "8 requests in flight", func() bool { return lb.status(t).Pool.Busy == 8 })
	if err := syscall.Kill(planePIDs(lb.Log())[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The dead process's clients lose their connections at once; the others' requests
	// go on. What the status counts must be exactly the latter.
	time.Sleep(time.Second)
	cut := 0
	var pending []<-chan served
	for _, ch := range answers {
		select {
		case a := <-ch:
			if a.err == nil {
				t.Errorf("answer %d %s from a killed process, want a cut connection", a.status, a.body)
			}
			cut++
		default:
			pending = append(pending, ch)
		}
	}
	st := lb.status(t)
	inflight := 0
	for _, b := range st.Backends {
		inflight += b.Inflight
	}
	if inflight != len(pending) || st.Pool.Busy != len(pending) {
		t.Errorf("after the process died with %d requests: %d in flight, %d workers busy; want %d, the requests still open",
			cut, inflight, st.Pool.Busy, len(pending))
	}
	if cut > 0 && !strings.Contains(lb.Log(), "data-plane process exited with requests in flight") {
		t.Errorf("the log does not tell of the requests given back")
	}
	for _, ch := range pending {
		if a := <-ch; a.err != nil || a.status != 200 {
			t.Errorf("request on the live process = %d %s, %v; want 200", a.status, a.body, a.err)
		}
	}
}

// A data-plane process asks the control plane for the status JSON without holding up
// its loop: with the control plane stopped, the status request waits (up to its
// bound) while requests on new connections, in either process, are served.
func TestStatusWaitsAloneForTheControlPlane(t *testing.T) {
	needProcesses(t)
	_, u := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u), "load_balancer": map[string]any{"processes": 2}})
	waitUntil(t, "two data-plane processes", func() bool { return len(planePIDs(lb.Log())) == 2 })
	// Warm each process's pick channel and backend connections.
	for range 8 {
		<-startHeld(lb.url + "/requests")
	}

	core := lb.cmd.Process.Pid
	if err := syscall.Kill(core, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(core, syscall.SIGCONT)
		}
	}
	defer resume()

	// Twenty status requests, each on a connection of its own: while the control
	// plane is stopped they wait, sharing one question to it per process.
	getStatus := func() served {
		client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get(lb.url + "/queue/status")
		if err != nil {
			return served{err: err}
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return served{status: resp.StatusCode, body: body, err: err}
	}
	const asks = 20
	statusDone := make(chan served, asks)
	for range asks {
		go func() { statusDone <- getStatus() }()
	}
	time.Sleep(200 * time.Millisecond) // let them reach the loops first
	// Twelve requests on connections of their own, which the kernel spreads over both
	// processes, one of them the process holding the status request.
	var answers []<-chan served
	for range 12 {
		answers = append(answers, startHeld(lb.url+"/requests"))
	}
	for i, ch := range answers {
		if a := <-ch; a.err != nil || a.status != 200 {
			t.Errorf("request %d with the control plane stopped = %d %s, %v; want 200", i, a.status, a.body, a.err)
		}
	}
	select {
	case a := <-statusDone:
		t.Fatalf("the status request was answered (%d %s, %v) before requests sent after it: a loop waited for the control plane",
			a.status, a.body, a.err)
	default:
	}
	resume()
	// Each is answered: with the status, or with the news that the control plane
	// did not answer in time.
	for range asks {
		if a := <-statusDone; a.err != nil || a.status != 200 || !json.Valid(a.body) {
			t.Errorf("status asked while the control plane was stopped = %d %s, %v; want 200 and JSON", a.status, a.body, a.err)
		}
	}
	// With the control plane back, the status path serves the status again.
	var st struct {
		Backends []json.RawMessage `json:"backends"`
	}
	if a := getStatus(); a.err != nil || a.status != 200 || json.Unmarshal(a.body, &st) != nil || len(st.Backends) != 1 {
		t.Errorf("status with the control plane back = %d %s, %v; want the status of one backend", a.status, a.body, a.err)
	}
}

// The pool's queue is one FIFO queue for the whole load balancer (DESIGN section 5):
// with one worker, requests queued in either process are served in the order they
// queued, whichever process frees the worker.
func TestProcessesServeTheQueueInOrder(t *testing.T) {
	needProcesses(t)
	_, u := startBackend(t, "-work", "300ms", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u),
		"load_balancer": map[string]any{"processes": 2},
		"threadpool":    map[string]any{"min_workers": 1, "max_workers": 1, "queue_capacity": 20, "queue_timeout": "60s"}})
	waitUntil(t, "two data-plane processes", func() bool { return len(planePIDs(lb.Log())) == 2 })

	first := startHeld(lb.url + "/requests")
	waitUntil(t, "the worker busy", func() bool { return lb.status(t).Pool.Busy == 1 })
	// Eight more, each on a new connection (so spread over both processes), each
	// sent once the one before is queued.
	const n = 8
	done := make(chan int, n)
	for i := range n {
		ch := startHeld(lb.url + "/requests")
		go func() {
			if a := <-ch; a.err != nil || a.status != 200 {
				t.Errorf("queued request %d = %d %s, %v; want 200", i, a.status, a.body, a.err)
			}
			done <- i
		}()
		waitUntil(t, "the request queued", func() bool { return lb.status(t).Pool.QueueLength == i+1 })
	}
	if a := <-first; a.status != 200 {
		t.Errorf("the first request = %d %s, %v; want 200", a.status, a.body, a.err)
	}
	var order []int
	for range n {
		order = append(order, <-done)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("queued requests were served in the order %v, want the order they queued in", order)
		}
	}
}

// The default number of data-plane processes follows the CPUs this process may use
// (GOMAXPROCS: a container's CPU limit, or the variable), not the host's.
func TestProcessesFollowTheCPUsTheCoreMayUse(t *testing.T) {
	needProcesses(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs a machine with two CPUs or more")
	}
	t.Setenv("GOMAXPROCS", "1") // as a container's one-CPU limit gives
	_, u := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(u), "load_balancer": map[string]any{"processes": 0}})
	if !strings.Contains(lb.Log(), "processes=1 ") || len(planePIDs(lb.Log())) != 0 {
		t.Errorf("with GOMAXPROCS=1 on %d CPUs the core runs %d data-plane processes, want 1 (everything in its own):\n%s",
			runtime.NumCPU(), len(planePIDs(lb.Log())), lb.Log())
	}
}
