// Package amtest starts a real Alertmanager for tests: Debian's prometheus-alertmanager
// package (or $VIGIL_ALERTMANAGER) on a free loopback port, with a temporary config and
// data folder and clustering off. Everything it starts stops at the test's cleanup. Without
// the binary the tests that use it are skipped, saying how to get it, unless
// VIGIL_REQUIRE_ALERTMANAGER is set (scripts/test sets it): then they fail.
package amtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// Server is a running Alertmanager.
type Server struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string

	cmd    *exec.Cmd
	logs   *vigiltest.Buffer
	once   sync.Once
	exited chan struct{}
}

// config routes everything to a receiver that sends nowhere: the tests read the alerts
// back from the API.
const config = `route:
  receiver: sink
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: sink
`

// Start starts Alertmanager and waits until it is ready. It is killed at t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv("VIGIL_ALERTMANAGER")
	if bin == "" {
		bin = "prometheus-alertmanager"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		msg := fmt.Sprintf("amtest: %s not found (%v); install Debian's prometheus-alertmanager package (scripts/setup does) or set VIGIL_ALERTMANAGER", bin, err)
		if os.Getenv("VIGIL_REQUIRE_ALERTMANAGER") == "" {
			t.Skip(msg + "; set VIGIL_REQUIRE_ALERTMANAGER=1 to make this a failure")
		}
		t.Fatal(msg)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatalf("amtest: writing config: %v", err)
	}
	var lastErr error
	for attempt := range 3 { // the free port can be taken between probe and bind
		s, err := start(path, cfg, filepath.Join(dir, fmt.Sprintf("data%d", attempt)))
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("amtest: %v", lastErr)
	return nil
}

func start(bin, cfg, data string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	logs := &vigiltest.Buffer{}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+data, "--web.listen-address="+addr,
		"--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &Server{URL: "http://" + addr, cmd: cmd, logs: logs, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	probe := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("alertmanager exited during startup: %s", s.Logs())
		default:
		}
		if resp, err := probe.Get(s.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return nil, fmt.Errorf("alertmanager on %s not ready after 30s: %s", addr, s.Logs())
}

// Stop kills Alertmanager and waits for it to exit; safe to call more than once.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
}

// Logs is what Alertmanager printed so far, for failure messages.
func (s *Server) Logs() string { return strings.TrimSpace(s.logs.String()) }

// Alert is an alert as GET /api/v2/alerts answers it.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State string `json:"state"` // active, suppressed, unprocessed
	} `json:"status"`
}

// Alerts returns the alerts Alertmanager holds that match the label filters
// (`service="web"`); resolved alerts are not among them.
func (s *Server) Alerts(ctx context.Context, filters ...string) ([]Alert, error) {
	q := url.Values{}
	for _, f := range filters {
		q.Add("filter", f)
	}
	var out []Alert
	err := s.call(ctx, http.MethodGet, "/api/v2/alerts?"+q.Encode(), nil, &out)
	return out, err
}

// Silence silences the alerts that match the label (name=value) for an hour.
func (s *Server) Silence(ctx context.Context, name, value string) error {
	now := time.Now().UTC()
	body := map[string]any{"matchers": []map[string]any{{"name": name, "value": value, "isRegex": false, "isEqual": true}},
		"startsAt": now.Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339), "createdBy": "amtest", "comment": "test"}
	return s.call(ctx, http.MethodPost, "/api/v2/silences", body, nil)
}

func (s *Server) call(ctx context.Context, method, path string, in, out any) error {
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(b.String()))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
