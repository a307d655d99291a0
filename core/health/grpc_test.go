package health

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
)

// health_check.grpc: the standard health service decides, SERVING up, anything
// else down, with the status in the backend's last error.
func TestCheckerAsksTheGRPCHealthService(t *testing.T) {
	hs := health.NewServer()
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(s.Stop)

	set := backend.NewSet()
	set.Update([]config.Backend{{URL: "h2c://" + ln.Addr().String(), Weight: 1}})
	rec := &recorder{events: make(chan string, 10)}
	c := NewChecker(Config{GRPC: true, Interval: 5 * time.Millisecond, Timeout: time.Second, Healthy: 1, Unhealthy: 1}, rec, hclog.NewNullLogger())
	c.Start(t.Context(), set.Snapshot().All)
	b := set.Snapshot().All[0]
	time.Sleep(50 * time.Millisecond)
	if !b.Up() {
		t.Fatalf("a SERVING backend is down: %+v", b.Health())
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	select {
	case got := <-rec.events:
		if !strings.HasSuffix(got, "up=false") {
			t.Fatalf("event %q, want the backend down", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("NOT_SERVING did not take the backend down")
	}
	if h := b.Health(); !strings.Contains(h.LastError, "NOT_SERVING") {
		t.Errorf("last error %q, want it to name NOT_SERVING", h.LastError)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	select {
	case got := <-rec.events:
		if !strings.HasSuffix(got, "up=true") {
			t.Fatalf("event %q, want the backend up again", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SERVING did not bring the backend back")
	}
}
