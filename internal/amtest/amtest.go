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
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// Server is a running Alertmanager.
type Server struct {
	*vigiltest.Process // URL, Stop, Logs
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
	bin := vigiltest.Binary(t, "prometheus-alertmanager", "VIGIL_ALERTMANAGER", "VIGIL_REQUIRE_ALERTMANAGER",
		"install Debian's prometheus-alertmanager package (scripts/setup does)")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatalf("amtest: writing config: %v", err)
	}
	p := vigiltest.StartServer(t, "alertmanager", bin, "/-/ready", func(addr string, attempt int) []string {
		return []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, fmt.Sprintf("data%d", attempt)),
			"--web.listen-address=" + addr, "--cluster.listen-address=", "--log.level=warn"}
	})
	return &Server{Process: p}
}

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
