// Package jaegertest starts a real Jaeger for tests: the binary scripts/jaeger/build makes
// from its own tools module (or $VIGIL_JAEGER), on free loopback ports, with in-memory
// storage, an OTLP/HTTP receiver and the query API. Everything it starts stops at the
// test's cleanup. Without the binary the test is skipped, saying how to get it, unless
// VIGIL_REQUIRE_JAEGER is set (CI sets it): then it fails.
package jaegertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// Server is a running Jaeger.
type Server struct {
	// OTLP is the OTLP/HTTP base URL (http://127.0.0.1:PORT); spans go to OTLP+"/v1/traces".
	OTLP string
	// Query is the query API's base URL.
	Query string
	logs  *vigiltest.Buffer
}

// Binary finds the Jaeger binary: $VIGIL_JAEGER, else the one scripts/jaeger/build made in
// the repository's .cache.
func Binary() (string, error) {
	if b := os.Getenv("VIGIL_JAEGER"); b != "" {
		return b, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "jaeger", "go.mod")); err == nil {
			matches, _ := filepath.Glob(filepath.Join(dir, ".cache", "jaeger-v*"))
			for _, m := range matches {
				if !strings.HasSuffix(m, ".tmp") {
					return m, nil
				}
			}
			return "", fmt.Errorf("no Jaeger binary in %s/.cache: run scripts/jaeger/build (a few minutes, once) or set VIGIL_JAEGER", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the vigil repository; set VIGIL_JAEGER")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

const config = `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:%d
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

// Start starts Jaeger and waits until it is healthy. It is killed at t's cleanup. Jaeger
// needs four ports, and any of them can be taken between the probe that found it free
// and Jaeger's bind, by a process a parallel test package starts: a start that fails
// that way is tried again on new ports.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("VIGIL_REQUIRE_JAEGER") == "" {
			t.Skipf("jaegertest: %v; set VIGIL_REQUIRE_JAEGER=1 to make this a failure", err)
		}
		t.Fatalf("jaegertest: %v", err)
	}
	for attempt := 1; ; attempt++ {
		s, stop, err := start(bin, t.TempDir())
		if err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("jaeger log:\n%s", s.logs.String())
				}
			})
			return s
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("jaegertest: %v", err)
		}
		t.Logf("jaegertest: a port was taken before Jaeger bound it; trying again on new ports (%d of 3)", attempt+1)
	}
}

// start runs one Jaeger on fresh free ports and waits until it is healthy; on error it
// has already stopped it.
func start(bin, dir string) (*Server, func(), error) {
	var ports [4]int
	for i := range ports {
		var err error
		if ports[i], err = freePort(); err != nil {
			return nil, nil, err
		}
	}
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(config, ports[0], ports[1], ports[2], ports[3])), 0o600); err != nil {
		return nil, nil, err
	}
	s := &Server{OTLP: fmt.Sprintf("http://127.0.0.1:%d", ports[3]), Query: fmt.Sprintf("http://127.0.0.1:%d", ports[1]), logs: &vigiltest.Buffer{}}
	cmd := exec.Command(bin, "--config=file:"+cfg)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	health := fmt.Sprintf("http://127.0.0.1:%d/status", ports[0])
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return nil, nil, fmt.Errorf("jaeger exited at start:\n%s", s.logs.String())
		default:
		}
		if resp, err := probe.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("not healthy after 60s:\n%s", s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Span is a span as the query API returns it.
type Span struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
}

// Parent is the span's parent id ("" for a root).
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Tag returns a tag's value as text ("" when absent).
func (s Span) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// Trace waits (up to limit) until the trace has at least min spans, and returns them.
func (s *Server) Trace(t testing.TB, traceID string, min int, limit time.Duration) []Span {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last []Span
	for {
		spans, err := s.fetch(traceID)
		if err == nil {
			last = spans
			if len(spans) >= min {
				return spans
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaegertest: trace %s has %d spans after %s, want %d or more (last error: %v)", traceID, len(last), limit, min, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *Server) fetch(traceID string) ([]Span, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Query+"/api/traces/"+traceID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Data []struct {
			Spans []Span `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || len(out.Data) == 0 {
		return nil, fmt.Errorf("query answered %d", resp.StatusCode)
	}
	return out.Data[0].Spans, nil
}
