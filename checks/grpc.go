package checks

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/tracing"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcVars are the grpc kind's variables.
var grpcVars = types.Map{
	"status":    types.String,
	"grpc_code": types.String,
	"rpc_ms":    types.Float64,
	"response":  types.Any,
}

// grpcServingStatuses are the answers grpc.health.v1 can give, for the metric's label.
var grpcServingStatuses = []string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

// GRPC is the grpc kind: one grpc.health.v1 Check, or one call of a unary method
// (grpc_method.go). SERVING passes; any other answer, or
// a server that answers with an error status (no health service, unknown service, denied),
// fails; a server vigil cannot reach or that never answers is an error. Each run dials its
// own connection and closes it, so a deploy's verification never reuses one from before.
type GRPC struct {
	address string
	service string
	method  string // package.Service/Method to call instead (grpc_method.go)
	request string
	// requestT renders request when it has templates: {{ .Nonce }}, a fresh marker per run.
	requestT *template.Template
	creds    credentials.TransportCredentials
	tls      bool // creds speak TLS
	metadata metadata.MD
	tracing  *tracing.Tracing
}

// outgoing is ctx with what every call sends besides its message: the configured metadata,
// and the run's trace context (traceparent, tracestate) as a traced HTTP request carries it.
func (g *GRPC) outgoing(ctx context.Context) context.Context {
	md := g.metadata.Copy()
	if g.tracing.On() {
		h := http.Header{}
		g.tracing.Inject(ctx, h)
		for k, vs := range h {
			md.Append(k, vs...) // metadata keys are lowercased
		}
	}
	if len(md) == 0 {
		return ctx
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// Probe implements Prober.
func (g *GRPC) Probe(ctx context.Context, run *Run) error {
	// passthrough: the address is dialled as written, resolved by Go on each connection.
	conn, err := grpc.NewClient("passthrough:///"+g.address, grpc.WithTransportCredentials(g.creds),
		grpc.WithUserAgent("vigil"))
	if err != nil {
		return fmt.Errorf("gRPC client for %s: %w", g.address, err)
	}
	defer conn.Close()
	ctx = g.outgoing(ctx)
	if g.method != "" {
		run.Unmeasured("status is the health check's answer; this check calls "+g.method, "status")
		return g.call(ctx, conn, run)
	}
	run.Unmeasured("response is a method's answer; this check asks grpc.health.v1 (set method to call one)", "response")
	run.Transcript.Printf("grpc.health.v1.Health/Check {service: %q} to %s", g.service, g.address)
	start := time.Now()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: g.service})
	run.Vars["rpc_ms"] = ms(time.Since(start))
	st, _ := status.FromError(err)
	run.Vars["grpc_code"] = st.Code().String()
	run.Transcript.Printf("code %s in %s", st.Code(), time.Since(start).Round(time.Microsecond))
	switch st.Code() {
	case codes.OK:
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		// Nothing answered: connection refused, no HTTP/2 server, or no answer in time.
		run.Unmeasured("the server did not answer", "status")
		if m := g.mismatch(ctx, st); m != nil {
			run.Failf("gRPC health check of %v", m)
			return nil
		}
		return grpcNoAnswer(st, fmt.Errorf("gRPC health check of %s: %s: %s", g.address, st.Code(), Trim(st.Message(), 300)))
	case codes.NotFound:
		run.Vars["status"] = "SERVICE_UNKNOWN"
		run.Failf("%s does not know service %q (NOT_FOUND from grpc.health.v1): %s", g.address, g.service, Trim(st.Message(), 200))
		return nil
	case codes.Unimplemented:
		run.Vars["status"] = "UNKNOWN"
		run.Failf("%s does not implement grpc.health.v1 (UNIMPLEMENTED): register the health service", g.address)
		return nil
	default:
		run.Vars["status"] = "UNKNOWN"
		run.Failf("the health check of %s answered %s: %s", g.address, st.Code(), Trim(st.Message(), 200))
		return nil
	}
	s := resp.GetStatus().String()
	run.Vars["status"] = s
	run.Transcript.Printf("status %s", s)
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		run.Failf("%s reports %s for %s", g.address, s, serviceName(g.service))
	}
	return nil
}

// mismatch says, for a call the server did not answer (st), whether it speaks the other
// transport than the check: TLS to a plaintext check, plaintext to one with tls: true. The
// server answered, and no client configured as the check is gets through: a failure that
// names the fix, not silence. gRPC keeps the transport's error only as text; a plaintext
// check whose HTTP/2 preface the server dropped asks it for a TLS handshake to tell.
func (g *GRPC) mismatch(ctx context.Context, st *status.Status) error {
	msg := st.Message()
	switch {
	case st.Code() != codes.Unavailable:
	case g.tls && strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Errorf("%s: the server does not speak TLS (%s): set tls: false if it serves plaintext gRPC, "+
			"or point address at its TLS port", g.address, Trim(msg, 200))
	case !g.tls && strings.Contains(msg, "error reading server preface") && speaksTLS(ctx, g.address):
		return fmt.Errorf("%s: the server speaks TLS and the check is plaintext (%s): set tls: true", g.address, Trim(msg, 200))
	}
	return nil
}

// speaksTLS says whether address completes a TLS handshake, whatever its certificate.
func speaksTLS(ctx context.Context, address string) bool {
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // only whether it speaks TLS
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func serviceName(s string) string {
	if s == "" {
		return "the server as a whole (service \"\")"
	}
	return fmt.Sprintf("service %q", s)
}

// grpcKind registers the grpc kind (kinds.go).
type grpcKind struct{}

func (grpcKind) vars() types.Map { return grpcVars }

// Instrument implements Instrumented: blackbox_exporter's grpc module series.
func (grpcKind) Instrument(in Instruments) *Recorder {
	f := promauto.With(in.Reg)
	code := f.NewGaugeVec(prometheus.GaugeOpts{Name: "probe_grpc_status_code",
		Help: "The gRPC status code of a grpc check's call, health or method (0 OK, 14 UNAVAILABLE, ...), as blackbox_exporter reports it."}, []string{"check", "location"})
	serving := f.NewGaugeVec(prometheus.GaugeOpts{Name: "probe_grpc_healthcheck_response",
		Help: "1 for the serving status a grpc check's health call answered, 0 for the others, as blackbox_exporter reports it."},
		[]string{"check", "location", "serving_status"})
	return &Recorder{Vecs: vecs(code, serving), Observe: func(r *Result) {
		if name, ok := r.Vars["grpc_code"].(string); ok {
			for c := codes.OK; c <= codes.Unauthenticated; c++ {
				if c.String() == name {
					code.WithLabelValues(r.Check, r.Location).Set(float64(c))
				}
			}
		}
		if s, ok := r.Vars["status"].(string); ok {
			for _, v := range grpcServingStatuses {
				serving.WithLabelValues(r.Check, r.Location, v).Set(map[bool]float64{true: 1}[v == s])
			}
		}
	}}
}

func (grpcKind) build(b *builder, c *configs.Check) Prober {
	g := b.grpcClient(c.Path(), c.Spec.(*configs.GRPCSpec), []string{"Nonce"},
		"the request's one template variable is {{ .Nonce }}, a fresh marker per run", "a grpc check does not provide")
	if g == nil {
		return nil
	}
	return g
}

// grpcClient compiles a grpc spec at path (a check's, or a journey step's grpc) whose
// request may read the template variables known; fix and lacks word the error for one it
// reads that is not. Nil when it is bad (reported through b).
func (b *builder) grpcClient(path string, s *configs.GRPCSpec, known []string, fix, lacks string) *GRPC {
	g := &GRPC{address: s.Address, service: s.Service, method: s.Method, request: s.Request, creds: insecure.NewCredentials(),
		tls: s.TLS, tracing: b.deps.Tracing}
	if s.TLS {
		d, err := newTLSDialer(s.TLSConfig, s.Address)
		if err != nil {
			b.errf(path+".tls_config.ca_file", "point it at a PEM file of CA certificates", "%v", err)
			return nil
		}
		g.creds = credentials.NewTLS(&tls.Config{ServerName: d.serverName, RootCAs: d.roots, InsecureSkipVerify: d.insecure}) //nolint:gosec // opt-in per check
	}
	if len(s.Metadata) > 0 {
		g.metadata = metadata.New(s.Metadata)
	}
	t, err := compileTemplate("request", s.Request)
	if err != nil {
		b.errf(path+".request", "templates look like {{ .Nonce }}", "%v", err)
		return nil
	}
	for _, name := range templateFields(t) {
		if !slices.Contains(known, name) {
			b.errf(path+".request", fix, "template reads .%s, which %s", name, lacks)
			return nil
		}
	}
	g.requestT = t
	return g
}
