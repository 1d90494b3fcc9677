package agent

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scrape returns the agent's /metrics in Prometheus text format.
func (h *harness) scrape() string {
	h.t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// An http check's last answer is exported under blackbox_exporter's names, measured from a
// real TLS server that redirects once; the series go when a reload removes the check.
func TestBlackboxHTTPMetrics(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusFound)
			return
		}
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	cert := srv.Certificate()
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`checks:
  - name: tls-home
    kind: http
    every: 1s
    request: {url: %q, tls: {ca_file: %q}}
  - name: down
    kind: http
    every: 1s
    request: {url: "http://127.0.0.1:1/", timeout: 1s}
    retries: 0
`, srv.URL+"/old", ca)
	h := startAgent(t, dir, yaml)
	var body string
	eventually(t, 20*time.Second, "both checks' first runs in /metrics", func() bool {
		body = h.scrape()
		return strings.Contains(body, `probe_http_status_code{check="tls-home"`) && strings.Contains(body, `probe_http_status_code{check="down"`)
	})
	for _, want := range []string{
		`probe_http_status_code{check="tls-home",location="local"} 200`,
		`probe_http_redirects{check="tls-home",location="local"} 1`,
		`probe_http_ssl{check="tls-home",location="local"} 1`,
		`probe_http_content_length{check="tls-home",location="local"} 5`,
		`probe_http_uncompressed_body_length{check="tls-home",location="local"} 5`,
		`probe_http_version{check="tls-home",location="local"} 1.1`,
		fmt.Sprintf(`probe_ssl_earliest_cert_expiry{check="tls-home",location="local"} %g`, float64(cert.NotAfter.Unix())),
		`probe_http_duration_seconds{check="tls-home",location="local",phase="tls"} `,
		`probe_http_duration_seconds{check="tls-home",location="local",phase="transfer"} `,
		`probe_dns_lookup_time_seconds{check="tls-home",location="local"} `,
		`probe_http_status_code{check="down",location="local"} 0`,
		`vigil_check_last_run_timestamp_seconds{check="tls-home",kind="http",location="local"} `,
		`vigil_build_info{goversion="go`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// A check that got no answer has no phases or sizes: a stale one would mislead.
	if strings.Contains(body, `probe_http_duration_seconds{check="down"`) || strings.Contains(body, `probe_http_ssl{check="down"`) {
		t.Errorf("a check with no answer exports answer metrics:\n%s", grepLines(body, `check="down"`))
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepLines(body, "probe_"))
	}

	// promtool, where installed (scripts/setup installs it with prometheus), lints the exposition.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else if os.Getenv("VIGIL_REQUIRE_PROMETHEUS") != "" {
		t.Errorf("promtool not found, and VIGIL_REQUIRE_PROMETHEUS is set")
	}

	// A reload that removes the check removes every series of it, the kind's own included.
	if err := reloadWith(t, h, strings.SplitN(yaml, "  - name: down", 2)[0]); err != nil {
		t.Fatal(err)
	}
	body = h.scrape()
	if left := grepLines(body, `check="down"`); left != "" {
		t.Errorf("series of a removed check remain:\n%s", left)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A run in flight when a reload removes its check (a slow target: often why the check is
// removed) ends after the reload: it must not bring the check's series back, where nothing
// would remove them again. A check the reload keeps keeps its counters.
func TestMetricsOfACheckRemovedMidRun(t *testing.T) {
	var hang atomic.Bool
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			arrived <- struct{}{}
			<-release
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	kept := fmt.Sprintf("agent: {api_token: s3cret-token}\nchecks:\n  - name: kept\n    kind: http\n    every: 1h\n    request: {url: %q}\n", srv.URL)
	yaml := kept + fmt.Sprintf("  - name: slow\n    kind: http\n    every: 1h\n    retries: 0\n    request: {url: %q, timeout: 30s}\n", srv.URL+"/slow")
	h := startAgent(t, "", yaml)
	for _, name := range []string{"slow", "kept", "kept"} {
		if _, out := h.request("POST", "/api/v1/checks/"+name+"/run", ""); out["outcome"] != "pass" {
			t.Fatalf("a run of %s: %v", name, out)
		}
	}
	before := grepLines(h.scrape(), `vigil_check_runs_total{check="kept",kind="http",result="pass"}`)

	hang.Store(true)
	done := make(chan map[string]any)
	go func() {
		_, out := h.request("POST", "/api/v1/checks/slow/run", "")
		done <- out
	}()
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the run of slow never reached the target")
	}
	if err := reloadWith(t, h, kept); err != nil {
		t.Fatal(err)
	}
	if left := grepLines(h.scrape(), `check="slow"`); left != "" {
		t.Fatalf("right after the reload, series of the removed check remain:\n%s", left)
	}
	hang.Store(false)
	release <- struct{}{}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the run of slow never ended")
	}
	body := h.scrape()
	if left := grepLines(body, `check="slow"`); left != "" {
		t.Errorf("the run that ended after the reload brought back the removed check's series:\n%s", left)
	}
	if after := grepLines(body, `vigil_check_runs_total{check="kept",kind="http",result="pass"}`); after != before || before == "" {
		t.Errorf("the kept check's pass counter across the reload: %q, then %q", before, after)
	}
}
