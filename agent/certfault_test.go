package agent

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/internal/selfsigned"
	"github.com/vigil-monitor/vigil/store"
)

// A deploy of the ingress that lost its TLS secret: the controller presents its own
// self-signed default certificate, for its own name. Every visitor's browser refuses it;
// vigil could measure, and what it measured is production broken. The verdict is failed
// and the rollback is called, where a run that errors (vigil could not measure) would only
// have made it inconclusive. The fix passes.
func TestDeployThatLostItsCertificateIsFailed(t *testing.T) {
	keyPair := func(certPEM, keyPEM []byte, err error) tls.Certificate {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	goodPEM, goodKey, err := selfsigned.Loopback("shop")
	good := keyPair(goodPEM, goodKey, err)
	fake := keyPair(selfsigned.Certificate("Kubernetes Ingress Controller Fake Certificate", []string{"ingress.local"}, []net.IP{net.IPv4(192, 0, 2, 1)}))
	var lost atomic.Bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	// GetConfigForClient, not GetCertificate: a client that dials an address sends no
	// server name, and without one the server never asks GetCertificate.
	serving := func(c tls.Certificate) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c}}
	}
	srv.TLS = serving(good)
	srv.TLS.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if lost.Load() {
			return serving(fake), nil
		}
		return serving(good), nil
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), goodPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	rollback := loopback.NewWebhook(t)
	h := startAgent(t, dir, fmt.Sprintf(`
checks:
  - {name: home, kind: http, every: 1h, timeout: 5s, retries: 1, request: {url: %q, tls: {ca_file: ca.pem}}}
services:
  shop:
    checks: [home]
    verify: {interval: 200ms, count: 3}
    on_failure:
      deploy_failed: [rollback]
notifiers:%s
`, srv.URL+"/", webhookNotifier("rollback", "rollback", rollback)))

	if d := h.verdict(h.deploy("shop", "v1"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("before: verdict %v, reason %v; want passed", d["status"], d["reason"])
	}
	lost.Store(true)
	id := h.deploy("shop", "v2")
	d := h.verdict(id, 30*time.Second)
	if d["status"] != store.StatusFailed || !strings.Contains(fmt.Sprint(d["reason"]), "certificate is valid for 192.0.2.1, not 127.0.0.1") {
		t.Fatalf("verdict %v, reason %v; want failed on the certificate", d["status"], d["reason"])
	}
	if c := checkOf(t, d, "home"); c["failed"].(float64) < 1 || c["errors"] != nil && c["errors"].(float64) != 0 {
		t.Errorf("the runs: %v; want failed, not errors", c)
	}
	eventually(t, 20*time.Second, "the rollback webhook", func() bool { return rollback.Count(id+":deploy_failed") >= 1 })

	lost.Store(false)
	if d := h.verdict(h.deploy("shop", "v3"), 30*time.Second); d["status"] != store.StatusPassed {
		t.Fatalf("the fix: verdict %v, reason %v; want passed", d["status"], d["reason"])
	}
}
