//go:build linux || darwin || freebsd || netbsd || openbsd

package evloop

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Echo servers the benchmarks compare.
const (
	serverLoop       = "evloop"        // this package's loop, on the goroutine of Run
	serverLoopLocked = "evloop-locked" // the same, Run's goroutine locked to its thread
	serverGoroutines = "goroutines"    // the net package, a goroutine per connection
)

// echoServerEnv, when set, makes the test binary an echo server of that kind instead
// of running tests (see serveEchoProcess).
const echoServerEnv = "EVLOOP_ECHO_SERVER"

func TestMain(m *testing.M) {
	if kind := os.Getenv(echoServerEnv); kind != "" {
		serveEchoProcess(kind)
		return
	}
	os.Exit(m.Run())
}

// BenchmarkEcho measures echo round trips per second over loopback, 64-byte messages
// on 32 connections, each client waiting for its echo before sending the next. The
// clients are the same for every server.
//
// In process: the server shares the process (and its GOMAXPROCS) with the clients.
// Process: the server is a child process with GOMAXPROCS=1, as a data-plane process
// would run, and its CPU time per round trip (user + system) is reported too.
func BenchmarkEcho(b *testing.B) {
	for _, kind := range []string{serverLoop, serverLoopLocked, serverGoroutines} {
		b.Run("inprocess-"+kind, func(b *testing.B) {
			addr, stop := startEchoServer(b, kind)
			defer stop()
			benchEcho(b, addr)
		})
	}
	for _, kind := range []string{serverLoop, serverLoopLocked, serverGoroutines} {
		b.Run("process-"+kind, func(b *testing.B) {
			benchEchoProcess(b, kind)
		})
	}
}

// startEchoServer starts an echo server of the given kind in this process.
func startEchoServer(tb testing.TB, kind string) (*net.TCPAddr, func()) {
	switch kind {
	case serverGoroutines:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		go serveEchoGoroutines(ln)
		return ln.Addr().(*net.TCPAddr), func() { ln.Close() }
	default:
		l, err := New()
		if err != nil {
			tb.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			if kind == serverLoopLocked {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			done <- l.Run()
		}()
		s, addr := startEcho(tb, l, 16<<10, 256<<10)
		onLoop(tb, l, func() { s.short = true })
		return addr, func() {
			l.Close()
			<-done
		}
	}
}

// serveEchoGoroutines echoes on every connection ln accepts, a goroutine each.
func serveEchoGoroutines(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 16<<10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// serveEchoProcess is the child of benchEchoProcess: it prints the address it serves
// on, then answers each line "cpu" on stdin with its CPU time in nanoseconds, and
// exits when stdin closes.
func serveEchoProcess(kind string) {
	if kind == serverLoopLocked {
		runtime.LockOSThread()
	}
	var addr *net.TCPAddr
	var run func() error
	switch kind {
	case serverGoroutines:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		addr = ln.Addr().(*net.TCPAddr)
		run = func() error { serveEchoGoroutines(ln); return nil }
	default:
		l, err := New()
		if err != nil {
			panic(err)
		}
		lfd, bound, err := Listen("127.0.0.1:0", false)
		if err != nil {
			panic(err)
		}
		s := newEchoServer(l, lfd, 16<<10, 256<<10)
		s.short = true
		if err := l.Add(lfd, Readable, s); err != nil {
			panic(err)
		}
		addr, run = bound, l.Run
	}
	os.Stdout.WriteString(addr.String() + "\n")
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			os.Stdout.WriteString(strconv.FormatInt(cpuTime().Nanoseconds(), 10) + "\n")
		}
		os.Exit(0)
	}()
	if err := run(); err != nil {
		panic(err)
	}
	select {}
}

// cpuTime returns the CPU time this process used, user and system.
func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchEchoProcess runs benchEcho against an echo server in a child process and
// reports the child's CPU time per round trip.
func benchEchoProcess(b *testing.B, kind string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), echoServerEnv+"="+kind, "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	out := bufio.NewReader(stdout)
	line := func() string {
		s, err := out.ReadString('\n')
		if err != nil {
			b.Fatalf("echo server process: %v", err)
		}
		return strings.TrimSpace(s)
	}
	addr, err := net.ResolveTCPAddr("tcp", line())
	if err != nil {
		b.Fatal(err)
	}
	cpu := func() time.Duration {
		io.WriteString(stdin, "cpu\n")
		ns, err := strconv.ParseInt(line(), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return time.Duration(ns)
	}
	var before time.Duration
	benchEchoFunc(b, addr, func() { before = cpu() })
	b.ReportMetric(float64((cpu()-before).Nanoseconds())/1e3/float64(b.N), "server-cpu-µs/roundtrip")
}

func benchEcho(b *testing.B, addr *net.TCPAddr) { benchEchoFunc(b, addr, nil) }

// benchEchoFunc runs b.N round trips over 32 connections to addr; ready, if not nil,
// is called once the connections are open, before timing starts.
func benchEchoFunc(b *testing.B, addr *net.TCPAddr, ready func()) {
	const conns, size = 32, 64
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.DialTCP("tcp", nil, addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs[i] = c
	}
	if ready != nil {
		ready()
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			msg := make([]byte, size)
			buf := make([]byte, size)
			for left.Add(-1) >= 0 {
				if _, err := c.Write(msg); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "roundtrips/s")
}
