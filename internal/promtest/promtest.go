// Package promtest starts a real Prometheus for tests: Debian's prometheus package (or
// $VIGIL_PROMETHEUS) on a free loopback port, with a temporary config and data folder,
// scraping exporters the test serves from client_golang registries. Everything it starts
// stops at the test's cleanup. Tests that use it need the binary (scripts/setup installs
// it). Without it they are skipped, saying how to get it, unless VIGIL_REQUIRE_PROMETHEUS
// is set (CI sets it): then they fail, so a machine without Prometheus cannot pass them.
package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// Options shape the Prometheus a test starts.
type Options struct {
	// Targets are host:port addresses scraped under job "test" (see Exporter).
	Targets []string
	// ScrapeInterval defaults to 500ms, so the first scrape comes quickly.
	ScrapeInterval time.Duration
	// RemoteRead are remote read URLs (another Prometheus's /api/v1/read) queried with the
	// local data, recent samples included: a Prometheus that answers for several.
	RemoteRead []string
}

// Server is a running Prometheus.
type Server struct {
	*vigiltest.Process // URL, Stop (tests stop it to see a check with Prometheus down), Logs
	targets            int
}

// Start starts Prometheus and waits until it is ready (not until it has scraped: see
// WaitForScrape). It is killed at t's cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := vigiltest.Binary(t, "prometheus", "VIGIL_PROMETHEUS", "VIGIL_REQUIRE_PROMETHEUS",
		"install Debian's prometheus package (scripts/setup does)")
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = 500 * time.Millisecond
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config(o)), 0o600); err != nil {
		t.Fatalf("promtest: writing config: %v", err)
	}
	p := vigiltest.StartServer(t, "prometheus", bin, "/-/ready", func(addr string, attempt int) []string {
		return []string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, fmt.Sprintf("data%d", attempt)),
			"--web.listen-address=" + addr, "--log.level=warn"}
	})
	return &Server{Process: p, targets: len(o.Targets)}
}

func config(o Options) string {
	var b strings.Builder
	timeout := o.ScrapeInterval * 4 / 5
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n",
		promDuration(o.ScrapeInterval), promDuration(timeout), promDuration(o.ScrapeInterval))
	b.WriteString("scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [")
	for i, t := range o.Targets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", t)
	}
	b.WriteString("]\n")
	if len(o.RemoteRead) > 0 {
		b.WriteString("remote_read:\n")
		for _, u := range o.RemoteRead {
			fmt.Fprintf(&b, "  - url: %q\n    read_recent: true\n", u)
		}
	}
	return b.String()
}

// promDuration writes d in Prometheus's duration syntax (whole milliseconds).
func promDuration(d time.Duration) string { return fmt.Sprintf("%dms", max(d.Milliseconds(), 1)) }

// WaitForScrape waits until every target has been scraped successfully once (up == 1).
func (s *Server) WaitForScrape(t testing.TB, timeout time.Duration) {
	t.Helper()
	want := fmt.Sprint(s.targets)
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		v, err := s.Query(context.Background(), `count(up{job="test"} == 1)`)
		if err == nil && v == want {
			return
		}
		last = fmt.Sprintf("count(up == 1) = %q, err %v", v, err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("promtest: targets not scraped within %s (%s); prometheus logs: %s", timeout, last, s.Logs())
}

// Query runs an instant query and returns the first sample's value as Prometheus wrote
// it ("" for an empty result). It is for the harness and tests, not a client.
func (s *Server) Query(ctx context.Context, q string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", err
	}
	if r.Status != "success" {
		return "", fmt.Errorf("%s: %s", r.Status, r.Error)
	}
	if len(r.Data.Result) == 0 || len(r.Data.Result[0].Value) != 2 {
		return "", nil
	}
	return fmt.Sprint(r.Data.Result[0].Value[1]), nil
}

// Exporter serves reg's metrics on a loopback port for Prometheus to scrape and returns
// its host:port. It stops at t's cleanup.
func Exporter(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
