package checks

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcServer is a real gRPC server on loopback; register adds its services. It records
// the metadata of the calls it receives.
type grpcServer struct {
	addr string
	mu   sync.Mutex
	md   []metadata.MD
}

func newGRPCServer(t *testing.T, creds credentials.TransportCredentials, register func(*grpc.Server)) *grpcServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcServer{addr: ln.Addr().String()}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		g.mu.Lock()
		g.md = append(g.md, md)
		g.mu.Unlock()
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-app-version", "v2")) // the version serving, as a deploy's services name it
		return h(ctx, req)
	})}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	srv := grpc.NewServer(opts...)
	register(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return g
}

// lastMetadata is the values of key in the metadata of the last unary call received.
func (g *grpcServer) lastMetadata(key string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.md) == 0 {
		return nil
	}
	return g.md[len(g.md)-1].Get(key)
}

// withHealth registers the standard health service with the given statuses.
func withHealth(statuses map[string]healthpb.HealthCheckResponse_ServingStatus) func(*grpc.Server) {
	return func(s *grpc.Server) {
		hs := health.NewServer()
		for svc, st := range statuses {
			hs.SetServingStatus(svc, st)
		}
		healthpb.RegisterHealthServer(s, hs)
	}
}

// hangingHealth answers no health check: the hostile gRPC server of issue 19.
type hangingHealth struct {
	healthpb.UnimplementedHealthServer
	done <-chan struct{}
}

func (h hangingHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	select {
	case <-ctx.Done():
	case <-h.done:
	}
	return nil, ctx.Err()
}

func grpcCheck(addr, extra string) string {
	return fmt.Sprintf("\nchecks:\n  - name: g\n    kind: grpc\n    timeout: 2s\n    address: %q\n%s", addr, extra)
}

var serving = map[string]healthpb.HealthCheckResponse_ServingStatus{
	"":         healthpb.HealthCheckResponse_SERVING,
	"api.v1":   healthpb.HealthCheckResponse_SERVING,
	"billing":  healthpb.HealthCheckResponse_NOT_SERVING,
	"payments": healthpb.HealthCheckResponse_SERVING,
}

func TestGRPCHealth(t *testing.T) {
	srv := newGRPCServer(t, nil, withHealth(serving))
	res := run(t, buildOne(t, grpcCheck(srv.addr, `    service: api.v1
    metadata: {x-tenant: synthetic}
    assert: ["status == 'SERVING'", "grpc_code == 'OK'", "rpc_ms >= 0"]
`)), Input{})
	wantOutcome(t, res, Pass)
	if got := srv.lastMetadata("x-tenant"); len(got) != 1 || got[0] != "synthetic" {
		t.Errorf("the server saw x-tenant %q", got)
	}
	// The server as a whole, by default.
	wantOutcome(t, run(t, buildOne(t, grpcCheck(srv.addr, "")), Input{}), Pass)

	reg := prometheus.NewRegistry()
	NewKindMetrics(reg).Observe(res)
	mfs, _ := reg.Gather()
	var line []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				line = append(line, mf.GetName()+" "+m.GetLabel()[len(m.GetLabel())-1].GetValue())
			}
		}
	}
	if strings.Join(line, ",") != "probe_grpc_healthcheck_response SERVING" {
		t.Errorf("series at 1: %q", line)
	}
}

func TestGRPCNotServingFails(t *testing.T) {
	srv := newGRPCServer(t, nil, withHealth(serving))
	res := run(t, buildOne(t, grpcCheck(srv.addr, "    service: billing\n")), Input{})
	wantOutcome(t, res, Fail, `reports NOT_SERVING for service "billing"`)
	res = run(t, buildOne(t, grpcCheck(srv.addr, "    service: biling\n")), Input{})
	wantOutcome(t, res, Fail, `does not know service "biling"`)
}

func TestGRPCNoHealthServiceFails(t *testing.T) {
	srv := newGRPCServer(t, nil, func(*grpc.Server) {})
	wantOutcome(t, run(t, buildOne(t, grpcCheck(srv.addr, "")), Input{}), Fail, "does not implement grpc.health.v1")
}

func TestGRPCUnreachableIsError(t *testing.T) {
	wantOutcome(t, run(t, buildOne(t, grpcCheck(closedAddr(t), "")), Input{}), Error, "Unavailable")
}

// A gRPC server that accepts the call and never answers, and a TCP server that never
// speaks HTTP/2: both end at the timeout, as errors.
func TestGRPCHangingServersAreErrors(t *testing.T) {
	done := testDone(t)
	hang := newGRPCServer(t, nil, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hangingHealth{done: done}) })
	for name, addr := range map[string]string{"gRPC": hang.addr, "TCP": tcpServer(t, silent)} {
		t.Run(name, func(t *testing.T) {
			c := buildOne(t, strings.Replace(grpcCheck(addr, ""), "timeout: 2s", "timeout: 300ms", 1))
			res := run(t, c, Input{})
			wantOutcome(t, res, Error, "gRPC health check of "+addr)
		})
	}
}

func TestGRPCTLS(t *testing.T) {
	ca := newTestCA(t)
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{ca.leaf(t, 30*24*time.Hour)}, MinVersion: tls.VersionTLS12})
	srv := newGRPCServer(t, creds, withHealth(serving))
	wantOutcome(t, run(t, buildOne(t, grpcCheck(srv.addr, fmt.Sprintf("    tls: true\n    tls_config: {ca_file: %q}\n", ca.pemFile))), Input{}), Pass)
}

// A check whose transport is not the server's, either way (a deploy that turned TLS on or
// off, or a check written for the other port): the server answered, no client set up as the
// check is gets through, and the reason says what to set. Not an error: that would read as
// the service going silent, or as vigil unable to measure.
func TestGRPCTLSMismatch(t *testing.T) {
	ca := newTestCA(t)
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{ca.leaf(t, 30*24*time.Hour)}, MinVersion: tls.VersionTLS12})
	secure := newGRPCServer(t, creds, withHealth(serving))
	plain := newGRPCServer(t, nil, withHealth(serving))
	toTLS := fmt.Sprintf("    tls: true\n    tls_config: {ca_file: %q}\n", ca.pemFile)
	const method = "    method: vigiltest.orders.v1.Orders/GetOrder\n"
	for _, tc := range []struct{ name, yaml, reason string }{
		{"plaintext to TLS", grpcCheck(secure.addr, ""), "the server speaks TLS and the check is plaintext"},
		{"plaintext to TLS, a method", grpcCheck(secure.addr, method), "the server speaks TLS and the check is plaintext"},
		{"TLS to plaintext", grpcCheck(plain.addr, toTLS), "the server does not speak TLS"},
		{"TLS to plaintext, a method", grpcCheck(plain.addr, toTLS+method), "the server does not speak TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, buildOne(t, tc.yaml), Input{})
			wantOutcome(t, res, Fail, tc.reason)
		})
	}
}

// A server draining for a rollout answers a new connection with GOAWAY: the call is
// UNAVAILABLE, an error in which the service gave no answer, and the reason says draining.
func TestGRPCGoAwayIsNoAnswer(t *testing.T) {
	draining := tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		if _, err := io.ReadFull(c, make([]byte, len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))); err != nil {
			return
		}
		_, _ = c.Write([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})                         // SETTINGS, empty
		_, _ = c.Write([]byte{0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // GOAWAY: last stream 0, NO_ERROR
		_, _ = io.Copy(io.Discard, c)
	})
	for _, extra := range []string{"", "    method: vigiltest.orders.v1.Orders/GetOrder\n"} {
		res := run(t, buildOne(t, grpcCheck(draining, extra)), Input{})
		wantOutcome(t, res, Error, "Unavailable", "draining")
		if !res.NoAnswer {
			t.Errorf("NoAnswer = false for a draining server (%s)", res.Summary())
		}
	}
}

func TestGRPCConfigErrors(t *testing.T) {
	wantBuildError(t, grpcCheck("127.0.0.1", ""), `checks[0].address: "127.0.0.1" is not host:port`)
	wantBuildError(t, grpcCheck("127.0.0.1:50051", "    tls_config: {server_name: x}\n"), "checks[0].tls_config: tls_config is set but the connection is plaintext")
	wantBuildError(t, grpcCheck("127.0.0.1:50051", "    metadata: {X-Tenant: a}\n"), `checks[0].metadata.X-Tenant: "X-Tenant" is not a metadata key`)
}

// deniedHealth is a health service behind an auth interceptor that refuses vigil.
type deniedHealth struct {
	healthpb.UnimplementedHealthServer
}

func (deniedHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return nil, status.Error(codes.PermissionDenied, "no token")
}

// TestGRPCHealthOutcomes holds KINDS.md's table: each answer's status and grpc_code, and
// that a server which answers (UNKNOWN, an unknown service, no health service, any other
// error status) fails, never errors.
func TestGRPCHealthOutcomes(t *testing.T) {
	unknown := map[string]healthpb.HealthCheckResponse_ServingStatus{"": healthpb.HealthCheckResponse_UNKNOWN}
	for _, tc := range []struct {
		name, service, status, code, reason string
		register                            func(*grpc.Server)
	}{
		{"unknown", "", "UNKNOWN", "OK", "reports UNKNOWN for the server as a whole", withHealth(unknown)},
		{"service unknown", "nope", "SERVICE_UNKNOWN", "NotFound", `does not know service "nope"`, withHealth(serving)},
		{"unimplemented", "", "UNKNOWN", "Unimplemented", "does not implement grpc.health.v1 (UNIMPLEMENTED): register the health service", func(*grpc.Server) {}},
		{"denied", "", "UNKNOWN", "PermissionDenied", "answered PermissionDenied: no token", func(s *grpc.Server) { healthpb.RegisterHealthServer(s, deniedHealth{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newGRPCServer(t, nil, tc.register)
			extra := ""
			if tc.service != "" {
				extra = "    service: " + tc.service + "\n"
			}
			res := run(t, buildOne(t, grpcCheck(srv.addr, extra)), Input{})
			wantOutcome(t, res, Fail, tc.reason)
			if res.Vars["status"] != tc.status || res.Vars["grpc_code"] != tc.code {
				t.Fatalf("status %v, grpc_code %v; want %s, %s", res.Vars["status"], res.Vars["grpc_code"], tc.status, tc.code)
			}
		})
	}
}
