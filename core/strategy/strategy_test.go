//go:build unix

package strategy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/script"
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
	"github.com/switchyard-lb/switchyard/plugins/weighted"
	"github.com/switchyard-lb/switchyard/sdk"
)

// TestMain lets this test binary serve as the bundled strategy plugins, as the core's
// own binary does.
func TestMain(m *testing.M) {
	if name, ok := PluginMode(); ok {
		sdk.Serve(NewBundled(name))
		return
	}
	if path, ok := script.PluginMode(); ok {
		sdk.Serve(script.New(path))
		return
	}
	if name := os.Getenv(testStrategyEnv); name != "" {
		sdk.Serve(testStrategies[name]())
		return
	}
	os.Exit(m.Run())
}

// testStrategyEnv names the strategy of testStrategies that this test binary serves.
const testStrategyEnv = "SWITCHYARD_TEST_STRATEGY"

// testStrategies are the strategies the tests run as plugins besides the bundled ones.
var testStrategies = map[string]func() sdk.Strategy{
	"rotate":       func() sdk.Strategy { return &rotate{} },
	"bad-schedule": func() sdk.Strategy { return &badSchedule{} },
	"declines":     func() sdk.Strategy { return &declines{} },
	"pool":         func() sdk.Strategy { return poolTeller{} },
}

// poolTeller declines every request, saying which pool it was told.
type poolTeller struct{}

func (poolTeller) Pick(req *sdk.Request, _ []sdk.Backend) (int, error) {
	return 0, fmt.Errorf("pool %q", req.Pool)
}

// rotate takes every backend in turn, asked request by request: a strategy written
// without schedules.
type rotate struct{ n int }

func (r *rotate) Pick(_ *sdk.Request, bs []sdk.Backend) (int, error) {
	r.n++
	return (r.n - 1) % len(bs), nil
}

// badSchedule schedules a backend that is not there.
type badSchedule struct{ rotate }

func (*badSchedule) Schedule(bs []sdk.Backend) (sdk.Schedule, error) {
	return sdk.Schedule{Order: []int{0, len(bs)}}, nil
}

// declines will not schedule.
type declines struct{ rotate }

func (*declines) Schedule([]sdk.Backend) (sdk.Schedule, error) {
	return sdk.Schedule{}, errors.New("declines: no schedule today")
}

// candidates returns n backends as a snapshot would hold them.
func candidates(t testing.TB, n int) []*backend.Backend {
	s := backend.NewSet()
	var cfg []config.Backend
	for i := range n {
		cfg = append(cfg, config.Backend{URL: fmt.Sprintf("http://127.0.0.1:%d", 10000+i), Weight: i + 1})
	}
	s.Update(cfg)
	return s.Snapshot().Candidates
}

// startBundled starts a bundled strategy plugin from this test binary.
func startBundled(t testing.TB, name string) *Plugin {
	t.Helper()
	spec, err := BundledSpec(name)
	if err != nil {
		t.Fatal(err)
	}
	return startSpec(t, spec)
}

// startTest starts a strategy of testStrategies as a plugin from this test binary.
func startTest(t testing.TB, name string) *Plugin {
	t.Helper()
	spec, err := selfSpec(name, testStrategyEnv+"="+name)
	if err != nil {
		t.Fatal(err)
	}
	return startSpec(t, spec)
}

// startSpec starts spec, in a runtime directory of the test's unless it names one.
func startSpec(t testing.TB, spec Spec) *Plugin {
	t.Helper()
	name := spec.Name
	if spec.RuntimeDir == "" {
		spec.RuntimeDir = t.TempDir()
	}
	spec.Log = hclog.NewNullLogger()
	p, err := Start(spec)
	if err != nil {
		t.Fatalf("Start(%s): %v", name, err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestPluginPicksAndFallsBackWhenKilled(t *testing.T) {
	p := startBundled(t, "weighted")
	cands := candidates(t, 3) // weights 1, 2, 3
	req := &Request{Method: []byte("GET"), Path: []byte("/")}
	counts := map[string]int{}
	for range 600 {
		b, err := p.Pick(req, cands, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[b.URL]++
	}
	if counts[cands[0].URL] != 100 || counts[cands[1].URL] != 200 || counts[cands[2].URL] != 300 {
		t.Errorf("600 picks with weights 1:2:3 = %v, want 100/200/300", counts)
	}
	// Excluded backends are not picked.
	for range 10 {
		if b, _ := p.Pick(req, cands, cands[1:]); b != cands[0] {
			t.Fatalf("Pick excluding backends 1 and 2 = %s, want %s", b.URL, cands[0].URL)
		}
	}

	pid := p.Status().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range 50 { // every pick still answers while the plugin is down
		if b, err := p.Pick(req, cands, nil); b == nil || err != nil {
			t.Fatalf("Pick while the plugin restarts = %v, %v", b, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for st := p.Status(); st.State != StateRunning || st.PID == pid; st = p.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("status = %+v, want running with a new pid", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := p.Status(); st.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st.Restarts)
	}
}

// picksAsked is how many picks the running plugin of p was asked for.
func picksAsked(p *Plugin) uint64 {
	ch := p.ch.Load()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.picks
}

// firstPick makes the first pick over cands, which the plugin answers while it sends
// their schedule, and checks that the schedule came first.
func firstPick(t *testing.T, p *Plugin, cands []*backend.Backend) {
	t.Helper()
	if _, err := p.Pick(&Request{}, cands, nil); err != nil {
		t.Fatal(err)
	}
	if s := p.ch.Load().plans.current(cands); s == nil || s.kind != planWalk {
		t.Fatalf("schedule after the first pick = %+v, want one to walk", s)
	}
}

func indexOf(cands []*backend.Backend, b *backend.Backend) int {
	for i, c := range cands {
		if c == b {
			return i
		}
	}
	return -1
}

func TestPluginScheduleIsWalkedWithoutAsking(t *testing.T) {
	p := startBundled(t, "weighted")
	cands := testSet(t, 1, 2, 3).Snapshot().Candidates
	firstPick(t, p, cands)
	asked := picksAsked(p)

	var seq []int
	for range 600 {
		b, err := p.Pick(&Request{}, cands, nil)
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, indexOf(cands, b))
	}
	for start := range len(seq) - 6 {
		counts := make([]int, 3)
		for _, i := range seq[start : start+6] {
			counts[i]++
		}
		if counts[0] != 1 || counts[1] != 2 || counts[2] != 3 {
			t.Fatalf("picks %d to %d with weights 1:2:3 = %v, want 1/2/3 in every window of 6", start, start+6, seq[start:start+6])
		}
	}
	// Concurrent picks take distinct places in the schedule: the shares stay exact.
	counts := spread(t, p, cands, 8, 6000)
	if counts[cands[0].URL] != 1000 || counts[cands[1].URL] != 2000 || counts[cands[2].URL] != 3000 {
		t.Errorf("6000 picks from 8 goroutines = %v, want exactly 1000/2000/3000", counts)
	}
	if n := picksAsked(p); n != asked {
		t.Errorf("plugin asked for %d picks during 6600 picks, want 0", n-asked)
	}
	if st := p.Status(); st.Fallbacks != 0 || st.BadAnswers != 0 {
		t.Errorf("status = %+v, want no fallbacks or bad answers", st)
	}
}

func TestPluginLeastScheduleReadsLiveLoads(t *testing.T) {
	p := startBundled(t, "leastconn")
	cands := testSet(t, 1, 2, 4).Snapshot().Candidates
	firstPick(t, p, cands)
	asked := picksAsked(p)
	for range 2 {
		cands[0].Start() // 2 per unit of weight
	}
	for range 3 {
		cands[1].Start() // 1.5
	}
	cands[2].SetQueueLength(5) // 1.25
	for range 1000 {
		if b, _ := p.Pick(&Request{}, cands, nil); b != cands[2] {
			t.Fatalf("Pick = %v, want %s, the least loaded per unit of weight", b, cands[2].URL)
		}
	}
	cands[2].SetQueueLength(7) // 1.75
	if b, _ := p.Pick(&Request{}, cands, nil); b != cands[1] {
		t.Errorf("Pick after the queue grew = %v, want %s", b, cands[1].URL)
	}
	if n := picksAsked(p); n != asked {
		t.Errorf("plugin asked for %d picks, want 0", n-asked)
	}
}

func TestPluginScheduleFollowsTheCandidates(t *testing.T) {
	p := startBundled(t, "weighted")
	set := testSet(t, 1, 2, 3)
	firstPick(t, p, set.Snapshot().Candidates)
	asked := picksAsked(p)

	// A snapshot republished with nothing changed for the strategy: the walk goes on.
	counts := map[string]int{}
	for i := range 600 {
		if i == 301 {
			set.Rebuild()
		}
		b, err := p.Pick(&Request{}, set.Snapshot().Candidates, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[b.URL]++
	}
	cands := set.Snapshot().Candidates
	if counts[cands[0].URL] != 100 || counts[cands[1].URL] != 200 || counts[cands[2].URL] != 300 || picksAsked(p) != asked {
		t.Errorf("600 picks across a republish = %v, %d asked; want exactly 100/200/300 and none asked", counts, picksAsked(p)-asked)
	}

	// A backend leaves and a weight changes: a new schedule, asked for once.
	setWeights(set, 3, 1)
	cands = set.Snapshot().Candidates
	firstPick(t, p, cands)
	counts = spread(t, p, cands, 4, 400)
	if counts[cands[0].URL] != 300 || counts[cands[1].URL] != 100 {
		t.Errorf("400 picks after the edit to weights 3:1 = %v, want exactly 300/100", counts)
	}
	if n := picksAsked(p); n != asked+1 {
		t.Errorf("plugin asked for %d picks, want 1: the first after the edit", n-asked)
	}
}

func TestPluginBadScheduleFallsBack(t *testing.T) {
	p := startTest(t, "bad-schedule")
	cands := candidates(t, 3)
	for range 100 {
		if b, err := p.Pick(&Request{}, cands, nil); b == nil || err != nil {
			t.Fatalf("Pick = %v, %v, want a backend", b, err)
		}
	}
	// The first pick asked the plugin while the schedule was on its way; the
	// schedule named a fourth backend, so the others took the built-in pick.
	if st := p.Status(); st.BadAnswers != 1 || st.Fallbacks != 99 || picksAsked(p) != 1 {
		t.Errorf("status = %+v with %d picks asked, want 1 bad answer, 99 fallbacks, 1 asked", st, picksAsked(p))
	}
}

func TestPluginWithoutScheduleIsAskedEachPick(t *testing.T) {
	for _, name := range []string{"rotate", "declines"} {
		t.Run(name, func(t *testing.T) {
			p := startTest(t, name)
			cands := candidates(t, 3)
			var got strings.Builder
			for range 9 {
				b, err := p.Pick(&Request{}, cands, nil)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprint(&got, indexOf(cands, b))
			}
			if got.String() != "012012012" || picksAsked(p) != 9 {
				t.Errorf("9 picks = %s with %d asked, want 012012012, each asked", got.String(), picksAsked(p))
			}
			if st := p.Status(); st.Fallbacks != 0 || st.BadAnswers != 0 {
				t.Errorf("status = %+v, want no fallbacks or bad answers", st)
			}
		})
	}
}

// BenchmarkPick compares one pick over 3 backends: the bundled leastconn and weighted
// strategies in-process and as plugins, and least-connections as a Starlark script
// (core/script/testdata), in-process (the interpreter's cost alone) and as a plugin
// (what a script strategy costs a request).
func BenchmarkPick(b *testing.B) {
	for _, name := range []string{"in-process", "plugin", "weighted-in-process", "weighted-plugin", "script-in-process", "script-plugin"} {
		b.Run(name, func(b *testing.B) {
			var p Picker
			switch name {
			case "in-process":
				p = NewLocal("leastconn", leastconn.New())
			case "plugin":
				p = startBundled(b, "leastconn")
			case "weighted-in-process":
				p = NewLocal("weighted", weighted.New())
			case "weighted-plugin":
				p = startBundled(b, "weighted")
			case "script-in-process", "script-plugin":
				path, err := filepath.Abs("../script/testdata/least.star")
				if err != nil {
					b.Fatal(err)
				}
				if name == "script-plugin" {
					spec, err := ScriptSpec("least", path)
					if err != nil {
						b.Fatal(err)
					}
					spec.RuntimeDir, spec.Log = b.TempDir(), hclog.NewNullLogger()
					pl, err := Start(spec)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(pl.Close)
					p = pl
					break
				}
				s := script.New(path)
				if err := s.Configure(nil); err != nil {
					b.Fatal(err)
				}
				p = NewLocal("least", s)
			}
			cands := candidates(b, 3)
			req := &Request{Method: []byte("GET"), Host: []byte("example.com"), Path: []byte("/"), RemoteAddr: []byte("127.0.0.1")}
			pid := p.Status().PID
			cpu0 := cpuTime(os.Getpid()) + childCPU(pid, name)
			b.SetParallelism(32) // 64 callers on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.Pick(req, cands, nil); err != nil {
						b.Error(err)
					}
				}
			})
			elapsed := time.Since(start)
			cpu := cpuTime(os.Getpid()) + childCPU(pid, name) - cpu0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "picks/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1000, "cpu-µs/pick")
			if st := p.Status(); st.Fallbacks > 0 {
				b.Logf("%d of %d picks fell back", st.Fallbacks, b.N)
			}
		})
	}
}

// childCPU is the CPU time of the plugin process, 0 for in-process picks.
func childCPU(pid int, name string) time.Duration {
	if !strings.HasSuffix(name, "plugin") {
		return 0
	}
	return cpuTime(pid)
}

// cpuTime reads a process's user+system CPU time from /proc.
func cpuTime(pid int) time.Duration {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func TestPluginPickAsyncAnswersLaterWithoutBlocking(t *testing.T) {
	p := startTest(t, "rotate")
	cands := candidates(t, 3)
	type pick struct {
		b   *backend.Backend
		err error
	}
	got := make(chan pick, 30)
	done := func(b *backend.Backend, err error) { got <- pick{b, err} }
	for range 30 { // sent one after another: none waits for an answer
		if b, pending, err := p.PickAsync(&Request{}, cands, nil, done); !pending || b != nil || err != nil {
			t.Fatalf("PickAsync = %v, %v, %v; want pending", b, pending, err)
		}
	}
	counts := map[int]int{}
	for range 30 {
		a := <-got
		if a.err != nil {
			t.Fatal(a.err)
		}
		counts[indexOf(cands, a.b)]++
	}
	if counts[0] != 10 || counts[1] != 10 || counts[2] != 10 || picksAsked(p) != 30 {
		t.Errorf("30 async picks rotating over 3 = %v with %d asked, want 10 each, all asked", counts, picksAsked(p))
	}

	// A pick that needs no question is answered at once.
	if b, pending, err := p.PickAsync(&Request{}, cands[:1], nil, done); pending || b != cands[0] || err != nil {
		t.Errorf("PickAsync over one candidate = %v, %v, %v; want it at once", b, pending, err)
	}

	// A plugin that dies with picks on their way answers them with the built-in pick.
	pid := p.Status().PID
	for range 5 {
		p.PickAsync(&Request{}, cands, nil, done)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		select {
		case a := <-got:
			if a.b == nil || a.err != nil {
				t.Errorf("an async pick cut off by the plugin's death = %v, %v; want a backend", a.b, a.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("an async pick was never answered after the plugin died")
		}
	}
}

// TestPluginReplacedBesideTheRunningOne starts a second plugin of the same strategy
// in the same runtime directory while the first runs, as a reload that changes the
// strategy's options does; then a data-plane process's channel attaches to it.
func TestPluginReplacedBesideTheRunningOne(t *testing.T) {
	spec, err := BundledSpec("leastconn")
	if err != nil {
		t.Fatal(err)
	}
	spec.RuntimeDir, spec.Log = t.TempDir(), hclog.NewNullLogger()
	first, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := Start(spec)
	if err != nil {
		t.Fatalf("a second plugin beside the first: %v", err)
	}
	defer second.Close()
	ep, ok := second.Endpoint()
	if !ok {
		t.Fatal("the running plugin has no endpoint")
	}
	attached := Attach("leastconn", nil, nil)
	defer attached.Close()
	if err := attached.Connect(ep); err != nil {
		t.Fatal(err)
	}
	cands := candidates(t, 3)
	req := &Request{Method: []byte("GET"), Path: []byte("/")}
	for range 10 {
		if b, err := attached.Pick(req, cands, nil); err != nil || b == nil {
			t.Fatalf("pick through the attached channel = %v, %v", b, err)
		}
	}
	if st := attached.Status(); st.Fallbacks != 0 || st.State != StateRunning {
		t.Errorf("attached status = %+v, want running with no fallback", st)
	}
}

// A plugin's go-plugin socket lives in the core's runtime directory, so that a
// plugin killed with SIGKILL leaves nothing behind in the system's temporary
// directory.
func TestPluginSocketInRuntimeDir(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the plugin's os.TempDir, had it no other
	// and a directory in the core's own environment does not win either
	t.Setenv("PLUGIN_UNIX_SOCKET_DIR", tmp)
	spec, err := BundledSpec("weighted")
	if err != nil {
		t.Fatal(err)
	}
	runtimeDir := filepath.Join(tmp, "run")
	if err := os.Mkdir(runtimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	spec.RuntimeDir = runtimeDir
	startSpec(t, spec)
	sockets := func(dir string) []string {
		var names []string
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Type()&os.ModeSocket != 0 {
				names = append(names, e.Name())
			}
		}
		return names
	}
	if got := sockets(tmp); len(got) != 0 {
		t.Errorf("sockets in the temporary directory: %v, want none", got)
	}
	var goPlugin int
	for _, name := range sockets(runtimeDir) {
		if strings.HasPrefix(name, "plugin") {
			goPlugin++
		}
	}
	if goPlugin != 1 {
		t.Errorf("go-plugin sockets in the runtime directory: %v, want one plugin*", sockets(runtimeDir))
	}
}

// TestPluginStartAbandoned: a plugin that never answers, whose start is abandoned
// through its context, is stopped at once with what it started, long before its
// start timeout; and a plugin that started keeps running once its context ends.
func TestPluginStartAbandoned(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	script := filepath.Join(dir, "sleepy.sh")
	// The script and its child write their PIDs, then wait without a handshake.
	src := "#!/bin/sh\necho $$ > " + pids + ".tmp\nsleep 319 &\necho $! >> " + pids + ".tmp\nmv " + pids + ".tmp " + pids + "\nwait\n"
	if err := os.WriteFile(script, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "sleepy", RuntimeDir: dir, Log: hclog.NewNullLogger(), StartTimeout: 10 * time.Second,
		Command: func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, script) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(pids); err == nil {
				break
			}
		}
		cancel()
	}()
	began := time.Now()
	p, err := StartContext(ctx, spec)
	if err == nil {
		p.Close()
		t.Fatal("StartContext of a plugin that never answers succeeded")
	}
	if took := time.Since(began); !errors.Is(err, context.Canceled) || took > 7*time.Second {
		t.Fatalf("StartContext = %v after %s, want context.Canceled well before the 10s start timeout", err, took)
	}
	data, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(f)
		gone := func() bool { // a zombie, exited but not yet reaped, counts as gone
			stat, err := os.ReadFile("/proc/" + f + "/stat")
			return processGone(pid) || err == nil && strings.Contains(string(stat), ") Z ")
		}
		for deadline := time.Now().Add(2 * time.Second); !gone(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d of the abandoned plugin still runs", pid)
			}
		}
	}

	spec, err = BundledSpec("weighted")
	if err != nil {
		t.Fatal(err)
	}
	spec.RuntimeDir, spec.Log = dir, hclog.NewNullLogger()
	ctx, cancel = context.WithCancel(context.Background())
	p, err = StartContext(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pid := p.Status().PID
	cancel()
	time.Sleep(200 * time.Millisecond)
	if st := p.Status(); st.State != StateRunning || st.PID != pid || processGone(pid) {
		t.Errorf("after its start's context ended: %+v (pid %d before), want the same plugin running", st, pid)
	}
}
