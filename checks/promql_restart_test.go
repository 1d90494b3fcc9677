package checks

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-monitor/vigil/internal/promtest"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// TestPromQLPrometheusRestartedInTheRollout: Prometheus restarts (a node drained, its own
// upgrade) while the rollout replaces the old pods. The restarted one scrapes only the new
// pods, and it has written no staleness marker for the old ones: their last samples, read
// back from its WAL, stay in every instant query for its 5 minute lookback. The old
// version leaked (80 connections) and the new one is the fix (3): a query of all pods
// fails the fix on the old pods' numbers; one that names the version passes it.
func TestPromQLPrometheusRestartedInTheRollout(t *testing.T) {
	bin := vigiltest.Binary(t, "prometheus", "VIGIL_PROMETHEUS", "VIGIL_REQUIRE_PROMETHEUS",
		"install Debian's prometheus package (scripts/setup does)")
	pod := func(version string, pool float64) string {
		reg := prometheus.NewRegistry()
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pool_active_connections", Help: "Connections in use.",
			ConstLabels: prometheus.Labels{"version": version}})
		reg.MustRegister(g)
		g.Set(pool)
		return promtest.Exporter(t, reg)
	}
	oldPod, newPod := pod("v1", 80), pod("v2", 3)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	server := "http://" + addr
	start := func(target string) *exec.Cmd {
		t.Helper()
		cfg := filepath.Join(dir, "prometheus.yml")
		y := fmt.Sprintf("global: {scrape_interval: 1s, scrape_timeout: 800ms}\nscrape_configs:\n  - job_name: web\n    static_configs: [{targets: [%q]}]\n", target)
		if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
		logs := &vigiltest.Buffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if resp, err := http.Get(server + "/-/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return cmd
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("prometheus on %s not ready: %s", addr, logs.String())
			}
		}
	}
	all := buildOne(t, promqlYAML(server, "max(pool_active_connections)", "value < 50"))
	named := buildOne(t, promqlYAML(server, `max(pool_active_connections{version="{{ .Deploy.Version }}"})`, "value < 50"))
	waitFor := func(c *Check, in Input, want Outcome) *Result {
		t.Helper()
		var res *Result
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if res = run(t, c, in); res.Outcome == want {
				return res
			}
		}
		t.Fatalf("never %s: %s %q", want, res.Outcome, res.Reasons)
		return nil
	}

	prom := start(oldPod)
	waitFor(all, Input{}, Fail) // the old pods' leak, scraped
	since := time.Now()
	deploy := Input{Since: since, Deploy: &Deploy{ID: "d-1", Service: "web", Version: "v2"}}
	if err := prom.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = prom.Wait()
	start(newPod)
	waitFor(named, deploy, Pass) // the new pods scraped: 3
	wantOutcome(t, run(t, all, deploy), Fail, "value < 50 is false: value = 80")
}
