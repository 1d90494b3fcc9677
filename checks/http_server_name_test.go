package checks

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// An http check's request.tls.server_name is the name it sends (SNI) and verifies the
// certificate against, as when a check reaches an ingress by its IP address: the ingress
// answers the name's certificate, and the check passes; without it the ingress answers its
// fallback certificate, for ingress.local, and the check fails: not valid for 127.0.0.1.
func TestHTTPServerNameIsSNIAndTheNameVerified(t *testing.T) {
	ca := newTestCA(t)
	api := ca.leafFor(t, 60*24*time.Hour, []string{"api.example.com"}, nil)
	fallback := ca.leafFor(t, 60*24*time.Hour, []string{"ingress.local"}, nil)
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{fallback},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			seen = append(seen, h.ServerName)
			mu.Unlock()
			return nil, nil
		},
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if h.ServerName == "api.example.com" {
				return &api, nil
			}
			return nil, nil // the fallback
		}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	check := func(tlsKeys string) *Check {
		return buildOne(t, fmt.Sprintf("\nchecks:\n  - name: api\n    kind: http\n    retries: 0\n    request: {url: %q, tls: {%s}}\n",
			srv.URL+"/", tlsKeys))
	}
	wantOutcome(t, run(t, check(fmt.Sprintf("ca_file: %q, server_name: api.example.com", ca.pemFile)), Input{}), Pass)
	wantOutcome(t, run(t, check(fmt.Sprintf("ca_file: %q", ca.pemFile)), Input{}), Fail, "cannot validate certificate for 127.0.0.1")
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{"api.example.com", ""}) {
		t.Errorf("the server saw SNI %q; want api.example.com, then none", seen)
	}
}
