//go:build unix

package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
	"github.com/switchyard-lb/switchyard/core/status"
)

// echoBackend is a gRPC backend in the test process: the test service (echoService)
// and the standard health service, on loopback in HTTP/2 by prior knowledge, as
// h2c:// backends speak.
type echoBackend struct {
	url    string // h2c://127.0.0.1:port
	name   string // 127.0.0.1:port, as its answers name it
	health *health.Server
	calls  atomic.Int64 // calls of the test service it took, of every kind

	release <-chan struct{}  // Count's streams send their rest once it is closed
	started chan struct{}    // Sleep took a call
	ended   chan sleepEnding // Sleep's call ended
}

// sleepEnding is how a call of Sleep ended at the backend.
type sleepEnding struct {
	err         error // its context's error; nil when it slept its full minute
	hadDeadline bool  // whether the call came with a deadline (grpc-timeout)
}

// The test service's methods.
const (
	whoMethod   = "/test.Echo/Who"
	sleepMethod = "/test.Echo/Sleep"
	countMethod = "/test.Echo/Count"
	chatMethod  = "/test.Echo/Chat"
)

// echoService is the test service, one method per kind of call; every answer names
// the backend. Who answers the backend's name; Sleep waits a minute or until its
// call ends; Count (server streaming) sends the name, then, once release is closed,
// "0" to "4"; Chat (bidirectional) answers each message with "name: message". The
// streams end with the trailer x-served-by: name.
var echoService = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Who", Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			be := srv.(*echoBackend)
			be.calls.Add(1)
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			out := []byte(be.name)
			return &out, nil
		}},
		{MethodName: "Sleep", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			be := srv.(*echoBackend)
			be.calls.Add(1)
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			_, hadDeadline := ctx.Deadline()
			be.started <- struct{}{}
			select {
			case <-ctx.Done():
				be.ended <- sleepEnding{ctx.Err(), hadDeadline}
				return nil, ctx.Err()
			case <-time.After(time.Minute):
				be.ended <- sleepEnding{nil, hadDeadline}
				out := []byte(be.name)
				return &out, nil
			}
		}},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "Count", ServerStreams: true, Handler: func(srv any, s grpc.ServerStream) error {
			be := srv.(*echoBackend)
			be.calls.Add(1)
			var in []byte
			if err := s.RecvMsg(&in); err != nil {
				return err
			}
			name := []byte(be.name)
			if err := s.SendMsg(&name); err != nil {
				return err
			}
			select {
			case <-be.release:
			case <-s.Context().Done():
				return s.Context().Err()
			}
			for i := range 5 {
				m := []byte{'0' + byte(i)}
				if err := s.SendMsg(&m); err != nil {
					return err
				}
			}
			s.SetTrailer(metadata.Pairs("x-served-by", be.name))
			return nil
		}},
		{StreamName: "Chat", ServerStreams: true, ClientStreams: true, Handler: func(srv any, s grpc.ServerStream) error {
			be := srv.(*echoBackend)
			be.calls.Add(1)
			for {
				var m []byte
				if err := s.RecvMsg(&m); err == io.EOF {
					s.SetTrailer(metadata.Pairs("x-served-by", be.name))
					return nil
				} else if err != nil {
					return err
				}
				out := []byte(be.name + ": " + string(m))
				if err := s.SendMsg(&out); err != nil {
					return err
				}
			}
		}},
	},
}

// startEchoBackend serves echoService and the health service (SERVING) on a free
// loopback port until the test ends. Its Count streams wait for release (nil: for
// their call to end).
func startEchoBackend(t *testing.T, release <-chan struct{}) *echoBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &echoBackend{url: "h2c://" + ln.Addr().String(), name: ln.Addr().String(), health: health.NewServer(),
		release: release, started: make(chan struct{}, 1), ended: make(chan sleepEnding, 1)}
	s := grpc.NewServer(grpc.ForceServerCodec(exchangetest.RawCodec{}))
	s.RegisterService(&echoService, be)
	healthpb.RegisterHealthServer(s, be.health)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return be
}

// grpcConfig is a core with one pool, grpc (weighted, that is round robin at equal
// weights, and checked with grpc.health.v1), that takes the test service's calls
// from listeners; the default pool has no backends.
func grpcConfig(listeners []any, backends ...*echoBackend) map[string]any {
	return map[string]any{
		"servers":      map[string]any{"backends": []any{}},
		"health_check": fastChecks(nil),
		"pools": map[string]any{
			"grpc": grpcPool(backends...),
		},
		"routes": []any{
			map[string]any{"match": map[string]any{"path_prefix": "/test.Echo/"}, "pool": "grpc"},
		},
		"listeners": listeners,
	}
}

// grpcPool is the grpc pool's section with backends.
func grpcPool(backends ...*echoBackend) map[string]any {
	urls := make([]string, len(backends))
	for i, be := range backends {
		urls[i] = be.url
	}
	return map[string]any{"backends": backendsConfig(urls...)["backends"], "strategy": "weighted",
		"health_check": map[string]any{"grpc": true}}
}

// h2cListener is a listeners entry: plaintext HTTP/2 by prior knowledge on addr.
func h2cListener(addr string) map[string]any { return map[string]any{"addr": addr, "h2c": true} }

// dialGRPC opens one client connection to addr with creds, for the test service's
// raw messages; it is closed when the test ends.
func dialGRPC(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithDefaultCallOptions(grpc.ForceCodec(exchangetest.RawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// who calls Who on cc and returns the name of the backend that answered.
func who(cc *grpc.ClientConn) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, out := []byte("who"), []byte(nil)
	err := cc.Invoke(ctx, whoMethod, &in, &out)
	return string(out), err
}

// spread makes n calls of Who on cc, one after another, and counts them by the
// backend that answered. Three calls go first, uncounted: while the schedule of a
// new set of candidates is on its way, the strategy's own Pick answers (see
// sdk.Scheduler), and the schedule's walk then starts over from its beginning, so
// only the calls after the first of a set take exact turns.
func spread(t *testing.T, cc *grpc.ClientConn, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := range 3 + n {
		name, err := who(cc)
		if err != nil {
			t.Fatalf("call of Who: %v", err)
		}
		if i >= 3 {
			counts[name]++
		}
	}
	return counts
}

// poolBackends returns the status of pool's backends, by URL.
func poolBackends(t *testing.T, lb *lbInstance, pool string) map[string]status.Backend {
	t.Helper()
	for _, p := range lb.status(t).Pools {
		if p.Name == pool {
			out := map[string]status.Backend{}
			for _, b := range p.Backends {
				out[b.URL] = b
			}
			return out
		}
	}
	t.Fatalf("no pool %s in status", pool)
	return nil
}

// waitForPool waits until pool has exactly the backends of up and down, those of up
// healthy after a passed check and those of down marked down by their checks.
func waitForPool(t *testing.T, lb *lbInstance, pool string, up, down []*echoBackend) {
	t.Helper()
	waitUntil(t, "the pool's backends up and down as their health services say", func() bool {
		bs := poolBackends(t, lb, pool)
		if len(bs) != len(up)+len(down) {
			return false
		}
		for _, be := range up {
			if b, ok := bs[be.url]; !ok || !b.Healthy || b.Check == nil || !b.Check.OK {
				return false
			}
		}
		for _, be := range down {
			if b, ok := bs[be.url]; !ok || b.Healthy || b.State != "down" {
				return false
			}
		}
		return true
	})
}

// evenly is n calls over backends, the same number for each.
func evenly(n int, backends ...*echoBackend) map[string]int {
	want := map[string]int{}
	for _, be := range backends {
		want[be.name] = n / len(backends)
	}
	return want
}

// openCount opens a Count stream on cc and returns it with the backend named in its
// first message.
func openCount(t *testing.T, ctx context.Context, cc *grpc.ClientConn) (grpc.ClientStream, string) {
	t.Helper()
	s, err := cc.NewStream(ctx, &echoService.Streams[0], countMethod)
	if err != nil {
		t.Fatal(err)
	}
	in, from := []byte("count"), []byte(nil)
	if err := s.SendMsg(&in); err != nil {
		t.Fatalf("Count: sending: %v", err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(&from); err != nil {
		t.Fatalf("Count: first message: %v", err)
	}
	return s, string(from)
}

// chat sends m on a Chat stream and checks that the answer comes from backend from.
func chat(t *testing.T, s grpc.ClientStream, from, m string) {
	t.Helper()
	in, out := []byte(m), []byte(nil)
	if err := s.SendMsg(&in); err != nil {
		t.Errorf("Chat on %s: sending %q: %v", from, m, err)
		return
	}
	if err := s.RecvMsg(&out); err != nil || string(out) != from+": "+m {
		t.Errorf("Chat on %s: answer to %q = %q, %v; want %q", from, m, out, err, from+": "+m)
	}
}

// openChat opens a Chat stream on cc and returns it with the backend that answers it.
func openChat(t *testing.T, ctx context.Context, cc *grpc.ClientConn) (grpc.ClientStream, string) {
	t.Helper()
	s, err := cc.NewStream(ctx, &echoService.Streams[1], chatMethod)
	if err != nil {
		t.Fatal(err)
	}
	in, out := []byte("hello"), []byte(nil)
	if err := s.SendMsg(&in); err != nil {
		t.Fatalf("Chat: sending: %v", err)
	}
	if err := s.RecvMsg(&out); err != nil {
		t.Fatalf("Chat: first answer: %v", err)
	}
	from, _, _ := strings.Cut(string(out), ": ")
	return s, from
}

// endsOK reads s to its end and checks that it ends with status OK and the trailer
// x-served-by of backend from; it returns the messages read.
func endsOK(t *testing.T, kind string, s grpc.ClientStream, from string) []string {
	t.Helper()
	var got []string
	for {
		var m []byte
		err := s.RecvMsg(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Errorf("%s on %s ended with %v, want status OK", kind, from, err)
			return got
		}
		got = append(got, string(m))
	}
	if tr := s.Trailer().Get("x-served-by"); len(tr) != 1 || tr[0] != from {
		t.Errorf("%s on %s: trailer x-served-by = %v, want [%s]", kind, from, tr, from)
	}
	return got
}

// callsUntil calls Who on cc from 4 goroutines until stop is closed; wait returns
// the calls made, those that failed and the first failure.
func callsUntil(cc *grpc.ClientConn, stop <-chan struct{}) (sent *atomic.Int64, wait func() (int64, error)) {
	sent = &atomic.Int64{}
	var failed atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := who(cc)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	return sent, func() (int64, error) { wg.Wait(); return failed.Load(), first }
}

// gRPC through the built core on one client connection, over h2c and TLS listeners:
// each call is a pick of its own (round robin spreads them evenly); an edit that
// takes a backend out of the pool and adds another fails no call, streams in
// flight on the backend taken out finish whole with status OK and their trailers,
// and afterwards calls reach only the new set.
func TestGRPCCallsAcrossAReload(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	releaseStreams := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseStreams)
	a, b, c := startEchoBackend(t, release), startEchoBackend(t, release), startEchoBackend(t, release)
	ca := exchangetest.NewCA(t)
	cert, key := ca.Issue(t, t.TempDir(), "lb.test")
	h2cAddr, tlsAddr := freeAddr(t), freeAddr(t)
	lb := startCore(t, grpcConfig([]any{h2cListener(h2cAddr),
		map[string]any{"addr": tlsAddr, "tls": map[string]any{"certificates": []any{map[string]any{"cert": cert, "key": key}}}}},
		a, b, c))
	waitForPool(t, lb, "grpc", []*echoBackend{a, b, c}, nil)

	plain := dialGRPC(t, h2cAddr, insecure.NewCredentials())
	secure := dialGRPC(t, tlsAddr, credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "lb.test"}))
	for _, cc := range []struct {
		name string
		cc   *grpc.ClientConn
	}{{"h2c", plain}, {"TLS", secure}} {
		if got, want := spread(t, cc.cc, 30), evenly(30, a, b, c); !maps.Equal(got, want) {
			t.Errorf("30 calls on one %s connection reached %v, want %v", cc.name, got, want)
		}
	}

	// Streams in flight, among them one of each kind on b, the backend the edit
	// takes out.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type stream struct {
		s    grpc.ClientStream
		from string
	}
	var counts, chats []stream
	for len(counts) < 6 && (len(counts) == 0 || counts[len(counts)-1].from != b.name) {
		s, from := openCount(t, ctx, plain)
		counts = append(counts, stream{s, from})
	}
	for len(chats) < 6 && (len(chats) == 0 || chats[len(chats)-1].from != b.name) {
		s, from := openChat(t, ctx, plain)
		chats = append(chats, stream{s, from})
	}
	if counts[len(counts)-1].from != b.name || chats[len(chats)-1].from != b.name {
		t.Fatalf("no stream of each kind reached %s in 6 (Count on %s, Chat on %s)", b.name, counts[len(counts)-1].from, chats[len(chats)-1].from)
	}

	stop := make(chan struct{})
	sent, wait := callsUntil(plain, stop)
	waitUntil(t, "calls running", func() bool { return sent.Load() > 50 })

	d := startEchoBackend(t, release)
	cfg := lb.cfg
	cfg["pools"] = map[string]any{"grpc": grpcPool(a, c, d)}
	lb.applied(t, lb.save(t, cfg))
	waitForPool(t, lb, "grpc", []*echoBackend{a, c, d}, nil)
	at := sent.Load()
	waitUntil(t, "calls after the edit", func() bool { return sent.Load() > at+50 })

	// The streams started before the edit go on where they began and end whole.
	for _, s := range chats {
		chat(t, s.s, s.from, "after the edit")
		if err := s.s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if got := endsOK(t, "Chat", s.s, s.from); len(got) != 0 {
			t.Errorf("Chat on %s: %v after its end, want nothing", s.from, got)
		}
	}
	releaseStreams()
	for _, s := range counts {
		if got := endsOK(t, "Count", s.s, s.from); strings.Join(got, ",") != "0,1,2,3,4" {
			t.Errorf("Count on %s sent %v after the edit, want 0 to 4", s.from, got)
		}
	}

	close(stop)
	if failed, first := wait(); failed != 0 {
		t.Errorf("%d of %d calls on the connection failed across the edit, want none; first: %v", failed, sent.Load(), first)
	}
	before := b.calls.Load()
	for _, cc := range []struct {
		name string
		cc   *grpc.ClientConn
	}{{"h2c", plain}, {"TLS", secure}} {
		if got, want := spread(t, cc.cc, 30), evenly(30, a, c, d); !maps.Equal(got, want) {
			t.Errorf("after the edit, 30 calls on the %s connection reached %v, want %v", cc.name, got, want)
		}
	}
	if n := b.calls.Load(); n != before {
		t.Errorf("the backend taken out took %d calls after the edit, want none", n-before)
	}
}

// A call's deadline and its cancellation go through the core to the backend: the
// client gets DEADLINE_EXCEEDED (or CANCELLED) and the backend sees its call end,
// rather than work on for nobody.
func TestGRPCDeadlineAndCancellationReachTheBackend(t *testing.T) {
	be := startEchoBackend(t, nil)
	addr := freeAddr(t)
	lb := startCore(t, grpcConfig([]any{h2cListener(addr)}, be))
	waitForPool(t, lb, "grpc", []*echoBackend{be}, nil)
	cc := dialGRPC(t, addr, insecure.NewCredentials())
	in, out := []byte("sleep"), []byte(nil)

	ended := func(what string) sleepEnding {
		t.Helper()
		select {
		case e := <-be.ended:
			return e
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the backend's call never ended", what)
		}
		return sleepEnding{}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := cc.Invoke(ctx, sleepMethod, &in, &out)
	cancel()
	if code := grpcstatus.Code(err); code != codes.DeadlineExceeded {
		t.Errorf("a call past its deadline: %v, want DEADLINE_EXCEEDED", err)
	}
	<-be.started
	if e := ended("deadline"); e.err == nil || !e.hadDeadline {
		t.Errorf("the backend's call: ended with %v, deadline %v; want it ended by its deadline, which it had", e.err, e.hadDeadline)
	}

	// Without a deadline: the client's cancellation is all the backend hears.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cc.Invoke(ctx, sleepMethod, &in, &out) }()
	select {
	case <-be.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the call never reached the backend")
	}
	cancel()
	if err := <-done; grpcstatus.Code(err) != codes.Canceled {
		t.Errorf("a cancelled call: %v, want CANCELLED", err)
	}
	if e := ended("cancel"); !errors.Is(e.err, context.Canceled) || e.hadDeadline {
		t.Errorf("the backend's call: ended with %v, deadline %v; want it cancelled, without a deadline", e.err, e.hadDeadline)
	}
	if name, err := who(cc); err != nil || name != be.name {
		t.Errorf("a call after them: %q %v, want an answer from %s", name, err, be.name)
	}
}

// An edit that routes the calls to a pool of HTTP/1.1 backends makes them fail at
// once with UNAVAILABLE (grpc-status 14), not hang.
func TestGRPCRoutedToHTTP1PoolIsUnavailable(t *testing.T) {
	be := startEchoBackend(t, nil)
	_, web := startBackend(t, "-work", "0")
	addr := freeAddr(t)
	lb := startCore(t, grpcConfig([]any{h2cListener(addr)}, be))
	waitForPool(t, lb, "grpc", []*echoBackend{be}, nil)
	cc := dialGRPC(t, addr, insecure.NewCredentials())
	if name, err := who(cc); err != nil || name != be.name {
		t.Fatalf("before the edit: %q %v, want an answer from %s", name, err, be.name)
	}

	cfg := lb.cfg
	cfg["pools"].(map[string]any)["legacy"] = map[string]any{"backends": backendsConfig(web)["backends"]}
	cfg["routes"].([]any)[0].(map[string]any)["pool"] = "legacy"
	lb.applied(t, lb.save(t, cfg))
	waitUntil(t, "the HTTP/1.1 backend up", func() bool { return poolBackends(t, lb, "legacy")[web].Healthy })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, out := []byte("who"), []byte(nil)
	err := cc.Invoke(ctx, whoMethod, &in, &out)
	if st, _ := grpcstatus.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "HTTP/1.1") {
		t.Errorf("a call routed to an HTTP/1.1 backend: %v, want UNAVAILABLE naming HTTP/1.1", err)
	}
}

// A backend whose grpc.health.v1 service answers NOT_SERVING is down in the status
// and takes no call; once it answers SERVING it is up and takes its share.
func TestGRPCNotServingBackendTakesNoCall(t *testing.T) {
	good, sick := startEchoBackend(t, nil), startEchoBackend(t, nil)
	sick.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	addr := freeAddr(t)
	lb := startCore(t, grpcConfig([]any{h2cListener(addr)}, good, sick))
	waitForPool(t, lb, "grpc", []*echoBackend{good}, []*echoBackend{sick})
	if b := poolBackends(t, lb, "grpc")[sick.url]; !strings.Contains(b.LastError, "NOT_SERVING") {
		t.Errorf("status of the NOT_SERVING backend: last_error %q, want it to name NOT_SERVING", b.LastError)
	}

	cc := dialGRPC(t, addr, insecure.NewCredentials())
	if got, want := spread(t, cc, 20), evenly(20, good); !maps.Equal(got, want) {
		t.Errorf("20 calls reached %v, want %v", got, want)
	}
	if n := sick.calls.Load(); n != 0 {
		t.Errorf("the NOT_SERVING backend took %d calls, want none", n)
	}

	sick.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	waitForPool(t, lb, "grpc", []*echoBackend{good, sick}, nil)
	if got, want := spread(t, cc, 20), evenly(20, good, sick); !maps.Equal(got, want) {
		t.Errorf("20 calls once it serves reached %v, want %v", got, want)
	}
}
