package nethttp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
)

// echoService is a gRPC service of four methods, one per kind of call: Unary echoes
// its message (or fails with NOT_FOUND and a message when asked "fail", or reports its
// deadline when asked "deadline"); Collect joins a client stream; Count streams n
// answers; Chat echoes each message of a bidirectional stream.
var echoService = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Unary", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in []byte
		if err := dec(&in); err != nil {
			return nil, err
		}
		switch string(in) {
		case "fail":
			return nil, status.Error(codes.NotFound, "no such thing: été")
		case "deadline":
			d, ok := ctx.Deadline()
			out := []byte("none")
			if ok {
				out = []byte(time.Until(d).Round(time.Second).String())
			}
			return &out, nil
		case "wait":
			<-ctx.Done()
			cancelled <- ctx.Err()
			return nil, ctx.Err()
		}
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t1"))
		return &in, nil
	}}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Collect", ClientStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
			var all []byte
			for {
				var m []byte
				if err := s.RecvMsg(&m); err == io.EOF {
					return s.SendMsg(&all)
				} else if err != nil {
					return err
				}
				all = append(all, m...)
			}
		}},
		{StreamName: "Count", ServerStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
			var m []byte
			if err := s.RecvMsg(&m); err != nil {
				return err
			}
			for i := range len(m) {
				out := []byte{'0' + byte(i)}
				if err := s.SendMsg(&out); err != nil {
					return err
				}
			}
			return nil
		}},
		{StreamName: "Chat", ClientStreams: true, ServerStreams: true, Handler: func(_ any, s grpc.ServerStream) error {
			for {
				var m []byte
				if err := s.RecvMsg(&m); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if err := s.SendMsg(&m); err != nil {
					return err
				}
			}
		}},
	},
}

// cancelled hears the server side of a call its client cancelled.
var cancelled = make(chan error, 1)

// grpcBackend serves echoService and the standard health service over h2c.
func grpcBackend(t *testing.T) string {
	t.Helper()
	s := grpc.NewServer(grpc.ForceServerCodec(exchangetest.RawCodec{}))
	s.RegisterService(&echoService, nil)
	healthpb.RegisterHealthServer(s, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return "h2c://" + ln.Addr().String()
}

// gRPC passes through an h2c listener to an h2c backend: each kind of call,
// trailers and status details, deadlines and cancellation.
func TestGRPCThroughTheProxy(t *testing.T) {
	addr := serveOn(t, exchangetest.NewProxy(t, exchange.Settings{MaxHeaders: 100}, grpcBackend(t)), Config{H2C: true})
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodec(exchangetest.RawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Unary, with a trailer.
	in, out := []byte("hello"), []byte(nil)
	var trailer metadata.MD
	if err := cc.Invoke(ctx, "/test.Echo/Unary", &in, &out, grpc.Trailer(&trailer)); err != nil || string(out) != "hello" || trailer.Get("x-trailer")[0] != "t1" {
		t.Fatalf("unary: %q %v, trailer %v", out, err, trailer)
	}
	// A status with its message, as the backend said it.
	fail := []byte("fail")
	err = cc.Invoke(ctx, "/test.Echo/Unary", &fail, &out)
	if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "no such thing: été" {
		t.Errorf("failing call: %v, want NOT_FOUND with its message", err)
	}
	// The deadline reaches the backend.
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	dl := []byte("deadline")
	if err := cc.Invoke(dctx, "/test.Echo/Unary", &dl, &out); err != nil || !strings.HasPrefix(string(out), "5s") && !strings.HasPrefix(string(out), "4s") {
		t.Errorf("deadline at the backend: %q %v, want about 5s", out, err)
	}
	dcancel()
	// Cancellation reaches the backend.
	cctx, ccancel := context.WithCancel(ctx)
	wait := []byte("wait")
	go func() { time.Sleep(200 * time.Millisecond); ccancel() }()
	if err := cc.Invoke(cctx, "/test.Echo/Unary", &wait, &out); status.Code(err) != codes.Canceled {
		t.Errorf("cancelled call: %v", err)
	}
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the backend saw %v, want its call cancelled", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the backend never saw the call cancelled")
	}

	// Client streaming.
	cs, err := cc.NewStream(ctx, &echoService.Streams[0], "/test.Echo/Collect")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b", "c"} {
		m := []byte(p)
		if err := cs.SendMsg(&m); err != nil {
			t.Fatal(err)
		}
	}
	_ = cs.CloseSend()
	if err := cs.RecvMsg(&out); err != nil || string(out) != "abc" {
		t.Errorf("client streaming: %q %v", out, err)
	}
	// Server streaming.
	ss, err := cc.NewStream(ctx, &echoService.Streams[1], "/test.Echo/Count")
	if err != nil {
		t.Fatal(err)
	}
	five := []byte("xxxxx")
	_ = ss.SendMsg(&five)
	_ = ss.CloseSend()
	var got []string
	for {
		var m []byte
		if err := ss.RecvMsg(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m))
	}
	if strings.Join(got, "") != "01234" {
		t.Errorf("server streaming: %v", got)
	}
	// Bidirectional: each message answered before the next is sent.
	bs, err := cc.NewStream(ctx, &echoService.Streams[2], "/test.Echo/Chat")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"ping", "pong", "again"} {
		m := []byte(p)
		if err := bs.SendMsg(&m); err != nil {
			t.Fatal(err)
		}
		var r []byte
		if err := bs.RecvMsg(&r); err != nil || string(r) != p {
			t.Fatalf("bidi: %q %v, want %q", r, err, p)
		}
	}
	_ = bs.CloseSend()

	// The standard health service, in protobuf.
	pc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if r, err := healthpb.NewHealthClient(pc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", r, err)
	}
}

// A gRPC call routed to an HTTP/1.1-only backend gets UNAVAILABLE at once, not a hang.
func TestGRPCToHTTP1BackendIsUnavailable(t *testing.T) {
	url, _, _ := countingBackend(t)
	addr := serveOn(t, exchangetest.NewProxy(t, exchange.Settings{MaxHeaders: 100}, url), Config{H2C: true})
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodec(exchangetest.RawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, out := []byte("hello"), []byte(nil)
	err = cc.Invoke(ctx, "/test.Echo/Unary", &in, &out)
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "HTTP/1.1") {
		t.Errorf("gRPC to an HTTP/1.1 backend: %v, want UNAVAILABLE naming HTTP/1.1", err)
	}
}

// An https backend that offers h2 by ALPN is spoken to in HTTP/2; one that offers
// only http/1.1 in HTTP/1.1.
func TestHTTPSBackendByALPN(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Proto)
		}))
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		t.Cleanup(srv.Close)
		addr := serveOn(t, exchangetest.Trust(exchangetest.NewProxy(t, exchange.Settings{MaxHeaders: 100, ReuseAlways: true}, srv.URL), srv), Config{})
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[h2]
		if string(b) != want {
			t.Errorf("backend offering h2 %v was spoken to in %q, want %s", h2, b, want)
		}
	}
}
