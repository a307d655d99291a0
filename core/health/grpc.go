package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard-lb/switchyard/core/backend"
)

// grpcProber checks a backend with the standard gRPC health service
// (grpc.health.v1.Health/Check), over a connection kept between checks: TLS for an
// https backend, HTTP/2 without TLS otherwise.
type grpcProber struct {
	conn   *grpc.ClientConn
	tlsKey string // the TLS settings conn was made with (Config.TLSKey)
}

// probe asks b for its health; only SERVING within the timeout passes.
func (g *grpcProber) probe(ctx context.Context, b *backend.Backend, cfg Config) error {
	if g.conn == nil || g.tlsKey != cfg.TLSKey {
		g.close()
		scheme, hostport, _ := strings.Cut(b.Key, "://")
		creds := insecure.NewCredentials()
		if scheme == "https" {
			tc := &tls.Config{MinVersion: tls.VersionTLS12}
			if cfg.TLS != nil {
				tc = cfg.TLS.Clone()
			}
			if tc.ServerName == "" {
				tc.ServerName, _, _ = net.SplitHostPort(hostport)
			}
			creds = credentials.NewTLS(tc)
		}
		conn, err := grpc.NewClient(hostport, grpc.WithTransportCredentials(creds), grpc.WithUserAgent("switchyard-health-check"))
		if err != nil {
			return fmt.Errorf("checking gRPC health: %w", err)
		}
		g.conn, g.tlsKey = conn, cfg.TLSKey
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(g.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("checking gRPC health: %w", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC health check answered %s", s)
	}
	return nil
}

// close drops the connection, if there is one.
func (g *grpcProber) close() {
	if g.conn != nil {
		_ = g.conn.Close()
		g.conn = nil
	}
}
